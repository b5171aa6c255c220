//! Image manifests, indexes and descriptors (OCI and Docker schema 2).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::RegistryError;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The `Accept` header for manifest requests: every kind liftoff can use.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor, with the OCI field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A manifest or index, just the fields liftoff reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

/// A parsed manifest document (short-lived, so the variants' sizes do not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Parsed {
    Index {
        manifests: Vec<Descriptor>,
    },
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

/// Parses manifest `bytes`. `content_type` (from the registry or the referring descriptor) wins;
/// without a specific one, the document's own `mediaType`, then its shape, decide.
pub(crate) fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    source_name: &str,
    digest: &str,
) -> Result<Parsed, RegistryError> {
    let invalid = |message: String| RegistryError::InvalidManifest {
        source_name: source_name.to_string(),
        digest: digest.to_string(),
        message,
    };
    let doc: Document =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a JSON manifest: {e}")))?;
    let content_type = content_type
        .map(|ct| ct.split(';').next().unwrap_or_default().trim())
        .filter(|ct| {
            !matches!(
                *ct,
                "" | "application/json" | "text/plain" | "application/octet-stream"
            )
        });
    let media_type = match (content_type, doc.media_type.as_deref()) {
        (Some(ct), _) => ct.to_string(),
        (None, Some(mt)) => mt.to_string(),
        (None, None) if doc.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) if doc.config.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => {
            return Err(invalid(
                "it is neither an image manifest nor an index".to_string(),
            ));
        }
    };
    match media_type.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            let manifests = doc
                .manifests
                .ok_or_else(|| invalid("the index has no `manifests`".to_string()))?;
            Ok(Parsed::Index { manifests })
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            if doc.schema_version.is_some_and(|v| v != 2) {
                return Err(invalid(format!(
                    "schemaVersion is {}, expected 2",
                    doc.schema_version.unwrap_or_default()
                )));
            }
            let config = doc
                .config
                .ok_or_else(|| invalid("the manifest has no `config`".to_string()))?;
            // Artifacts (Helm charts, signatures, …) use image manifests with other configs.
            if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
                return Err(RegistryError::UnsupportedMediaType {
                    source_name: source_name.to_string(),
                    what: format!("the config of manifest {digest}"),
                    media_type: config.media_type,
                    hint: "this is an OCI artifact, not a container image".to_string(),
                });
            }
            Ok(Parsed::Image {
                media_type,
                config,
                layers: doc.layers.unwrap_or_default(),
            })
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(RegistryError::UnsupportedMediaType {
            source_name: source_name.to_string(),
            what: format!("manifest {digest}"),
            media_type,
            hint: "Docker schema 1 images are deprecated; push the image again with a current Docker or skopeo".to_string(),
        }),
        _ => Err(RegistryError::UnsupportedMediaType {
            source_name: source_name.to_string(),
            what: format!("manifest {digest}"),
            media_type,
            hint: String::new(),
        }),
    }
}

/// The wanted platform, from `(os, arch)` where `arch` may carry a variant: `arm64`, `arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WantedPlatform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl WantedPlatform {
    pub(crate) fn new(os: &str, arch: &str) -> Self {
        let (arch, variant) = match arch.split_once('/') {
            Some((arch, variant)) => (arch, Some(variant.to_string())),
            None => (arch, None),
        };
        let architecture = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Self {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant,
        }
    }

    fn matches(&self, platform: &Platform) -> bool {
        if platform.os != self.os || platform.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &platform.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64 images usually leave out the default variant v8.
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }
}

impl fmt::Display for WantedPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Picks the entry for `wanted` from an index's `manifests`.
pub(crate) fn select_platform<'a>(
    manifests: &'a [Descriptor],
    wanted: &WantedPlatform,
    source_name: &str,
) -> Result<&'a Descriptor, RegistryError> {
    // The first match wins, as in containerd (for `arm` without a variant, that is whichever
    // variant the index lists first).
    if let Some(found) = manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
    {
        return Ok(found);
    }
    let mut available: Vec<String> = manifests
        .iter()
        .map(|d| {
            d.platform
                .as_ref()
                .map_or_else(|| "unknown".to_string(), Platform::to_string)
        })
        .collect();
    available.dedup();
    Err(RegistryError::PlatformNotFound {
        source_name: source_name.to_string(),
        wanted: wanted.to_string(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.to_string(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            platform: Some(Platform {
                architecture: arch.to_string(),
                os: os.to_string(),
                variant: variant.map(str::to_string),
                os_version: None,
            }),
            annotations: None,
        }
    }

    #[test]
    fn platform_selection() {
        let index = [
            entry("linux", "amd64", None),
            entry("linux", "arm64", None),
            entry("linux", "arm", Some("v7")),
            entry("unknown", "unknown", None),
        ];
        let pick = |os, arch| select_platform(&index, &WantedPlatform::new(os, arch), "test");
        assert_eq!(pick("linux", "amd64").unwrap().platform, index[0].platform);
        assert_eq!(pick("linux", "x86_64").unwrap().platform, index[0].platform);
        assert_eq!(
            pick("linux", "arm64/v8").unwrap().platform,
            index[1].platform
        );
        assert_eq!(pick("linux", "arm/v7").unwrap().platform, index[2].platform);
        let err = pick("linux", "s390x").unwrap_err().to_string();
        assert!(
            err.contains("linux/s390x")
                && err.contains("linux/amd64, linux/arm64, linux/arm/v7, unknown/unknown"),
            "{err}"
        );
    }

    #[test]
    fn media_type_from_header_document_or_shape() {
        let digest = "sha256:x";
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1","size":1},"layers":[]}"#;
        assert!(matches!(
            parse(manifest, None, "t", digest).unwrap(),
            Parsed::Image { media_type, .. } if media_type == OCI_MANIFEST
        ));
        assert!(matches!(
            parse(manifest, Some(DOCKER_MANIFEST), "t", digest).unwrap(),
            Parsed::Image { media_type, .. } if media_type == DOCKER_MANIFEST
        ));
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert!(matches!(
            parse(index, Some("application/json"), "t", digest).unwrap(),
            Parsed::Index { .. }
        ));
        let helm = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:1","size":1},"layers":[]}"#;
        let err = parse(helm, Some(OCI_MANIFEST), "t", digest)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("helm") && err.contains("not a container image"),
            "{err}"
        );
        let err = parse(
            br#"{"schemaVersion":1}"#,
            Some(DOCKER_SCHEMA1_SIGNED),
            "t",
            digest,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("schema 1"), "{err}");
    }
}
