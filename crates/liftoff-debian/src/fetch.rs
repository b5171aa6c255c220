//! Downloading a plan's .debs: a few threads, every file verified by SHA-256 and size, cached
//! content-addressed; a cached file that does not verify is deleted and downloaded again.

use crate::error::DebianError;
use crate::http::{self, Expected};
use crate::resolve::{Plan, PlannedPackage};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Parallel downloads; also hides the occasional slow DNS answer behind the other transfers.
const THREADS: usize = 8;

enum Msg {
    Progress(String),
    Done(usize, Result<PathBuf, DebianError>),
}

/// Download every .deb of the plan into `cache/debs/<sha256>.deb` and return their paths in
/// plan order.
pub fn fetch(
    plan: &Plan,
    cache: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<PathBuf>, DebianError> {
    let dir = cache.join("debs");
    std::fs::create_dir_all(&dir).map_err(|e| DebianError::io("create", &dir, e))?;
    let agent = http::agent();
    let n = plan.packages.len();
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let mut results: Vec<Option<Result<PathBuf, DebianError>>> = (0..n).map(|_| None).collect();
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(n.max(1)) {
            let tx = tx.clone();
            let (agent, next, abort, dir) = (&agent, &next, &abort, &dir);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n || abort.load(Ordering::SeqCst) {
                        break;
                    }
                    let say = |m: String| {
                        let _ = tx.send(Msg::Progress(m));
                    };
                    let r = fetch_one(agent, &plan.packages[i], dir, &say);
                    if r.is_err() {
                        abort.store(true, Ordering::SeqCst);
                    }
                    let _ = tx.send(Msg::Done(i, r));
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Msg::Progress(m) => progress(&m),
                Msg::Done(i, r) => results[i] = Some(r),
            }
        }
    });
    let mut out = Vec::with_capacity(n);
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(r) => out.push(r?),
            None => {
                return Err(DebianError::Http {
                    url: plan.packages[i].url(),
                    message: "not downloaded: another download failed first".into(),
                });
            }
        }
    }
    Ok(out)
}

fn fetch_one(
    agent: &ureq::Agent,
    p: &PlannedPackage,
    dir: &Path,
    say: &dyn Fn(String),
) -> Result<PathBuf, DebianError> {
    if p.sha256.len() != 64 || !p.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(DebianError::Deb {
            deb: PathBuf::from(&p.filename),
            message: format!(
                "the plan entry for {} {} has an invalid sha256 `{}`",
                p.name, p.version, p.sha256
            ),
        });
    }
    let sha = p.sha256.to_ascii_lowercase();
    let dest = dir.join(format!("{sha}.deb"));
    if dest.exists() {
        match http::hash_file(&dest) {
            Some((h, s)) if h == sha && s == p.size => return Ok(dest),
            found => {
                say(format!(
                    "cached {} ({}) does not verify ({}); deleting it and downloading again",
                    dest.display(),
                    p.name,
                    found.map_or_else(
                        || "unreadable".to_string(),
                        |(h, s)| format!("sha256 {h}, {s} bytes")
                    )
                ));
                std::fs::remove_file(&dest).map_err(|e| DebianError::io("remove", &dest, e))?;
            }
        }
    }
    let url = p.url();
    let what = format!(".deb of {} {}", p.name, p.version);
    let expected = Expected {
        sha256: &sha,
        size: p.size,
        what: &what,
    };
    say(format!(
        "downloading {} {} ({} bytes)",
        p.name, p.version, p.size
    ));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match http::download_verified(agent, &url, &dest, &expected) {
            Ok(()) => return Ok(dest),
            Err(Ok(f)) if attempt < 2 && f.status.is_none() => {
                say(format!("{url}: {}; retrying", f.message));
            }
            Err(Err(e @ DebianError::HashMismatch { .. })) if attempt < 2 => {
                say(format!("{e}; retrying"));
            }
            Err(e) => return Err(e.map_or_else(|e| e, |f| f.into_error(&url))),
        }
    }
}
