//! Pushing an image from an OCI layout to a registry, the way go-containerregistry does it:
//! for each blob, `HEAD` (skip it if present), else try a cross-repository mount from each
//! `mount_from` repository, else upload it (one `PUT`, or `PATCH` chunks then a `PUT`); layers in
//! parallel, the config after them, the manifest last with its exact bytes. Then everything is
//! checked with `HEAD` requests before the push counts as done.
//!
//! Transient failures (connection errors, 408, 429, 499, 500, 502, 503, 504, 522) are retried
//! with exponential backoff and jitter, honouring `Retry-After` (capped at 30 s), at most 5
//! attempts; a blob whose upload session breaks is uploaded again from scratch (starting with
//! the `HEAD`, so an upload that completed without its answer arriving is not repeated).
//!
//! Upload sessions continue wherever the registry's `Location` says, under these rules (see
//! `Endpoint::location`): relative locations resolve against the registry; an absolute one on
//! the registry's own host keeps the scheme liftoff uses; one on another host is refused if it
//! would downgrade HTTPS to HTTP, or if it is a loopback/private/link-local address (or
//! `localhost`) while the registry itself is not. Credentials are only sent to the registry's
//! own origin. Uploads never follow HTTP redirects.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::Body;
use ureq::http::{Method, Response};

use crate::client::{
    self, Access, Endpoint, MANIFEST_LIMIT, Payload, encode_query, error_message, header,
};
use crate::credentials::Keychain;
use crate::digest;
use crate::layout::{layout_manifests, read_small, select_tag};
use crate::manifest::{self, Parsed};
use crate::reference::looks_like_registry;
use crate::{Descriptor, Reference, RegistryConfig, RegistryError};

const DEFAULT_JOBS: usize = 4;
const MAX_ATTEMPTS: u32 = 5;
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A `Retry-After` longer than this is cut short (and counts as one attempt).
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
const RETRY_STATUSES: [u16; 8] = [408, 429, 499, 500, 502, 503, 504, 522];
/// What a registry that does not do chunked uploads answers to the first `PATCH`.
const CHUNKING_REJECTED: [u16; 7] = [400, 405, 406, 411, 415, 416, 501];
const PROGRESS_STEP: u64 = 1024 * 1024;
const MAX_INDEX_DEPTH: usize = 3;

/// How to push.
pub struct PushOptions<'a> {
    /// Parallel blob uploads (default 4).
    pub jobs: usize,
    /// Repositories on the same registry to try a cross-repository mount from (e.g. the base
    /// image's), in order: `library/node`, or a full reference (`ghcr.io/org/base:1`) whose
    /// registry is the target's (others are ignored: mounts never cross registries).
    pub mount_from: Vec<String>,
    /// Upload in chunks of this size (`PATCH`), falling back to monolithic when the registry
    /// rejects chunking; `None` (or 0) = monolithic `PUT` (`POST` then `PUT ?digest=`). A
    /// registry's larger `OCI-Chunk-Min-Length` wins.
    pub chunk_size: Option<u64>,
    /// Called (from several threads) as the push progresses.
    pub progress: &'a (dyn Fn(&PushEvent) + Sync),
}

impl<'a> PushOptions<'a> {
    /// The defaults, reporting to `progress`.
    pub fn new(progress: &'a (dyn Fn(&PushEvent) + Sync)) -> Self {
        Self {
            jobs: DEFAULT_JOBS,
            mount_from: Vec::new(),
            chunk_size: None,
            progress,
        }
    }
}

fn no_progress(_: &PushEvent) {}

impl Default for PushOptions<'static> {
    fn default() -> Self {
        Self::new(&no_progress)
    }
}

impl fmt::Debug for PushOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushOptions")
            .field("jobs", &self.jobs)
            .field("mount_from", &self.mount_from)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

/// Progress of a [`push_layout`]. Blob events of different blobs interleave (they are pushed in
/// parallel); `BlobStarted` comes before and `BlobDone` after a blob's `BlobBytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushEvent {
    BlobStarted {
        digest: String,
        size: u64,
    },
    /// Upload progress; `sent` may go back when an upload is restarted.
    BlobBytes {
        digest: String,
        sent: u64,
        size: u64,
    },
    BlobDone {
        digest: String,
        size: u64,
        outcome: BlobOutcome,
    },
    ManifestPushed {
        digest: String,
    },
    /// The registry has the manifest and every blob (checked with `HEAD` after the push).
    Verified {
        digest: String,
    },
}

