//! apt sources of a rootfs: deb822 `*.sources` and one-line `sources.list` / `*.list`,
//! with the keyring each source is verified against.

use crate::control::paragraphs;
use crate::error::DebianError;
use crate::rootfs;
use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One `deb` source: a URI and a suite (or flat-repository path) with its components.
#[derive(Debug, Clone)]
pub struct Source {
    /// Base URI, without a trailing slash.
    pub uri: String,
    /// Suite (`bookworm`), or for a flat repository its path ending in `/`.
    pub suite: String,
    /// Components (empty for a flat repository).
    pub components: Vec<String>,
    /// `Architectures:` / `arch=` restriction, if any.
    pub architectures: Option<Vec<String>>,
    /// `Trusted: yes` / `trusted=yes`: the index is used without a signature check.
    pub trusted: bool,
    /// Which keys verify this source's `InRelease`.
    pub keyring: Arc<Keyring>,
    /// The sources file (inside the rootfs) that declared it.
    pub declared_in: PathBuf,
}

impl Source {
    /// Whether this is a flat repository (`deb uri path/` with no components).
    pub fn is_flat(&self) -> bool {
        self.suite.ends_with('/')
    }

    /// The URL of the directory that holds `InRelease`.
    pub fn dist_url(&self) -> String {
        if self.is_flat() {
            format!("{}/{}", self.uri, self.suite.trim_end_matches('/'))
                .trim_end_matches('/')
                .to_string()
        } else {
            format!("{}/dists/{}", self.uri, self.suite)
        }
    }

    /// The URL that `Filename:` entries of this source's indexes are relative to.
    pub fn pool_base(&self) -> String {
        if self.is_flat() {
            self.dist_url()
        } else {
            self.uri.clone()
        }
    }
}

/// `OpenPGP` keys trusted for a source.
#[derive(Debug)]
pub struct Keyring {
    /// Keyring files (as paths inside the rootfs); empty for an inline `Signed-By` key.
    pub paths: Vec<PathBuf>,
    /// The keys.
    pub keys: Vec<SignedPublicKey>,
    /// Problems met while loading (unreadable files, unparsable keys).
    pub problems: Vec<String>,
}

