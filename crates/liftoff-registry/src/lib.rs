//! Getting base images without a Docker daemon: pull from OCI/Docker registries (mirrors,
//! anonymous and credentialed token auth, Basic auth, extra CAs) or read OCI layouts and
//! archives, into a content-addressed blob cache that verifies everything it hands out; and
//! push OCI layouts to registries ([`push_layout`]), verifying the result.
//!
//! Manifests are kept byte-exact (their digests are what images are pinned by), so nothing here
//! re-serialises one.

mod cache;
mod client;
mod config;
mod credentials;
mod digest;
mod error;
mod layout;
mod manifest;
mod pull;
mod push;
mod reference;

use std::fmt;
use std::path::PathBuf;

pub use cache::BlobCache;
pub use config::{
    CA_CERTS_VAR, DEFAULT_CERTS_D, ExplicitCredentials, HttpLog, INSECURE_VAR, MIRRORS_VAR,
    PASSWORD_VAR, RegistryConfig, USERNAME_VAR,
};
pub use digest::sha256;
pub use error::RegistryError;
pub use layout::{read_oci_archive, read_oci_layout};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, OCI_INDEX, OCI_MANIFEST, Platform,
};
pub use pull::pull;
pub use push::{BlobOutcome, PushEvent, PushOptions, PushedImage, push_layout};

/// The HTTP agent liftoff uses for registries (Mozilla roots plus the configured extra CAs), for
/// other downloads that should trust the same certificates (`ADD <url>`).
pub fn http_agent(config: &RegistryConfig) -> Result<ureq::Agent, RegistryError> {
    client::agent(config)
}
pub use reference::{DOCKER_HUB, Reference};

/// Where a [`PulledImage`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Registry(Reference),
    OciLayout { path: PathBuf, tag: Option<String> },
    OciArchive { path: PathBuf, tag: Option<String> },
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, path, tag) = match self {
            Self::Registry(reference) => return write!(f, "{reference}"),
            Self::OciLayout { path, tag } => ("oci", path, tag),
            Self::OciArchive { path, tag } => ("oci-archive", path, tag),
        };
        write!(f, "{kind}:{}", path.display())?;
        if let Some(tag) = tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

/// An image whose manifest, config and layers are all in the [`BlobCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    pub source: ImageSource,
    /// The image manifest exactly as served (never re-serialised).
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: String,
    /// OCI or Docker schema 2 manifest media type.
    pub manifest_media_type: String,
    /// The digest of the index (manifest list) the manifest was selected from, if any: what a
    /// multi-platform `name@sha256:…` pin refers to.
    pub index_digest: Option<String>,
    pub config_bytes: Vec<u8>,
    pub config_digest: String,
    /// The layers, in order; each is in the cache (`cache.path(&layer.digest)`).
    pub layers: Vec<Descriptor>,
}

/// Progress of a [`pull`]. Events arrive on the calling thread.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A registry or mirror was contacted (only happens when something is not cached).
    Connected {
        endpoint: String,
    },
    /// A mirror (or the registry) failed; the next endpoint will be tried.
    EndpointFailed {
        endpoint: String,
        error: String,
    },
    /// The image manifest is known.
    Resolved {
        reference: String,
        manifest_digest: String,
        layers: usize,
        total_bytes: u64,
    },
    /// A blob was already in the cache (and verified).
    BlobCached {
        digest: String,
        size: u64,
    },
    BlobStarted {
        digest: String,
        size: u64,
    },
    BlobProgress {
        digest: String,
        downloaded: u64,
        size: u64,
    },
    BlobDone {
        digest: String,
        size: u64,
    },
}
