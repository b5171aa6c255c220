//! Pulling an image from a registry (through its mirrors first) into the blob cache.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use crate::cache::{Expect, StoreError};
use crate::client::{self, Endpoint, FetchedManifest, Http};
use crate::credentials::{CredentialLookup, Keychain};
use crate::digest;
use crate::manifest::{self, Parsed, WantedPlatform};
use crate::{
    BlobCache, Descriptor, Event, ImageSource, PulledImage, Reference, RegistryConfig,
    RegistryError,
};

/// How many blobs are fetched (or verified in the cache) at once.
const JOBS: usize = 4;
const ATTEMPTS: u32 = 3;
/// Indexes may nest (an index entry that is itself an index); follow at most this deep.
const MAX_INDEX_DEPTH: usize = 3;
const PROGRESS_STEP: u64 = 1024 * 1024;

/// Pulls `reference` for `platform` (`(os, arch)`, arch optionally `arch/variant`) into `cache`.
///
/// The manifest bytes are kept exactly as served. Everything already in the cache is used
/// without downloading it again, and a reference pinned by digest whose manifest, config and
/// layers are all cached needs no network at all. Mirrors configured for the registry are tried
/// first; if they all fail, the registry itself is, and if that fails too the error lists every
/// attempt.
pub fn pull(
    reference: &Reference,
    platform: (&str, &str),
    config: &RegistryConfig,
    cache: &BlobCache,
    progress: &dyn Fn(Event),
) -> Result<PulledImage, RegistryError> {
    let wanted = WantedPlatform::new(platform.0, platform.1);
    cache.remove_stale_temp_files();
    let keychain = Keychain::load(config)?;

    let mut sources: Vec<Source> = config
        .mirrors_for(&reference.registry)
        .map(|url| Source {
            name: format!("mirror {url} (for {})", reference.registry),
            login: url_host(url),
            bases: vec![url.to_string()],
        })
        .collect();
    sources.push(Source {
        name: reference.registry.clone(),
        login: reference.registry.clone(),
        bases: client::registry_bases(&reference.registry, config),
    });

    let count = sources.len();
    let mut attempts = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        let lookup = keychain.lookup(&source.login, &reference.repository);
        let hosts = [source.login.as_str(), client::registry_host(&source.login)];
        let http = client::http_for(config, &hosts)?;
        let endpoint = LazyEndpoint {
            http,
            source,
            lookup,
            endpoint: Mutex::new(None),
        };
        match pull_from(&endpoint, reference, &wanted, cache, progress) {
            Ok(image) => return Ok(image),
            Err(error) if count == 1 => return Err(error),
            Err(error) => {
                if i + 1 < count {
                    progress(Event::EndpointFailed {
                        endpoint: endpoint.source.name.clone(),
                        error: error.to_string(),
                    });
                }
                attempts.push((endpoint.source.name, error));
            }
        }
    }
    Err(RegistryError::AllEndpointsFailed {
        reference: reference.to_string(),
        attempts,
    })
}

struct Source {
    name: String,
    login: String,
    bases: Vec<String>,
}

/// An endpoint that is only contacted (pinged, authenticated) when something is not cached.
struct LazyEndpoint {
    http: Http,
    source: Source,
    lookup: CredentialLookup,
    endpoint: Mutex<Option<Arc<Endpoint>>>,
}

impl LazyEndpoint {
    fn get(&self, emit: &dyn Fn(Event)) -> Result<Arc<Endpoint>, RegistryError> {
        let mut slot = self.endpoint.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(endpoint) = &*slot {
            return Ok(endpoint.clone());
        }
        let endpoint = Arc::new(Endpoint::connect(
            &self.http,
            &self.source.name,
            &self.source.login,
            &self.source.bases,
            &self.lookup,
        )?);
        emit(Event::Connected {
            endpoint: self.source.name.clone(),
        });
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    fn name(&self) -> &str {
        &self.source.name
    }
}

fn pull_from(
    endpoint: &LazyEndpoint,
    reference: &Reference,
    wanted: &WantedPlatform,
    cache: &BlobCache,
    progress: &dyn Fn(Event),
) -> Result<PulledImage, RegistryError> {
    let repository = reference.repository.as_str();
    let (mut bytes, mut content_type, mut digest) =
        top_manifest(endpoint, reference, cache, progress)?;
    let mut index_digest = None;
    for depth in 0.. {
        match manifest::parse(&bytes, content_type.as_deref(), endpoint.name(), &digest)? {
            Parsed::Image {
                media_type,
                config,
                layers,
            } => {
                let total_bytes = layers.iter().map(|l| l.size).sum();
                progress(Event::Resolved {
                    reference: reference.to_string(),
                    manifest_digest: digest.clone(),
                    layers: layers.len(),
                    total_bytes,
                });
                ensure_blobs(
                    endpoint,
                    repository,
                    std::slice::from_ref(&config),
                    cache,
                    progress,
                )?;
                let config_bytes = cache
                    .read_checked(&config.digest, Some(config.size))
                    .ok_or_else(|| RegistryError::Io {
                        action: "read back the cached config blob",
                        path: cache.root().to_path_buf(),
                        source: std::io::Error::other(format!(
                            "{} vanished or changed",
                            config.digest
                        )),
                    })?;
                ensure_blobs(endpoint, repository, &layers, cache, progress)?;
                return Ok(PulledImage {
                    source: ImageSource::Registry(reference.clone()),
                    manifest_bytes: bytes,
                    manifest_digest: digest,
                    manifest_media_type: media_type,
                    index_digest,
                    config_bytes,
                    config_digest: config.digest,
                    layers,
                });
            }
            Parsed::Index { manifests, .. } => {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(RegistryError::InvalidManifest {
                        source_name: endpoint.name().to_string(),
                        digest,
                        message: format!("indexes nest more than {MAX_INDEX_DEPTH} deep"),
                    });
                }
                let source_name = if endpoint.name() == reference.registry {
                    format!("{reference} (index {digest})")
                } else {
                    format!("{reference} (index {digest}, via {})", endpoint.name())
                };
                let chosen = manifest::select_platform(&manifests, wanted, &source_name)?.clone();
                index_digest.get_or_insert_with(|| digest.clone());
                let (child, child_type) =
                    manifest_by_descriptor(endpoint, repository, &chosen, cache, progress)?;
                bytes = child;
                content_type = child_type;
                digest = chosen.digest;
            }
        }
    }
    unreachable!("the loop returns or fails")
}