const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Read the sources of a rootfs, in apt's order: `sources.list`, then `sources.list.d/*` sorted.
pub(crate) fn read_sources(root: &Path) -> Result<Vec<Source>, DebianError> {
    let mut files: Vec<String> = Vec::new();
    files.push("/etc/apt/sources.list".to_string());
    for name in rootfs::list_dir(root, "/etc/apt/sources.list.d") {
        if has_ext(&name, "list") || has_ext(&name, "sources") {
            files.push(format!("/etc/apt/sources.list.d/{name}"));
        }
    }
    let mut keyrings = KeyringCache::default();
    let mut out: Vec<Source> = Vec::new();
    for file in files {
        let Ok(bytes) = rootfs::read(root, &file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let declared_in = PathBuf::from(&file);
        let parsed = if file.ends_with(".sources") {
            parse_deb822(&text, &declared_in)?
        } else {
            parse_one_line(&text, &declared_in)?
        };
        for raw in parsed {
            let keyring = keyrings.get(root, raw.signed_by.as_deref());
            for uri in &raw.uris {
                check_uri(uri, &declared_in)?;
                for suite in &raw.suites {
                    let uri = uri.trim_end_matches('/').to_string();
                    // apt merges identical uri+suite entries; keep the first, add components.
                    if let Some(existing) =
                        out.iter_mut().find(|s| s.uri == uri && s.suite == *suite)
                    {
                        for c in &raw.components {
                            if !existing.components.contains(c) {
                                existing.components.push(c.clone());
                            }
                        }
                        continue;
                    }
                    out.push(Source {
                        uri,
                        suite: suite.clone(),
                        components: raw.components.clone(),
                        architectures: raw.architectures.clone(),
                        trusted: raw.trusted,
                        keyring: Arc::clone(&keyring),
                        declared_in: declared_in.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn has_ext(name: &str, ext: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn check_uri(uri: &str, file: &Path) -> Result<(), DebianError> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        Ok(())
    } else {
        Err(DebianError::UnsupportedUri {
            path: file.to_path_buf(),
            uri: uri.to_string(),
        })
    }
}

#[derive(Debug, Default)]
struct RawSource {
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    architectures: Option<Vec<String>>,
    signed_by: Option<String>,
    trusted: bool,
}

fn words(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_string).collect()
}

fn yes(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "with" | "on" | "enable"
    )
}

fn parse_deb822(text: &str, file: &Path) -> Result<Vec<RawSource>, DebianError> {
    let mut out = Vec::new();
    for p in paragraphs(text, true) {
        let types = words(p.get("Types").unwrap_or(""));
        if !types.iter().any(|t| t == "deb") {
            continue;
        }
        if p.get("Enabled").is_some_and(|v| !yes(v)) {
            continue;
        }
        let uris = words(p.get("URIs").unwrap_or(""));
        let suites = words(p.get("Suites").unwrap_or(""));
        if uris.is_empty() || suites.is_empty() {
            return Err(DebianError::Parse {
                path: file.to_path_buf(),
                message: format!(
                    "a `Types: deb` paragraph needs URIs and Suites: `{}`",
                    p.raw
                ),
            });
        }
        out.push(RawSource {
            uris,
            suites,
            components: words(p.get("Components").unwrap_or("")),
            architectures: p.get("Architectures").map(words),
            signed_by: p.get("Signed-By").map(str::to_string),
            trusted: p.get("Trusted").is_some_and(yes),
        });
    }
    Ok(out)
}

fn parse_one_line(text: &str, file: &Path) -> Result<Vec<RawSource>, DebianError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |m: &str| DebianError::Parse {
            path: file.to_path_buf(),
            message: format!("line {}: {m}: `{line}`", n + 1),
        };
        let (kind, mut rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("incomplete entry"))?;
        if kind != "deb" {
            continue;
        }
        let mut src = RawSource::default();
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(|| bad("unclosed `[`"))?;
            for opt in r[..close].split_whitespace() {
                let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
                match k {
                    "arch" => src.architectures = Some(v.split(',').map(str::to_string).collect()),
                    "signed-by" => src.signed_by = Some(v.replace(',', " ")),
                    "trusted" => src.trusted = yes(v),
                    _ => {}
                }
            }
            rest = r[close + 1..].trim_start();
        }
        let mut parts = rest.split_whitespace();
        let uri = parts.next().ok_or_else(|| bad("missing URI"))?;
        let suite = parts.next().ok_or_else(|| bad("missing suite"))?;
        src.uris = vec![uri.to_string()];
        src.suites = vec![suite.to_string()];
        src.components = parts.map(str::to_string).collect();
        out.push(src);
    }
    Ok(out)
}

#[derive(Default)]
struct KeyringCache {
    entries: Vec<(Option<String>, Arc<Keyring>)>,
}

impl KeyringCache {
    fn get(&mut self, root: &Path, signed_by: Option<&str>) -> Arc<Keyring> {
        let key = signed_by.map(str::to_string);
        if let Some((_, k)) = self.entries.iter().find(|(s, _)| *s == key) {
            return Arc::clone(k);
        }
        let k = Arc::new(load_keyring(root, signed_by));
        self.entries.push((key, Arc::clone(&k)));
        k
    }
}

fn default_keyring_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if rootfs::resolve_in(root, Path::new("/etc/apt/trusted.gpg")).is_file() {
        paths.push(PathBuf::from("/etc/apt/trusted.gpg"));
    }
    for name in rootfs::list_dir(root, "/etc/apt/trusted.gpg.d") {
        if has_ext(&name, "gpg") || has_ext(&name, "asc") {
            paths.push(PathBuf::from(format!("/etc/apt/trusted.gpg.d/{name}")));
        }
    }
    paths.push(PathBuf::from(DEFAULT_KEYRING));
    paths
}

pub(crate) fn load_keyring(root: &Path, signed_by: Option<&str>) -> Keyring {
    let mut ring = Keyring {
        paths: Vec::new(),
        keys: Vec::new(),
        problems: Vec::new(),
    };
    let Some(spec) = signed_by.map(str::trim).filter(|s| !s.is_empty()) else {
        for p in default_keyring_paths(root) {
            load_file(root, &p, &mut ring);
        }
        return ring;
    };
    if spec.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        // An inline key: deb822 continuation lines, with ` .` standing for an empty line.
        let armored: String = spec
            .lines()
            .map(|l| {
                let l = l.strip_prefix(' ').unwrap_or(l);
                if l.trim() == "." { "" } else { l.trim_end() }
            })
            .collect::<Vec<_>>()
            .join("\n");
        add_keys(armored.as_bytes(), "inline Signed-By key", &mut ring);
        return ring;
    }
    let mut fingerprints = Vec::new();
    for token in spec.split_whitespace() {
        if token.starts_with('/') {
            let p = PathBuf::from(token);
            load_file(root, &p, &mut ring);
        } else {
            fingerprints.push(token.trim_end_matches('!').to_ascii_lowercase());
        }
    }
    if !fingerprints.is_empty() {
        // Fingerprints select keys from the default trusted keyrings.
        let mut all = Keyring {
            paths: Vec::new(),
            keys: Vec::new(),
            problems: Vec::new(),
        };
        for p in default_keyring_paths(root) {
            load_file(root, &p, &mut all);
        }
        ring.paths.extend(all.paths);
        ring.problems.extend(all.problems);
        for k in all.keys {
            let matches = std::iter::once(hex(k.primary_key.fingerprint().as_bytes()))
                .chain(
                    k.public_subkeys
                        .iter()
                        .map(|s| hex(s.key.fingerprint().as_bytes())),
                )
                .any(|f| fingerprints.contains(&f));
            if matches {
                ring.keys.push(k);
            }
        }
    }
    ring
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn load_file(root: &Path, path: &Path, ring: &mut Keyring) {
    ring.paths.push(path.to_path_buf());
    match rootfs::read(root, &path.to_string_lossy()) {
        Ok(bytes) => add_keys(&bytes, &path.display().to_string(), ring),
        Err(e) => ring.problems.push(format!("{}: {e}", path.display())),
    }
}

fn add_keys(bytes: &[u8], what: &str, ring: &mut Keyring) {
    let armored = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
    let parsed: Result<Vec<SignedPublicKey>, String> = if armored {
        SignedPublicKey::from_armor_many(bytes)
            .map_err(|e| e.to_string())
            .and_then(|(iter, _)| {
                iter.collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())
            })
    } else {
        SignedPublicKey::from_bytes_many(bytes)
            .map_err(|e| e.to_string())
            .and_then(|iter| {
                iter.collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())
            })
    };
    match parsed {
        Ok(keys) if keys.is_empty() => ring.problems.push(format!("{what}: no keys")),
        Ok(keys) => ring.keys.extend(keys),
        Err(e) => ring.problems.push(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_deb822() {
        let one = parse_one_line(
            "# comment\ndeb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://example.invalid/debian bookworm main contrib # trailing\ndeb-src http://example.invalid/debian bookworm main\n",
            Path::new("/etc/apt/sources.list"),
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].components, vec!["main", "contrib"]);
        assert_eq!(
            one[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/x.gpg")
        );
        assert_eq!(one[0].architectures, Some(vec!["amd64".to_string()]));

        let d = parse_deb822(
            "Types: deb deb-src\nURIs: http://example.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/x.gpg\n\nTypes: deb\nEnabled: no\nURIs: http://example.invalid/x\nSuites: y\n",
            Path::new("/etc/apt/sources.list.d/debian.sources"),
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].suites, vec!["bookworm", "bookworm-updates"]);
    }
}