/// What it took to get a blob into the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    AlreadyPresent,
    /// Cross-repository mounted from this repository (on the same registry).
    Mounted {
        from: String,
    },
    Uploaded,
}

/// A pushed and verified image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `registry/repository:tag` as given.
    pub reference: String,
    /// The manifest digest (of the index, when the tag named one).
    pub digest: String,
    /// Blobs (layers and configs, each counted once) uploaded, mounted, and already present.
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
}

/// Pushes the image manifest tagged `tag` (or the only one) of the OCI image layout `layout` to
/// `target` (a reference with a tag, or pinned by the manifest's digest).
///
/// An index is pushed with all its manifests. The manifest bytes are pushed exactly as they
/// are in the layout (never re-serialised), so the digest stays the layout's. Every blob is
/// checked (present, right size) before anything is sent; a blob the registry already has is
/// not read at all. Success means the registry answered `HEAD` for the manifest by digest, for
/// the tag (with that digest) and for every blob.
pub fn push_layout(
    layout: &Path,
    tag: Option<&str>,
    target: &Reference,
    config: &RegistryConfig,
    opts: &PushOptions,
) -> Result<PushedImage, RegistryError> {
    let plan = plan(layout, tag)?;
    let top = plan.manifests.last().expect("a plan has its top manifest");
    let manifest_reference = match (&target.tag, &target.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(digest)) if *digest == top.digest => digest.clone(),
        (None, Some(digest)) => {
            return Err(RegistryError::InvalidReference {
                input: target.to_string(),
                reason: format!(
                    "it pins digest {digest}, but the image in the layout has digest {}",
                    top.digest
                ),
            });
        }
        (None, None) => {
            return Err(RegistryError::InvalidReference {
                input: target.to_string(),
                reason: "a push target needs a tag (`registry/repository:tag`)".to_string(),
            });
        }
    };
    let mount_from = mount_sources(target, &opts.mount_from)?;

    let keychain = Keychain::load(config)?;
    let lookup = keychain.lookup(&target.registry, &target.repository);
    let http = client::http_for(
        config,
        &[&target.registry, client::registry_host(&target.registry)],
    )?;
    let bases = client::registry_bases(&target.registry, config);
    let never = AtomicBool::new(false);
    let endpoint = with_retries(&never, || {
        Endpoint::connect(&http, &target.registry, &target.registry, &bases, &lookup)
            .map_err(Failure::from)
    })?;
    let pusher = Pusher {
        endpoint: &endpoint,
        access: Access::push(&target.repository, &mount_from),
        mount_from,
        opts,
        failed: AtomicBool::new(false),
    };

    // Layers, then configs (as registries that check references on config upload expect).
    let (configs, layers): (Vec<&LocalBlob>, Vec<&LocalBlob>) =
        plan.blobs.iter().partition(|b| b.config);
    let mut outcomes = pusher.parallel(&layers, |blob| pusher.push_blob(blob))?;
    outcomes.extend(pusher.parallel(&configs, |blob| pusher.push_blob(blob))?);

    let (children, _) = plan.manifests.split_at(plan.manifests.len() - 1);
    for child in children {
        pusher.put_manifest(&child.digest, child)?;
    }
    pusher.put_manifest(&manifest_reference, top)?;

    let all: Vec<&LocalBlob> = plan.blobs.iter().collect();
    pusher.parallel(&all, |blob| pusher.verify_blob(blob))?;
    for manifest in &plan.manifests {
        pusher.verify_manifest(&manifest.digest, manifest)?;
    }
    if manifest_reference != top.digest {
        pusher.verify_manifest(&manifest_reference, top)?;
    }
    (opts.progress)(&PushEvent::Verified {
        digest: top.digest.clone(),
    });

    let count = |wanted: fn(&BlobOutcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
    Ok(PushedImage {
        reference: target.to_string(),
        digest: top.digest.clone(),
        uploaded: count(|o| matches!(o, BlobOutcome::Uploaded)),
        mounted: count(|o| matches!(o, BlobOutcome::Mounted { .. })),
        skipped: count(|o| matches!(o, BlobOutcome::AlreadyPresent)),
    })
}

