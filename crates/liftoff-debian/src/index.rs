//! Package indexes: `InRelease` (signature, Valid-Until, SHA256 list), Packages files fetched
//! by hash and cached content-addressed, parsed into [`Record`]s.

use crate::control::{Paragraph, paragraphs};
use crate::deps::{Provide, parse_provides};
use crate::error::DebianError;
use crate::http::{self, Expected};
use crate::release::{self, Release};
use crate::sources::Source;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where a downloadable version comes from.
#[derive(Debug, Clone)]
pub(crate) struct Download {
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// Index into [`Indexes::origins`].
    pub origin: usize,
}

/// One version of a package (from the dpkg status file or a Packages index), with the fields
/// the resolver needs. Relationship fields are kept as text and parsed on demand.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub multi_arch: String,
    pub pre_depends: String,
    pub depends: String,
    pub conflicts: String,
    pub breaks: String,
    pub provides: Vec<Provide>,
    /// Source package name and version (`Source: name (version)`, defaulting to the binary's).
    pub source: String,
    pub source_version: String,
    pub essential: bool,
    pub important: bool,
    /// apt's priority order: required=1 ... extra=5 (0 when missing).
    pub priority: u8,
    pub download: Option<Download>,
    /// Pin priority of the index (500, or 1/100 for NotAutomatic/ButAutomaticUpgrades).
    pub pin: u16,
}

impl Record {
    pub fn from_paragraph(p: &Paragraph<'_>, origin: Option<usize>) -> Result<Self, String> {
        let name = p
            .get("Package")
            .ok_or("a paragraph has no Package field")?
            .trim()
            .to_string();
        let version = p
            .get("Version")
            .ok_or_else(|| format!("package {name} has no Version"))?
            .trim()
            .to_string();
        let field = |n: &str| p.folded(n).unwrap_or_default();
        let provides = parse_provides(&field("Provides"))
            .map_err(|e| format!("package {name} {version}: {e}"))?;
        let download = match origin {
            None => None,
            Some(origin) => Some(Download {
                filename: p
                    .get("Filename")
                    .ok_or_else(|| format!("package {name} {version} has no Filename"))?
                    .trim()
                    .to_string(),
                size: p
                    .get("Size")
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| format!("package {name} {version} has no valid Size"))?,
                sha256: p
                    .get("SHA256")
                    .ok_or_else(|| format!("package {name} {version} has no SHA256"))?
                    .trim()
                    .to_ascii_lowercase(),
                origin,
            }),
        };
        let flag = |n: &str| {
            p.get(n)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"))
        };
        let (source, source_version) = match p.get("Source").map(str::trim) {
            Some(s) if !s.is_empty() => match s.split_once('(') {
                Some((n, v)) => (
                    n.trim().to_string(),
                    v.trim_end_matches(')').trim().to_string(),
                ),
                None => (s.to_string(), version.clone()),
            },
            _ => (name.clone(), version.clone()),
        };
        Ok(Self {
            source,
            source_version,
            arch: p.get("Architecture").unwrap_or("").trim().to_string(),
            multi_arch: p
                .get("Multi-Arch")
                .unwrap_or("no")
                .trim()
                .to_ascii_lowercase(),
            pre_depends: field("Pre-Depends"),
            depends: field("Depends"),
            conflicts: field("Conflicts"),
            breaks: field("Breaks"),
            provides,
            essential: flag("Essential"),
            important: flag("Important") || flag("Protected"),
            priority: match p.get("Priority").map(str::trim) {
                Some("required") => 1,
                Some("important") => 2,
                Some("standard") => 3,
                Some("optional") => 4,
                Some("extra") => 5,
                _ => 0,
            },
            download,
            pin: 500,
            name,
            version,
        })
    }
}

/// All available versions from the base image's sources.
pub(crate) struct Indexes {
    pub records: Vec<Record>,
    /// Base URL per origin (what `Filename:` is relative to).
    pub origins: Vec<String>,
    /// `uri suite` of each source, for messages.
    pub described: Vec<String>,
}

const INRELEASE_LIMIT: u64 = 64 << 20;

/// Fetch, verify and parse the indexes of every source.
pub(crate) fn load(
    sources: &[Source],
    architecture: &str,
    cache: &Path,
    progress: &dyn Fn(&str),
) -> Result<Indexes, DebianError> {
    let agent = http::agent();
    let mut out = Indexes {
        records: Vec::new(),
        origins: Vec::new(),
        described: Vec::new(),
    };
    for source in sources {
        if source
            .architectures
            .as_ref()
            .is_some_and(|a| !a.iter().any(|x| x == architecture))
        {
            continue;
        }
        out.described
            .push(format!("{} {}", source.uri, source.suite));
        let rel = fetch_release(&agent, source, cache, progress)?;
        let pin = if rel.but_automatic_upgrades {
            100
        } else if rel.not_automatic {
            1
        } else {
            500
        };
        let origin = out.origins.len();
        out.origins.push(source.pool_base());
        let mut dirs: Vec<String> = Vec::new();
        if source.is_flat() {
            dirs.push(String::new());
        } else {
            for c in &source.components {
                dirs.push(format!("{c}/binary-{architecture}/"));
                if rel.architectures.iter().any(|a| a == "all") && !rel.no_arch_all_packages {
                    dirs.push(format!("{c}/binary-all/"));
                }
            }
        }
        for dir in dirs {
            let Some((path, sha256, size)) = ["Packages.xz", "Packages.gz", "Packages"]
                .iter()
                .find_map(|f| {
                    rel.sha256
                        .get(&format!("{dir}{f}"))
                        .map(|(h, s)| (format!("{dir}{f}"), h.clone(), *s))
                })
            else {
                if dir.ends_with("binary-all/") {
                    continue;
                }
                return Err(DebianError::IndexMissing {
                    url: rel.url.clone(),
                    component: dir.split('/').next().unwrap_or("").to_string(),
                    architecture: architecture.to_string(),
                });
            };
            let file = fetch_index(&agent, &rel, &path, &sha256, size, cache, progress)?;
            let text = decompress_index(&file, &path)?;
            let before = out.records.len();
            for p in paragraphs(&text, false) {
                let mut rec = Record::from_paragraph(&p, Some(origin)).map_err(|message| {
                    DebianError::Parse {
                        path: PathBuf::from(format!("{}/{path}", rel.base)),
                        message,
                    }
                })?;
                if rec.arch != architecture && rec.arch != "all" {
                    continue;
                }
                rec.pin = pin;
                out.records.push(rec);
            }
            progress(&format!(
                "{} {} {}: {} packages",
                source.uri,
                source.suite,
                path,
                out.records.len() - before
            ));
        }
    }
    Ok(out)
}

