//! OCI image pieces for `liftoff`, without a container daemon:
//!
//! * [`layer_from_dir`]: a reproducible layer (tar + gzip/zstd) from a directory tree,
//!   written content-addressed into a blob directory;
//! * [`unpack_layer`]: a (base image) layer extracted into a directory, safely;
//! * [`ImageConfigBuilder`]: the final image config derived from the base image's;
//! * [`write_oci_layout`] / [`write_oci_archive`]: an OCI image layout (and its tar)
//!   that `skopeo`, `umoci` and registries accept.
//!
//! Reproducibility: the same tree, options and `SOURCE_DATE_EPOCH` give the same bytes,
//! whatever the file times, owners' names or directory listing order on disk. Layer
//! digests also depend on the compressor's code, so they are stable for a given
//! `Cargo.lock` (flate2 with the zlib-rs backend, libzstd via zstd-sys).

mod config;
mod digest;
mod error;
mod layer;
mod layout;
mod media;
mod tarw;
mod unpack;

pub use config::{
    ConfigBlob, ImageConfigBuilder, LABEL_CREATED, LABEL_REVISION, LABEL_SOURCE, rfc3339,
    source_date_epoch,
};
pub use digest::{sha256_digest, sha256_file};
pub use error::ImageError;
pub use layer::{Compression, LayerBlob, LayerOptions, layer_from_dir};
pub use layout::{
    ANNOTATION_REF_NAME, Blob, Descriptor, ImageManifest, ManifestRef, OCI_LAYOUT_VERSION,
    OciLayout, write_docker_archive, write_oci_archive, write_oci_layout,
};
pub use media::*;
pub use unpack::unpack_layer;