/// A blob of the layout.
#[derive(Debug)]
struct LocalBlob {
    digest: String,
    size: u64,
    path: PathBuf,
    config: bool,
}

/// A manifest of the layout, exactly as stored.
#[derive(Debug)]
struct LocalManifest {
    digest: String,
    media_type: String,
    bytes: Vec<u8>,
}

/// Everything to push: blobs (each once) and manifests, children before the index that lists
/// them, the tagged one last.
#[derive(Debug, Default)]
struct Plan {
    blobs: Vec<LocalBlob>,
    manifests: Vec<LocalManifest>,
}

/// Reads and checks the layout: the manifests (digest and size), and that every blob is there
/// with the right size. Nothing is sent before this succeeds.
fn plan(layout: &Path, tag: Option<&str>) -> Result<Plan, RegistryError> {
    let source_name = match tag {
        Some(tag) => format!("oci:{}:{tag}", layout.display()),
        None => format!("oci:{}", layout.display()),
    };
    let manifests = layout_manifests(
        layout,
        read_small(layout, "oci-layout")?,
        read_small(layout, "index.json")?,
        &source_name,
    )?;
    let top = select_tag(&manifests, tag)
        .map_err(|message| RegistryError::Layout {
            path: layout.to_path_buf(),
            message,
        })?
        .clone();
    let mut plan = Plan::default();
    visit(layout, &source_name, &top, 0, &mut plan)?;
    Ok(plan)
}