/// The manifest `reference` names: from the cache when pinned by digest (or when a `HEAD`
/// reports a cached digest for a tag), else fetched, verified and cached.
fn top_manifest(
    endpoint: &LazyEndpoint,
    reference: &Reference,
    cache: &BlobCache,
    progress: &dyn Fn(Event),
) -> Result<(Vec<u8>, Option<String>, String), RegistryError> {
    let repository = reference.repository.as_str();
    if let Some(pinned) = &reference.digest {
        if let Some(bytes) = cache.read_checked(pinned, None) {
            return Ok((bytes, None, pinned.clone()));
        }
        let ep = endpoint.get(progress)?;
        let fetched = retry(|| ep.get_manifest(repository, pinned))?;
        let what = format!("the manifest of {reference}");
        verify_manifest(endpoint, &fetched, pinned, &what)?;
        store_manifest(cache, &fetched.bytes, pinned)?;
        return Ok((fetched.bytes, fetched.content_type, pinned.clone()));
    }
    let tag = reference.manifest_reference();
    let ep = endpoint.get(progress)?;
    if let Some((digest, content_type)) = retry(|| ep.head_manifest(repository, tag))?
        && digest::parse(&digest).is_ok()
        && let Some(bytes) = cache.read_checked(&digest, None)
    {
        return Ok((bytes, content_type, digest));
    }
    let fetched = retry(|| ep.get_manifest(repository, tag))?;
    let digest = match fetched
        .digest_header
        .as_deref()
        .filter(|d| digest::parse(d).is_ok())
    {
        Some(header) => {
            let what =
                format!("the manifest of {reference} (per its Docker-Content-Digest header)");
            verify_manifest(endpoint, &fetched, header, &what)?;
            header.to_string()
        }
        None => digest::sha256(&fetched.bytes),
    };
    store_manifest(cache, &fetched.bytes, &digest)?;
    Ok((fetched.bytes, fetched.content_type, digest))
}

/// The manifest an index entry points at, checked against the entry's digest and size.
fn manifest_by_descriptor(
    endpoint: &LazyEndpoint,
    repository: &str,
    descriptor: &Descriptor,
    cache: &BlobCache,
    progress: &dyn Fn(Event),
) -> Result<(Vec<u8>, Option<String>), RegistryError> {
    digest::parse(&descriptor.digest)?;
    if let Some(bytes) = cache.read_checked(&descriptor.digest, Some(descriptor.size)) {
        return Ok((bytes, Some(descriptor.media_type.clone())));
    }
    let ep = endpoint.get(progress)?;
    let fetched = retry(|| ep.get_manifest(repository, &descriptor.digest))?;
    let what = format!("manifest {} of {repository}", descriptor.digest);
    verify_manifest(endpoint, &fetched, &descriptor.digest, &what)?;
    if fetched.bytes.len() as u64 != descriptor.size {
        return Err(RegistryError::SizeMismatch {
            source_name: endpoint.name().to_string(),
            digest: descriptor.digest.clone(),
            expected: descriptor.size,
            actual: fetched.bytes.len().to_string(),
        });
    }
    store_manifest(cache, &fetched.bytes, &descriptor.digest)?;
    let content_type = fetched
        .content_type
        .or_else(|| Some(descriptor.media_type.clone()));
    Ok((fetched.bytes, content_type))
}

