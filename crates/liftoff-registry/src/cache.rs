//! The content-addressed blob cache: `<root>/blobs/<algorithm>/<hex>`.
//!
//! Writes go to a temporary file in the blob's own directory, are fsynced and renamed into
//! place, so a finished name only ever holds complete content. Reads still verify: a blob whose
//! size or digest is wrong (truncated by a crash on a filesystem that reorders writes, changed by
//! hand, damaged on disk) is deleted and reported as missing, so it is fetched again instead of
//! being used.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::RegistryError;
use crate::digest::{self, Algorithm, ParsedDigest};

const TEMP_PREFIX: &str = ".tmp-";
const BUFFER: usize = 256 * 1024;
/// Temporary files older than this are left over from a crash or a kill and are removed.
const STALE_TEMP: Duration = Duration::from_hours(24);

/// A content-addressed store of verified blobs (layers, configs and manifests).
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

/// What a blob being stored must turn out to be.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Expect<'a> {
    pub digest: Option<&'a str>,
    pub size: Option<u64>,
}

#[derive(Debug)]
pub(crate) enum StoreError {
    /// Reading the source failed (network, source file).
    Source(io::Error),
    /// Writing into the cache failed.
    Cache(RegistryError),
    /// The content is not what was expected.
    Mismatch {
        actual_digest: String,
        actual_size: u64,
    },
    /// The source sent more bytes than the expected size.
    TooLong { expected: u64 },
}

