//! OCI and Docker media types.

use crate::error::ImageError;

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_TYPE_LAYER_ND_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const MEDIA_TYPE_LAYER_ND_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ND_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";

/// The OCI layer media type with the same bytes as `media_type`.
///
/// Docker layer types map to their OCI equivalents (`…rootfs.diff.tar.gzip` →
/// `application/vnd.oci.image.layer.v1.tar+gzip`); the blob is byte-identical, so a
/// descriptor can keep its digest and size. OCI layer types map to themselves.
pub fn oci_layer_media_type(media_type: &str) -> Result<&'static str, ImageError> {
    Ok(match media_type {
        MEDIA_TYPE_LAYER_TAR | DOCKER_LAYER_TAR => MEDIA_TYPE_LAYER_TAR,
        MEDIA_TYPE_LAYER_GZIP | DOCKER_LAYER_GZIP => MEDIA_TYPE_LAYER_GZIP,
        MEDIA_TYPE_LAYER_ZSTD | DOCKER_LAYER_ZSTD => MEDIA_TYPE_LAYER_ZSTD,
        MEDIA_TYPE_LAYER_ND_TAR | DOCKER_FOREIGN_LAYER_TAR => MEDIA_TYPE_LAYER_ND_TAR,
        MEDIA_TYPE_LAYER_ND_GZIP | DOCKER_FOREIGN_LAYER_GZIP => MEDIA_TYPE_LAYER_ND_GZIP,
        MEDIA_TYPE_LAYER_ND_ZSTD => MEDIA_TYPE_LAYER_ND_ZSTD,
        other => return Err(ImageError::UnsupportedMediaType(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_types_map_to_oci() {
        assert_eq!(
            oci_layer_media_type(DOCKER_LAYER_GZIP).unwrap(),
            MEDIA_TYPE_LAYER_GZIP
        );
        assert_eq!(
            oci_layer_media_type(MEDIA_TYPE_LAYER_ZSTD).unwrap(),
            MEDIA_TYPE_LAYER_ZSTD
        );
        assert!(oci_layer_media_type("application/json").is_err());
    }
}