fn verify_manifest(
    endpoint: &LazyEndpoint,
    fetched: &FetchedManifest,
    expected: &str,
    what: &str,
) -> Result<(), RegistryError> {
    let algorithm = digest::parse(expected)?.algorithm;
    let actual = digest::of_bytes(algorithm, &fetched.bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            source_name: endpoint.name().to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

fn store_manifest(cache: &BlobCache, bytes: &[u8], digest: &str) -> Result<(), RegistryError> {
    let expect = Expect {
        digest: Some(digest),
        size: Some(bytes.len() as u64),
    };
    match cache.store(bytes, expect, &mut |_| {}) {
        Ok(_) => Ok(()),
        Err(StoreError::Cache(e)) => Err(e),
        Err(other) => unreachable!("the manifest was verified before storing: {other:?}"),
    }
}

/// Makes sure every blob is in the cache, fetching the missing ones `JOBS` at a time.
fn ensure_blobs(
    endpoint: &LazyEndpoint,
    repository: &str,
    blobs: &[Descriptor],
    cache: &BlobCache,
    progress: &dyn Fn(Event),
) -> Result<(), RegistryError> {
    let mut unique: Vec<&Descriptor> = Vec::with_capacity(blobs.len());
    for blob in blobs {
        digest::parse(&blob.digest)?;
        // Images may list a layer twice (Docker's empty layers); fetch it once.
        if !unique.iter().any(|b| b.digest == blob.digest) {
            unique.push(blob);
        }
    }
    let blobs = unique;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Event>();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..JOBS.min(blobs.len()))
            .map(|_| {
                let sender = sender.clone();
                let (next, failed, blobs) = (&next, &failed, &blobs);
                scope.spawn(move || -> Result<(), RegistryError> {
                    let emit = |event| {
                        let _ = sender.send(event);
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= blobs.len() || failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        if let Err(error) =
                            ensure_blob(endpoint, repository, blobs[i], cache, &emit)
                        {
                            failed.store(true, Ordering::Relaxed);
                            return Err(error);
                        }
                    }
                })
            })
            .collect();
        drop(sender);
        for event in receiver {
            progress(event);
        }
        let mut result = Ok(());
        for worker in workers {
            let outcome = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    })
}

fn ensure_blob(
    endpoint: &LazyEndpoint,
    repository: &str,
    blob: &Descriptor,
    cache: &BlobCache,
    emit: &dyn Fn(Event),
) -> Result<(), RegistryError> {
    if cache.lookup(&blob.digest, Some(blob.size)).is_some() {
        emit(Event::BlobCached {
            digest: blob.digest.clone(),
            size: blob.size,
        });
        return Ok(());
    }
    emit(Event::BlobStarted {
        digest: blob.digest.clone(),
        size: blob.size,
    });
    let ep = endpoint.get(emit)?;
    retry(|| {
        let response = ep.get_blob(repository, &blob.digest)?;
        let reader = response.into_body().into_reader();
        let mut reported = 0;
        let mut on_bytes = |done: u64| {
            if done - reported >= PROGRESS_STEP {
                reported = done;
                emit(Event::BlobProgress {
                    digest: blob.digest.clone(),
                    downloaded: done,
                    size: blob.size,
                });
            }
        };
        let expect = Expect {
            digest: Some(&blob.digest),
            size: Some(blob.size),
        };
        match cache.store(reader, expect, &mut on_bytes) {
            Ok(_) => Ok(()),
            Err(StoreError::Source(e)) => Err(RegistryError::Transport {
                registry: endpoint.name().to_string(),
                method: "GET",
                url: format!("/v2/{repository}/blobs/{}", blob.digest),
                message: format!("the download broke off: {e}"),
                retryable: true,
            }),
            Err(StoreError::Cache(e)) => Err(e),
            Err(StoreError::TooLong { expected }) => Err(RegistryError::SizeMismatch {
                source_name: endpoint.name().to_string(),
                digest: blob.digest.clone(),
                expected,
                actual: format!("more than {expected}"),
            }),
            Err(StoreError::Mismatch {
                actual_digest: _,
                actual_size,
            }) if actual_size != blob.size => Err(RegistryError::SizeMismatch {
                source_name: endpoint.name().to_string(),
                digest: blob.digest.clone(),
                expected: blob.size,
                actual: actual_size.to_string(),
            }),
            Err(StoreError::Mismatch { actual_digest, .. }) => Err(RegistryError::DigestMismatch {
                source_name: endpoint.name().to_string(),
                what: format!("blob {} of {repository}", blob.digest),
                expected: blob.digest.clone(),
                actual: actual_digest,
            }),
        }
    })?;
    emit(Event::BlobDone {
        digest: blob.digest.clone(),
        size: blob.size,
    });
    Ok(())
}

/// Retries transient failures (network errors, 5xx, 429) a couple of times with a short backoff.
fn retry<T>(mut attempt: impl FnMut() -> Result<T, RegistryError>) -> Result<T, RegistryError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt() {
            Err(error) if tries < ATTEMPTS && transient(&error) => {
                std::thread::sleep(Duration::from_millis(300 * u64::from(tries)));
            }
            other => return other,
        }
    }
}

fn transient(error: &RegistryError) -> bool {
    match error {
        RegistryError::Transport { retryable, .. } => *retryable,
        RegistryError::Status { status, .. } => {
            matches!(status, 408 | 429 | 499 | 500 | 502 | 503 | 504 | 522)
        }
        _ => false,
    }
}

/// `http://host:port/prefix` → `host:port`.
fn url_host(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}