fn layout_error(layout: &Path, message: &str) -> RegistryError {
    RegistryError::Layout {
        path: layout.to_path_buf(),
        message: format!("{message}; nothing was pushed"),
    }
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, RegistryError> {
    let parsed = digest::parse(digest)?;
    Ok(layout
        .join("blobs")
        .join(parsed.algorithm.name())
        .join(parsed.hex))
}

fn visit(
    layout: &Path,
    source_name: &str,
    descriptor: &Descriptor,
    depth: usize,
    plan: &mut Plan,
) -> Result<(), RegistryError> {
    if plan.manifests.iter().any(|m| m.digest == descriptor.digest) {
        return Ok(());
    }
    if depth > MAX_INDEX_DEPTH {
        return Err(layout_error(
            layout,
            &format!("indexes nest more than {MAX_INDEX_DEPTH} deep"),
        ));
    }
    let bytes = read_manifest(layout, descriptor)?;
    let media_type = own_media_type(&bytes).unwrap_or_else(|| descriptor.media_type.clone());
    match manifest::parse(
        &bytes,
        Some(&descriptor.media_type),
        source_name,
        &descriptor.digest,
    )? {
        Parsed::Image { config, layers, .. } => {
            for (i, layer) in layers.iter().enumerate() {
                if non_distributable(&layer.media_type) {
                    continue;
                }
                let what = format!("layer {} of manifest {}", i + 1, short(&descriptor.digest));
                add_blob(layout, plan, layer, false, &what)?;
            }
            let what = format!("the config of manifest {}", short(&descriptor.digest));
            add_blob(layout, plan, &config, true, &what)?;
        }
        Parsed::Index { manifests } => {
            for child in &manifests {
                visit(layout, source_name, child, depth + 1, plan)?;
            }
        }
    }
    plan.manifests.push(LocalManifest {
        digest: descriptor.digest.clone(),
        media_type,
        bytes,
    });
    Ok(())
}

/// A manifest blob, checked against its descriptor.
fn read_manifest(layout: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, RegistryError> {
    let path = blob_path(layout, &descriptor.digest)?;
    let short_digest = short(&descriptor.digest);
    if descriptor.size > MANIFEST_LIMIT {
        return Err(layout_error(
            layout,
            &format!(
                "manifest {short_digest} is {} bytes, more than a registry accepts",
                descriptor.size
            ),
        ));
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(layout_error(
                layout,
                &format!(
                    "manifest {} is missing (expected at {})",
                    descriptor.digest,
                    path.display()
                ),
            ));
        }
        Err(e) => return Err(RegistryError::io("read", path, e)),
    };
    let algorithm = digest::parse(&descriptor.digest)?.algorithm;
    let actual = digest::of_bytes(algorithm, &bytes);
    if bytes.len() as u64 != descriptor.size || actual != descriptor.digest {
        return Err(layout_error(
            layout,
            &format!(
                "manifest {} does not match its descriptor ({} bytes with digest {actual}, expected {} bytes); the layout is damaged",
                descriptor.digest,
                bytes.len(),
                descriptor.size
            ),
        ));
    }
    Ok(bytes)
}

fn add_blob(
    layout: &Path,
    plan: &mut Plan,
    descriptor: &Descriptor,
    config: bool,
    what: &str,
) -> Result<(), RegistryError> {
    if plan.blobs.iter().any(|b| b.digest == descriptor.digest) {
        return Ok(());
    }
    let path = blob_path(layout, &descriptor.digest)?;
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => metadata,
        Ok(_) => {
            return Err(layout_error(
                layout,
                &format!("{} is not a file", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(layout_error(
                layout,
                &format!(
                    "blob {} ({what}) is missing (expected at {}); rebuild the layout or copy the blob into it",
                    descriptor.digest,
                    path.display()
                ),
            ));
        }
        Err(e) => return Err(RegistryError::io("read", path, e)),
    };
    if metadata.len() != descriptor.size {
        return Err(layout_error(
            layout,
            &format!(
                "blob {} ({what}) is {} bytes but the manifest says {}; the layout is damaged",
                descriptor.digest,
                metadata.len(),
                descriptor.size
            ),
        ));
    }
    plan.blobs.push(LocalBlob {
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        path,
        config,
    });
    Ok(())
}

/// The document's own `mediaType` (what registries check the `Content-Type` against).
fn own_media_type(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("mediaType")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Foreign (Windows base) layers are never pushed: they stay where their `urls` say.
fn non_distributable(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains("nondistributable")
}

/// `sha256:0123456789ab` for messages.
fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(digest.len(), |i| i + 13);
    &digest[..end.min(digest.len())]
}

/// The repositories to mount from: on the target's registry, not the target itself, each once.
fn mount_sources(target: &Reference, entries: &[String]) -> Result<Vec<String>, RegistryError> {
    let mut sources = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let first = entry.split('/').next().unwrap_or_default();
        let full = if entry.contains('/') && looks_like_registry(first) {
            entry.to_string()
        } else {
            format!("{}/{entry}", target.registry)
        };
        let reference: Reference = full.parse()?;
        if reference.registry == target.registry
            && reference.repository != target.repository
            && !sources.contains(&reference.repository)
        {
            sources.push(reference.repository);
        }
    }
    Ok(sources)
}

/// Why an attempt failed: for good, or worth another try (after at least `after`).
enum Failure {
    Fatal(RegistryError),
    Retry {
        error: RegistryError,
        after: Option<Duration>,
    },
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Transport {
                retryable: true, ..
            } => Self::Retry { error, after: None },
            other => Self::Fatal(other),
        }
    }
}

/// Runs `attempt` up to [`MAX_ATTEMPTS`] times, waiting between retryable failures.
fn with_retries<T>(
    failed: &AtomicBool,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T, RegistryError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt() {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(error)) => return Err(error),
            Err(Failure::Retry { error, after }) => {
                // Give up when out of attempts, or when another job failed for good.
                if tries >= MAX_ATTEMPTS || failed.load(Ordering::Relaxed) {
                    return Err(error);
                }
                std::thread::sleep(backoff(tries, after));
            }
        }
    }
}