fn cache_name(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Fetch `InRelease` (falling back to a cached copy only when the network fails), verify its
/// signature and dates.
fn fetch_release(
    agent: &ureq::Agent,
    source: &Source,
    cache: &Path,
    progress: &dyn Fn(&str),
) -> Result<Release, DebianError> {
    let base = source.dist_url();
    let url = format!("{base}/InRelease");
    let dir = cache.join("releases");
    let cached = dir.join(format!("{}_InRelease", cache_name(&base)));
    let text = match http::get_bytes(agent, &url, INRELEASE_LIMIT) {
        Ok(bytes) => {
            std::fs::create_dir_all(&dir).map_err(|e| DebianError::io("create", &dir, e))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let rel = release::verify_and_parse(&text, &url, &base, source)?;
            write_atomic(&cached, text.as_bytes())?;
            return Ok(rel);
        }
        Err(f) => match std::fs::read(&cached) {
            Ok(b) if f.status.is_none() => {
                progress(&format!(
                    "{url}: {} — using the cached copy (still verified)",
                    f.message
                ));
                String::from_utf8_lossy(&b).into_owned()
            }
            _ => return Err(f.into_error(&url)),
        },
    };
    release::verify_and_parse(&text, &url, &base, source)
}

pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), DebianError> {
    use std::io::Write;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(|e| DebianError::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| DebianError::io("write", tmp.path().to_path_buf(), e))?;
    tmp.persist(dest)
        .map_err(|e| DebianError::io("rename into", dest, e.error))?;
    Ok(())
}

/// Fetch one index file by hash into the content-addressed cache; a cached file is re-hashed
/// and replaced when it does not match.
fn fetch_index(
    agent: &ureq::Agent,
    rel: &Release,
    path: &str,
    sha256: &str,
    size: u64,
    cache: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, DebianError> {
    let dest = cache
        .join("indexes")
        .join(format!("{sha256}{}", extension(path)));
    if dest.exists() {
        match http::hash_file(&dest) {
            Some((h, s)) if h == sha256 && s == size => return Ok(dest),
            Some((h, s)) => {
                progress(&format!(
                    "cached {path} ({}) does not match InRelease (sha256 {h}, {s} bytes; want {sha256}, {size} bytes); fetching it again",
                    dest.display()
                ));
                std::fs::remove_file(&dest).map_err(|e| DebianError::io("remove", &dest, e))?;
            }
            None => {
                let _ = std::fs::remove_file(&dest);
            }
        }
    }
    let what = format!("{path} of {}", rel.base);
    let expected = Expected {
        sha256,
        size,
        what: &what,
    };
    let plain = format!("{}/{path}", rel.base);
    let url = if rel.acquire_by_hash {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let sep = if dir.is_empty() { "" } else { "/" };
        format!("{}/{dir}{sep}by-hash/SHA256/{sha256}", rel.base)
    } else {
        plain.clone()
    };
    progress(&format!("fetching {url} ({size} bytes)"));
    match http::download_verified(agent, &url, &dest, &expected) {
        Ok(()) => Ok(dest),
        // by-hash files can be missing on some mirrors; the plain path is verified the same way.
        Err(Ok(f)) if url != plain && f.status == Some(404) => {
            progress(&format!("{url}: HTTP 404, trying {plain}"));
            http::download_verified(agent, &plain, &dest, &expected)
                .map_err(|e| e.map_or_else(|e| e, |f| f.into_error(&plain)))?;
            Ok(dest)
        }
        Err(e) => Err(e.map_or_else(|e| e, |f| f.into_error(&url))),
    }
}

// Debian names its compressed files in lowercase; no other spelling exists.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn extension(path: &str) -> &'static str {
    if path.ends_with(".xz") {
        ".xz"
    } else if path.ends_with(".gz") {
        ".gz"
    } else {
        ""
    }
}

#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn decompress_index(file: &Path, what: &str) -> Result<String, DebianError> {
    let f = std::fs::File::open(file).map_err(|e| DebianError::io("open", file, e))?;
    let mut reader: Box<dyn Read> = if what.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(std::io::BufReader::new(f)))
    } else if what.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
    } else {
        Box::new(f)
    };
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .map_err(|e| DebianError::Decompress {
            what: format!("{what} ({})", file.display()),
            message: e.to_string(),
        })?;
    Ok(String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Index records by package name.
pub(crate) fn by_name(records: &[Record]) -> HashMap<&str, Vec<u32>> {
    let mut m: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        m.entry(r.name.as_str())
            .or_default()
            .push(u32::try_from(i).unwrap_or(u32::MAX));
    }
    m
}
