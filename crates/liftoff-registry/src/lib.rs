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

/// What [`check_registry`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCheck {
    /// The registry, normalised (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The base URL that answered: `https://host`, or `http://host` for loopback and insecure
    /// registries.
    pub base: String,
    /// Where the accepted credentials came from, when the registry asked for authentication and
    /// liftoff had some (`None`: the registry is open, or allows anonymous access).
    pub credentials: Option<String>,
}

/// Checks that `registry` (`host[:port]`) answers the distribution API at `/v2/` and, when it
/// asks for authentication, that the credentials liftoff would push with (explicit, Docker
/// config, credential helpers, auth files) are accepted: Basic is answered with them; for a
/// token challenge a token without repository scope is fetched with them (as `docker login`
/// does) and `/v2/` is asked again. A rejection is [`RegistryError::Unauthorized`] with a hint;
/// no answer is [`RegistryError::Transport`].
pub fn check_registry(
    registry: &str,
    config: &RegistryConfig,
) -> Result<RegistryCheck, RegistryError> {
    let host = registry
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let not_a_host = || {
        RegistryError::InvalidReference {
        input: registry.to_string(),
        reason: "a registry is a host name or address with an optional `:port` (e.g. ghcr.io, localhost:5000)".to_string(),
    }
    };
    if host.is_empty() || host.contains('/') {
        return Err(not_a_host());
    }
    let probe: Reference = format!("{host}/liftoff-check")
        .parse()
        .map_err(|_| not_a_host())?;
    if probe.repository.contains('/') && probe.repository != "library/liftoff-check" {
        return Err(not_a_host());
    }
    let keychain = credentials::Keychain::load(config)?;
    let lookup = keychain.lookup(&probe.registry, &probe.repository);
    let http = client::http_for(
        config,
        &[&probe.registry, client::registry_host(&probe.registry)],
    )?;
    let bases = client::registry_bases(&probe.registry, config);
    let endpoint =
        client::Endpoint::connect(&http, &probe.registry, &probe.registry, &bases, &lookup)?;
    let url = format!("{}/v2/", endpoint.base());
    let mut response = endpoint.request(
        ureq::http::Method::GET,
        &url,
        &client::Access::login(),
        &[],
        &client::Payload::None,
    )?;
    if !response.status().is_success() {
        return Err(endpoint.status_error("GET", &url, &mut response));
    }
    Ok(RegistryCheck {
        base: endpoint.base().to_string(),
        credentials: endpoint.credentials_origin(),
        registry: probe.registry,
    })
}

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
