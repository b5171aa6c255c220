use std::path::PathBuf;

/// Everything that can go wrong while producing the deploy artefacts.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// `build.json` (or another manifest document) could not be parsed.
    #[error("invalid build manifest JSON: {0}")]
    InvalidManifestJson(#[source] serde_json::Error),

    /// The build directory handed to [`crate::BuildManifest::rewrite_paths`] is relative.
    #[error(
        "cannot rewrite build manifest paths: the build directory `{}` is not an absolute path; \
         pass the absolute path of the directory the bundle was written to",
        .0.display()
    )]
    DestinationNotAbsolute(PathBuf),

    /// A manifest path that must be absolute is not.
    #[error(
        "cannot rewrite `{field}` in the build manifest: `{path}` is not an absolute path; \
         bundle output paths must be absolute before they are rewritten to /app/..."
    )]
    PathNotAbsolute {
        /// Manifest field (e.g. `files[2].out`).
        field: String,
        /// The offending value.
        path: String,
    },

    /// A manifest path points outside the build directory, so it cannot live under `/app/`.
    #[error(
        "cannot rewrite `{field}` in the build manifest: `{path}` is outside the build directory `{}`; \
         every bundled file must be written inside the build directory so it can be copied to /app/ in the image",
        destination.display()
    )]
    PathOutsideDestination {
        /// Manifest field (e.g. `configPath`).
        field: String,
        /// The offending value.
        path: String,
        /// The build directory.
        destination: PathBuf,
    },

    /// Upstream's `[code 7789]` error: a controller entry point is missing from the manifest.
    #[error(
        "Something went wrong with the build. Aborting deployment. [code 7789] \
         (the build manifest has no `{field}`: the bundle must contain trigger.dev's \
         `{file}` entry point, because the Containerfile runs it)"
    )]
    MissingControllerEntryPoint {
        /// `runControllerEntryPoint` or `indexControllerEntryPoint`.
        field: &'static str,
        /// The CLI entry file that should have been bundled.
        file: &'static str,
    },

    /// The project's package.json is valid JSON but not an object.
    #[error(
        "the project's package.json must contain a JSON object, but it contains {found}; \
         fix package.json before deploying"
    )]
    InvalidProjectPackageJson {
        /// What was found instead (e.g. "an array").
        found: &'static str,
    },
}
