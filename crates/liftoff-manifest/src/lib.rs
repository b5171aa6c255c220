//! The deploy artefacts that `trigger.dev deploy` (CLI 3.3.17) writes next to the bundle:
//! the build manifest (`build.json`), the image `package.json` and the `Containerfile`.
//!
//! Everything here is pure: callers hand in data and get strings back; nothing touches the
//! file system. The output is meant to match upstream byte for byte:
//!
//! * [`BuildManifest::to_build_json`] is `JSON.stringify(buildManifestToJSON(manifest))`;
//! * [`package_json`] is what pkg-types' `writePackageJSON` writes (minified, no newline);
//! * [`containerfile`] is `generateContainerfile` from `deploy/buildImage.ts`.
//!
//! JSON objects keep insertion order (as JavaScript objects do), which is why the map
//! fields use [`IndexMap`] rather than a sorted map.

mod containerfile;
mod error;
mod js_json;
mod manifest;
mod package_json;
mod source;

pub use containerfile::{DEFAULT_PACKAGES, containerfile};
pub use error::ManifestError;
pub use indexmap::IndexMap;
pub use manifest::{
    BuildManifest, BuildSection, DeploySection, DeploySync, EnvMap, External, FileEntry,
    ImageSection, ManifestConfig, OtelImportHook, Runtime, SourceFile, Target,
};
pub use package_json::package_json;
pub use source::encode_source;
