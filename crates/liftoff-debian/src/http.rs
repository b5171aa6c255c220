//! HTTP downloads: small files into memory, large ones streamed to a temp file, hashed on the way,
//! verified, then renamed into place.

use crate::error::DebianError;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// A failed request: `status` is set when the server answered.
#[derive(Debug)]
pub(crate) struct HttpFailure {
    pub status: Option<u16>,
    pub message: String,
}

impl HttpFailure {
    pub fn into_error(self, url: &str) -> DebianError {
        DebianError::Http {
            url: url.to_string(),
            message: self.message,
        }
    }
}

pub(crate) fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_mins(1)))
        .timeout_recv_body(Some(Duration::from_mins(15)))
        .user_agent(concat!("liftoff/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        CachingResolver::default(),
    )
}

/// Resolves each host once per agent. ureq looks a host up again for every new
/// connection; downloading a few hundred `.deb`s from one mirror then costs a few
/// hundred DNS queries, and a resolver that drops one now and then (glibc waits 5 s
/// before retrying) adds long stalls. apt resolves once, and so does this.
#[derive(Debug, Default)]
struct CachingResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    cache: std::sync::Mutex<
        std::collections::HashMap<String, ureq::unversioned::resolver::ResolvedSocketAddrs>,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority()
                .map(ureq::http::uri::Authority::as_str)
                .unwrap_or_default()
        );
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, addrs.clone());
        }
        Ok(addrs)
    }
}

fn open(agent: &ureq::Agent, url: &str) -> Result<ureq::Body, HttpFailure> {
    let mut last = None;
    for attempt in 0..2 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        match agent.get(url).call() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(resp.into_body());
                }
                let failure = HttpFailure {
                    status: Some(status),
                    message: format!("HTTP {status}"),
                };
                // Retry server errors once; a 4xx is an answer.
                if status < 500 {
                    return Err(failure);
                }
                last = Some(failure);
            }
            Err(e) => {
                last = Some(HttpFailure {
                    status: None,
                    message: e.to_string(),
                });
            }
        }
    }
    Err(last.unwrap_or(HttpFailure {
        status: None,
        message: "no attempt made".into(),
    }))
}

/// GET a small file into memory (at most `limit` bytes).
pub(crate) fn get_bytes(
    agent: &ureq::Agent,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, HttpFailure> {
    let mut body = open(agent, url)?;
    body.with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| HttpFailure {
            status: None,
            message: e.to_string(),
        })
}

/// Hex SHA-256 and size of a file, or `None` when it cannot be read.
pub(crate) fn hash_file(path: &Path) -> Option<(String, u64)> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Some((hex(&h.finalize()), size))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What a downloaded file must match.
pub(crate) struct Expected<'a> {
    pub sha256: &'a str,
    pub size: u64,
    /// For messages: ".deb of jq 1.6-2.1", "Packages index main/binary-amd64".
    pub what: &'a str,
}

/// Download `url` to `dest` through a temp file in the same directory; the file is renamed into
/// place only when its SHA-256 and size match. Returns `Err(Ok(failure))` for HTTP failures
/// (so callers can fall back) and `Err(Err(error))` for everything else.
pub(crate) fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    expected: &Expected<'_>,
) -> Result<(), Result<HttpFailure, DebianError>> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Err(DebianError::io("create", dir, e)))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(|e| Err(DebianError::io("create a temporary file in", dir, e)))?;
    let body = open(agent, url).map_err(Ok)?;
    let mut reader = body
        .into_with_config()
        .limit(expected.size.saturating_add(1))
        .reader();
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            Ok(HttpFailure {
                status: None,
                message: format!("reading the body: {e}"),
            })
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(|e| Err(DebianError::io("write", tmp.path().to_path_buf(), e)))?;
    }
    let actual = hex(&h.finalize());
    if size != expected.size || !actual.eq_ignore_ascii_case(expected.sha256) {
        return Err(Err(DebianError::HashMismatch {
            what: expected.what.to_string(),
            url: url.to_string(),
            expected_sha256: expected.sha256.to_string(),
            expected_size: expected.size,
            actual_sha256: actual,
            actual_size: size,
        }));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Err(DebianError::io("sync", tmp.path().to_path_buf(), e)))?;
    tmp.persist(dest)
        .map_err(|e| Err(DebianError::io("rename into", dest, e.error)))?;
    Ok(())
}