/// `Retry-After` (capped) when given, else exponential from [`BACKOFF_BASE`] (capped); plus up
/// to half again of random jitter so parallel jobs do not retry in lockstep.
fn backoff(tries: u32, retry_after: Option<Duration>) -> Duration {
    let wait = retry_after.map_or_else(
        || {
            BACKOFF_BASE
                .saturating_mul(1 << (tries - 1).min(16))
                .min(BACKOFF_CAP)
        },
        |after| after.min(RETRY_AFTER_CAP),
    );
    let max_jitter = u64::try_from((wait / 2).as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let random = RandomState::new().hash_one(Instant::now());
    wait + Duration::from_millis(random % max_jitter)
}

/// `Retry-After: <seconds>` (the HTTP-date form is not used by registries).
fn retry_after(response: &Response<Body>) -> Option<Duration> {
    header(response, "retry-after")?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// `<url>?digest=<digest>` (or `&digest=` when it has a query).
fn with_digest(url: &str, digest: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", encode_query(&[("digest", digest)]))
}

/// How a chunked upload ended.
enum Chunked {
    Done,
    /// The registry does not take chunks; upload in one go instead.
    Rejected,
}

/// The state shared by the push's jobs.
struct Pusher<'a> {
    endpoint: &'a Endpoint,
    access: Access,
    mount_from: Vec<String>,
    opts: &'a PushOptions<'a>,
    /// Set when a job failed for good: the others stop.
    failed: AtomicBool,
}

impl Pusher<'_> {
    fn emit(&self, event: &PushEvent) {
        (self.opts.progress)(event);
    }

    fn repository(&self) -> &str {
        &self.access.repository
    }

    /// Runs `job` for every item, `jobs` at a time, keeping the order of the results. The first
    /// error stops the others (they finish their current item).
    fn parallel<T: Sync, R: Send>(
        &self,
        items: &[T],
        job: impl Fn(&T) -> Result<R, RegistryError> + Sync,
    ) -> Result<Vec<R>, RegistryError> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<R>>> =
            Mutex::new(std::iter::repeat_with(|| None).take(items.len()).collect());
        let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
        let workers = self.opts.jobs.max(1).min(items.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() || self.failed.load(Ordering::Relaxed) {
                            return;
                        }
                        match job(&items[i]) {
                            Ok(result) => {
                                results.lock().unwrap_or_else(PoisonError::into_inner)[i] =
                                    Some(result);
                            }
                            Err(error) => {
                                self.failed.store(true, Ordering::Relaxed);
                                first_error
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .get_or_insert(error);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(error) = first_error
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            return Err(error);
        }
        Ok(results
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .map(|r| r.expect("every item was processed"))
            .collect())
    }

    fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
    ) -> Result<Response<Body>, Failure> {
        self.endpoint
            .request(method, url, &self.access, headers, payload)
            .map_err(Failure::from)
    }

    /// A failure for an unexpected answer: auth problems are final, transient statuses are
    /// retried (after `Retry-After`), anything else is final.
    fn failure(&self, method: &'static str, url: &str, mut response: Response<Body>) -> Failure {
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Failure::Fatal(
                self.endpoint
                    .unauthorized(&self.access, status, &mut response),
            );
        }
        let after = retry_after(&response);
        let error = self.endpoint.status_error(method, url, &mut response);
        if RETRY_STATUSES.contains(&status) {
            Failure::Retry { error, after }
        } else {
            Failure::Fatal(error)
        }
    }

    /// The upload session went away (expired, or the registry restarted): start over.
    fn session_broken(
        &self,
        method: &'static str,
        url: &str,
        mut response: Response<Body>,
    ) -> Failure {
        Failure::Retry {
            error: self.endpoint.status_error(method, url, &mut response),
            after: None,
        }
    }

    fn push_blob(&self, blob: &LocalBlob) -> Result<BlobOutcome, RegistryError> {
        self.emit(&PushEvent::BlobStarted {
            digest: blob.digest.clone(),
            size: blob.size,
        });
        let outcome = with_retries(&self.failed, || self.push_blob_once(blob))?;
        self.emit(&PushEvent::BlobDone {
            digest: blob.digest.clone(),
            size: blob.size,
            outcome: outcome.clone(),
        });
        Ok(outcome)
    }

    /// One try, from scratch: `HEAD`, mounts, then an upload.
    fn push_blob_once(&self, blob: &LocalBlob) -> Result<BlobOutcome, Failure> {
        let base = self.endpoint.base();
        let repository = self.repository();
        let blob_url = format!("{base}/v2/{repository}/blobs/{}", blob.digest);
        let response = self.request(Method::HEAD, &blob_url, &[], &Payload::None)?;
        match response.status().as_u16() {
            200 => return Ok(BlobOutcome::AlreadyPresent),
            404 => {}
            _ => return Err(self.failure("HEAD", &blob_url, response)),
        }

        // (session URL, the registry's minimum chunk size)
        let mut session: Option<(String, u64)> = None;
        for from in &self.mount_from {
            let url = format!(
                "{base}/v2/{repository}/blobs/uploads/?{}",
                encode_query(&[("mount", &blob.digest), ("from", from)])
            );
            let response = match self.endpoint.request(
                Method::POST,
                &url,
                &self.access,
                &[],
                &Payload::Bytes(b""),
            ) {
                Ok(response) => response,
                // No pull access to `from`: not mountable from there.
                Err(RegistryError::Unauthorized { .. }) => continue,
                Err(other) => return Err(other.into()),
            };
            match response.status().as_u16() {
                201 => {
                    self.check_digest_header(&response, &blob.digest)?;
                    return Ok(BlobOutcome::Mounted { from: from.clone() });
                }
                // Refused, with an upload session to use instead.
                202 => session = Some(self.session(&url, &response)?),
                status if RETRY_STATUSES.contains(&status) => {
                    return Err(self.failure("POST", &url, response));
                }
                // Refused without a session (some registries say 404 for an unknown `from`).
                _ => {}
            }
        }

        let (location, min_chunk) = match session {
            Some(session) => session,
            None => self.start_upload()?,
        };
        if let Some(chunk) = self.opts.chunk_size.filter(|&c| c > 0)
            && blob.size > 0
        {
            match self.upload_chunked(blob, location, chunk.max(min_chunk).max(1))? {
                Chunked::Done => return Ok(BlobOutcome::Uploaded),
                Chunked::Rejected => {
                    let (location, _) = self.start_upload()?;
                    self.upload_monolithic(blob, &location)?;
                    return Ok(BlobOutcome::Uploaded);
                }
            }
        }
        self.upload_monolithic(blob, &location)?;
        Ok(BlobOutcome::Uploaded)
    }

    /// `POST /v2/<repository>/blobs/uploads/`: a new upload session.
    fn start_upload(&self) -> Result<(String, u64), Failure> {
        let url = format!(
            "{}/v2/{}/blobs/uploads/",
            self.endpoint.base(),
            self.repository()
        );
        let response = self.request(Method::POST, &url, &[], &Payload::Bytes(b""))?;
        if response.status().as_u16() != 202 {
            return Err(self.failure("POST", &url, response));
        }
        self.session(&url, &response)
    }

    fn session(&self, url: &str, response: &Response<Body>) -> Result<(String, u64), Failure> {
        let location = self
            .endpoint
            .location(url, response)
            .map_err(Failure::Fatal)?;
        let min_chunk = header(response, "oci-chunk-min-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok((location, min_chunk))
    }

    /// Reports upload progress of `blob`, at most every [`PROGRESS_STEP`] bytes and at the end.
    fn progress<'b>(
        &'b self,
        blob: &'b LocalBlob,
        offset: u64,
        reported: &'b AtomicU64,
    ) -> impl Fn(u64) + Sync + 'b {
        move |sent_in_request| {
            let sent = offset + sent_in_request;
            let last = reported.load(Ordering::Relaxed);
            if sent == blob.size || sent >= last + PROGRESS_STEP || sent < last {
                reported.store(sent, Ordering::Relaxed);
                self.emit(&PushEvent::BlobBytes {
                    digest: blob.digest.clone(),
                    sent,
                    size: blob.size,
                });
            }
        }
    }

    /// `PUT <session>?digest=…` with the whole blob.
    fn upload_monolithic(&self, blob: &LocalBlob, location: &str) -> Result<(), Failure> {
        let url = with_digest(location, &blob.digest);
        let reported = AtomicU64::new(0);
        let on_sent = self.progress(blob, 0, &reported);
        let response = self.request(
            Method::PUT,
            &url,
            &[("Content-Type", "application/octet-stream")],
            &Payload::File {
                path: &blob.path,
                offset: 0,
                len: blob.size,
                on_sent: &on_sent,
            },
        )?;
        self.finish_upload("PUT", &url, response, &blob.digest)
    }

    /// `PATCH` chunks of `chunk` bytes, then `PUT <session>?digest=…`.
    fn upload_chunked(
        &self,
        blob: &LocalBlob,
        mut location: String,
        chunk: u64,
    ) -> Result<Chunked, Failure> {
        let mut offset = 0;
        let reported = AtomicU64::new(0);
        while offset < blob.size {
            let len = chunk.min(blob.size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let on_sent = self.progress(blob, offset, &reported);
            let response = self.request(
                Method::PATCH,
                &location,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                &Payload::File {
                    path: &blob.path,
                    offset,
                    len,
                    on_sent: &on_sent,
                },
            )?;
            match response.status().as_u16() {
                202 => {}
                status if offset == 0 && CHUNKING_REJECTED.contains(&status) => {
                    return Ok(Chunked::Rejected);
                }
                404 | 416 => return Err(self.session_broken("PATCH", &location, response)),
                _ => return Err(self.failure("PATCH", &location, response)),
            }
            // `Range: 0-<last byte received>`: anything else means the session lost data.
            if let Some(range) = header(&response, "range") {
                let end = range
                    .trim()
                    .trim_start_matches("bytes=")
                    .split_once('-')
                    .and_then(|(_, end)| end.trim().parse::<u64>().ok());
                if end != Some(offset + len - 1) {
                    return Err(Failure::Retry {
                        error: RegistryError::Protocol {
                            registry: self.endpoint.name.clone(),
                            message: format!(
                                "after sending bytes {range_sent} of blob {} the upload session reports `Range: {range}`; the upload was restarted but kept failing",
                                blob.digest,
                                range_sent = format_args!("{offset}-{}", offset + len - 1),
                            ),
                        },
                        after: None,
                    });
                }
            }
            location = self
                .endpoint
                .location(&location, &response)
                .map_err(Failure::Fatal)?;
            offset += len;
        }
        let url = with_digest(&location, &blob.digest);
        let response = self.request(Method::PUT, &url, &[], &Payload::Bytes(b""))?;
        self.finish_upload("PUT", &url, response, &blob.digest)?;
        Ok(Chunked::Done)
    }

    /// Checks the answer to the final `PUT` of an upload.
    fn finish_upload(
        &self,
        method: &'static str,
        url: &str,
        mut response: Response<Body>,
        digest: &str,
    ) -> Result<(), Failure> {
        match response.status().as_u16() {
            200..=299 => self.check_digest_header(&response, digest),
            404 => Err(self.session_broken(method, url, response)),
            400 => {
                let message = error_message(&mut response);
                if message.contains("DIGEST_INVALID") || message.contains("SIZE_INVALID") {
                    Err(Failure::Fatal(RegistryError::DigestMismatch {
                        source_name: self.endpoint.name.clone(),
                        what: format!(
                            "the blob uploaded to {} (registry: {message})",
                            self.repository()
                        ),
                        expected: digest.to_string(),
                        actual: "something else (the layout's file changed or is damaged)"
                            .to_string(),
                    }))
                } else {
                    Err(Failure::Fatal(RegistryError::Status {
                        registry: self.endpoint.name.clone(),
                        method,
                        url: url.split('?').next().unwrap_or(url).to_string(),
                        status: 400,
                        message,
                    }))
                }
            }
            _ => Err(self.failure(method, url, response)),
        }
    }

    /// The registry's `Docker-Content-Digest`, when it sends one, must be `expected`.
    fn check_digest_header(
        &self,
        response: &Response<Body>,
        expected: &str,
    ) -> Result<(), Failure> {
        match header(response, "docker-content-digest") {
            Some(actual) if actual.trim() != expected => {
                Err(Failure::Fatal(RegistryError::DigestMismatch {
                    source_name: self.endpoint.name.clone(),
                    what: format!("{expected} as stored in {}", self.repository()),
                    expected: expected.to_string(),
                    actual: actual.trim().to_string(),
                }))
            }
            _ => Ok(()),
        }
    }

    /// `PUT /v2/<repository>/manifests/<reference>` with the manifest's exact bytes.
    fn put_manifest(&self, reference: &str, manifest: &LocalManifest) -> Result<(), RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.endpoint.base(),
            self.repository()
        );
        with_retries(&self.failed, || {
            let response = self.request(
                Method::PUT,
                &url,
                &[("Content-Type", &manifest.media_type)],
                &Payload::Bytes(&manifest.bytes),
            )?;
            match response.status().as_u16() {
                200..=299 => self.check_digest_header(&response, &manifest.digest),
                _ => Err(self.failure("PUT", &url, response)),
            }
        })?;
        self.emit(&PushEvent::ManifestPushed {
            digest: manifest.digest.clone(),
        });
        Ok(())
    }

    fn verify_blob(&self, blob: &LocalBlob) -> Result<(), RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.endpoint.base(),
            self.repository(),
            blob.digest
        );
        with_retries(&self.failed, || {
            let response = self.request(Method::HEAD, &url, &[], &Payload::None)?;
            match response.status().as_u16() {
                200 => Ok(()),
                404 => Err(Failure::Fatal(RegistryError::Protocol {
                    registry: self.endpoint.name.clone(),
                    message: format!(
                        "verifying the push failed: {} does not have blob {} (HEAD answered 404) although it was pushed; the push is incomplete, run it again",
                        self.repository(),
                        blob.digest
                    ),
                })),
                _ => Err(self.failure("HEAD", &url, response)),
            }
        })
    }

    /// `HEAD` of the manifest by `reference` must answer with `manifest`'s digest.
    fn verify_manifest(
        &self,
        reference: &str,
        manifest: &LocalManifest,
    ) -> Result<(), RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.endpoint.base(),
            self.repository()
        );
        let accept = format!("{}, {}", manifest.media_type, manifest::ACCEPT);
        with_retries(&self.failed, || {
            let response =
                self.request(Method::HEAD, &url, &[("Accept", &accept)], &Payload::None)?;
            match response.status().as_u16() {
                200 => match header(&response, "docker-content-digest") {
                    Some(actual) if actual.trim() != manifest.digest => {
                        Err(Failure::Fatal(RegistryError::Protocol {
                            registry: self.endpoint.name.clone(),
                            message: format!(
                                "verifying the push failed: {}:{reference} is {} instead of the pushed {} (did another push replace it?)",
                                self.repository(),
                                actual.trim(),
                                manifest.digest
                            ),
                        }))
                    }
                    _ => Ok(()),
                },
                404 => Err(Failure::Fatal(RegistryError::Protocol {
                    registry: self.endpoint.name.clone(),
                    message: format!(
                        "verifying the push failed: {} has no manifest `{reference}` (HEAD answered 404) although it was pushed; the push is incomplete, run it again",
                        self.repository()
                    ),
                })),
                _ => Err(self.failure("HEAD", &url, response)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let first = backoff(1, None);
        assert!(
            first >= BACKOFF_BASE && first <= BACKOFF_BASE * 3 / 2,
            "{first:?}"
        );
        let third = backoff(3, None);
        assert!(third >= BACKOFF_BASE * 4, "{third:?}");
        assert!(backoff(30, None) <= BACKOFF_CAP * 3 / 2);
        let after = backoff(1, Some(Duration::from_secs(2)));
        assert!(after >= Duration::from_secs(2) && after <= Duration::from_secs(3));
        assert!(backoff(1, Some(Duration::from_hours(1))) <= RETRY_AFTER_CAP * 3 / 2);
    }

    #[test]
    fn mount_sources_stay_on_the_registry() {
        let target: Reference = "127.0.0.1:5000/app/x:v1".parse().unwrap();
        let sources = mount_sources(
            &target,
            &[
                "base/node".to_string(),
                "127.0.0.1:5000/base/node:20".to_string(),
                "ghcr.io/other/base".to_string(),
                "app/x".to_string(),
                " ".to_string(),
                "127.0.0.1:5000/lib/y@sha256:0000000000000000000000000000000000000000000000000000000000000000".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(sources, ["base/node", "lib/y"]);
        let hub: Reference = "docker.io/me/app:1".parse().unwrap();
        assert_eq!(
            mount_sources(&hub, &["node".to_string()]).unwrap(),
            ["library/node"]
        );
        assert!(mount_sources(&hub, &["Bad Name".to_string()]).is_err());
    }

    #[test]
    fn digest_query_and_short_digests() {
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u?_state=s", "sha256:ab"),
            "http://r/v2/a/blobs/uploads/u?_state=s&digest=sha256%3Aab"
        );
        assert_eq!(
            with_digest("http://r/u", "sha256:ab"),
            "http://r/u?digest=sha256%3Aab"
        );
        assert_eq!(
            short(&format!("sha256:{}", "a".repeat(64))),
            "sha256:aaaaaaaaaaaa"
        );
        assert_eq!(short("x"), "x");
    }
}