impl BlobCache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$XDG_CACHE_HOME/liftoff`, or `~/.cache/liftoff`.
    pub fn default_root() -> Option<PathBuf> {
        if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from)
            && xdg.is_absolute()
        {
            return Some(xdg.join("liftoff"));
        }
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".cache").join("liftoff"))
    }

    /// The cache at [`BlobCache::default_root`].
    pub fn at_default_location() -> Result<Self, RegistryError> {
        Self::default_root()
            .map(Self::new)
            .ok_or_else(|| RegistryError::InvalidConfig {
                setting: "cache directory".to_string(),
                message:
                    "neither XDG_CACHE_HOME nor HOME is set; pass a cache directory explicitly"
                        .to_string(),
            })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of the blob with `digest`, after checking that its content has that digest.
    /// A damaged blob is deleted and `None` returned, exactly as if it had never been stored.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        self.lookup(digest, None)
    }

    /// The content of the blob with `digest`, verified.
    pub fn read(&self, digest: &str) -> Option<Vec<u8>> {
        self.read_checked(digest, None)
    }

    /// Stores `bytes` and returns their `sha256:` digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = digest::sha256(bytes);
        if self.lookup(&digest, Some(bytes.len() as u64)).is_some() {
            return Ok(digest);
        }
        let expect = Expect {
            digest: Some(&digest),
            size: Some(bytes.len() as u64),
        };
        self.store(bytes, expect, &mut |_| {})
            .map_err(|e| self.store_error(e, "bytes"))?;
        Ok(digest)
    }

    /// Copies the file at `src` into the cache and returns its `sha256:` digest.
    pub fn put_file(&self, src: &Path) -> Result<String, RegistryError> {
        let file = File::open(src).map_err(|e| RegistryError::io("open", src, e))?;
        let (_, digest) =
            self.store(file, Expect::default(), &mut |_| {})
                .map_err(|e| match e {
                    StoreError::Source(e) => RegistryError::io("read", src, e),
                    other => self.store_error(other, &src.display().to_string()),
                })?;
        Ok(digest)
    }

    fn store_error(&self, error: StoreError, what: &str) -> RegistryError {
        match error {
            StoreError::Source(e) => RegistryError::io("read", what, e),
            StoreError::Cache(e) => e,
            StoreError::Mismatch {
                actual_digest,
                actual_size,
            } => RegistryError::DigestMismatch {
                source_name: format!("blob cache {}", self.root.display()),
                what: what.to_string(),
                expected: "the digest it was stored under".to_string(),
                actual: format!("{actual_digest} ({actual_size} bytes)"),
            },
            StoreError::TooLong { expected } => RegistryError::SizeMismatch {
                source_name: format!("blob cache {}", self.root.display()),
                digest: what.to_string(),
                expected,
                actual: format!("more than {expected}"),
            },
        }
    }

    fn blob_path(&self, digest: ParsedDigest<'_>) -> PathBuf {
        self.dir(digest.algorithm).join(digest.hex)
    }

    fn dir(&self, algorithm: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.name())
    }

    /// Like [`BlobCache::path`], also checking the size when it is known (cheap, so a truncated
    /// blob is caught without hashing it).
    pub(crate) fn lookup(&self, digest: &str, size: Option<u64>) -> Option<PathBuf> {
        let parsed = digest::parse(digest).ok()?;
        let path = self.blob_path(parsed);
        match verify_file(&path, parsed, size) {
            Verified::Good => Some(path),
            Verified::Missing => None,
            Verified::Bad => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// The verified content of a (small) blob.
    pub(crate) fn read_checked(&self, digest: &str, size: Option<u64>) -> Option<Vec<u8>> {
        let parsed = digest::parse(digest).ok()?;
        let path = self.blob_path(parsed);
        let bytes = fs::read(&path).ok()?;
        let size_ok = size.is_none_or(|s| s == bytes.len() as u64);
        if size_ok && digest::of_bytes(parsed.algorithm, &bytes) == digest {
            Some(bytes)
        } else {
            let _ = fs::remove_file(&path);
            None
        }
    }

    /// Streams `source` into the cache, checking it against `expect`; returns the final path and
    /// the digest.
    /// Without an expected digest the content is stored under its sha256.
    pub(crate) fn store(
        &self,
        mut source: impl Read,
        expect: Expect<'_>,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<(PathBuf, String), StoreError> {
        let expected = match expect.digest {
            Some(d) => Some(digest::parse(d).map_err(StoreError::Cache)?),
            None => None,
        };
        let algorithm = expected.map_or(Algorithm::Sha256, |d| d.algorithm);
        let dir = self.dir(algorithm);
        fs::create_dir_all(&dir)
            .map_err(|e| StoreError::Cache(RegistryError::io("create directory", &dir, e)))?;
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(|e| {
                StoreError::Cache(RegistryError::io("create a temporary file in", &dir, e))
            })?;

        let mut hasher = algorithm.hasher();
        let mut written: u64 = 0;
        let mut buffer = vec![0u8; BUFFER];
        loop {
            let n = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::Source(e)),
            };
            written += n as u64;
            if let Some(size) = expect.size
                && written > size
            {
                return Err(StoreError::TooLong { expected: size });
            }
            hasher.update(&buffer[..n]);
            temp.write_all(&buffer[..n]).map_err(|e| {
                StoreError::Cache(RegistryError::io("write", temp.path().to_path_buf(), e))
            })?;
            on_bytes(written);
        }
        let actual = hasher.finish();
        let size_ok = expect.size.is_none_or(|s| s == written);
        let digest_ok = expect.digest.is_none_or(|d| d == actual);
        if !size_ok || !digest_ok {
            return Err(StoreError::Mismatch {
                actual_digest: actual,
                actual_size: written,
            });
        }
        temp.as_file().sync_all().map_err(|e| {
            StoreError::Cache(RegistryError::io("flush", temp.path().to_path_buf(), e))
        })?;
        let hex = &actual[algorithm.name().len() + 1..];
        let final_path = dir.join(hex);
        temp.persist(&final_path).map_err(|e| {
            StoreError::Cache(RegistryError::io("move into place", &final_path, e.error))
        })?;
        // Make the rename itself durable; best effort (not every platform can open a directory).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok((final_path, actual))
    }

    /// Removes temporary files left behind by a crashed or killed write. Best effort.
    pub(crate) fn remove_stale_temp_files(&self) {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let Ok(entries) = fs::read_dir(self.dir(algorithm)) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    continue;
                }
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE_TEMP);
                if stale {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

enum Verified {
    Good,
    Missing,
    Bad,
}

fn verify_file(path: &Path, digest: ParsedDigest<'_>, size: Option<u64>) -> Verified {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Verified::Missing;
    };
    if !meta.is_file() || size.is_some_and(|s| s != meta.len()) {
        return Verified::Bad;
    }
    let Ok(mut file) = File::open(path) else {
        return Verified::Bad;
    };
    let mut hasher = digest.algorithm.hasher();
    let mut buffer = vec![0u8; BUFFER];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Verified::Bad,
        }
    }
    let actual = hasher.finish();
    if actual[digest.algorithm.name().len() + 1..] == *digest.hex {
        Verified::Good
    } else {
        Verified::Bad
    }
}
