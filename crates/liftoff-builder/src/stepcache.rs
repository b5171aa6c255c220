//! Results of expensive steps kept in the cache dir, keyed by everything that
//! decides them. An entry is a directory that only gets its final name once
//! complete; its layer blobs live in the verified blob cache, so an entry whose
//! blob is gone or corrupt is simply rebuilt.

use std::path::{Path, PathBuf};

use liftoff_image::LayerBlob;
use sha2::{Digest, Sha256};

use crate::{BuildError, ensure_dir, io};

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
    uncompressed_size: u64,
}

/// Bumped whenever a step's output changes for the same inputs (a fix in the unpacker, a new
/// exclusion), so caches written by an older liftoff are not reused.
const FORMAT: &[u8] = b"liftoff-steps-2";

/// A hex key over length-prefixed parts.
pub(crate) fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT);
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// `<cache>/steps/<kind>/<key>` if it exists.
pub(crate) fn entry(cache: &Path, kind: &str, key: &str) -> Result<(PathBuf, bool), BuildError> {
    let root = cache.join("steps").join(kind);
    ensure_dir(&root)?;
    let dir = root.join(key);
    let exists = dir.is_dir();
    Ok((dir, exists))
}

/// A fresh staging dir next to the entries of `kind`.
pub(crate) fn staging(cache: &Path, kind: &str) -> Result<tempfile::TempDir, BuildError> {
    let root = cache.join("steps").join(kind);
    ensure_dir(&root)?;
    tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&root)
        .map_err(io("create a temp dir in", &root))
}

/// Records a layer blob under `name` in an entry being staged.
pub(crate) fn store_blob(dir: &Path, name: &str, blob: &LayerBlob) -> Result<(), BuildError> {
    let meta = Meta {
        digest: blob.digest.clone(),
        diff_id: blob.diff_id.clone(),
        size: blob.size,
        media_type: blob.media_type.clone(),
        uncompressed_size: blob.uncompressed_size,
    };
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(&meta).unwrap_or_default()).map_err(io("write", &path))
}

/// The layer blob recorded under `name`, if its blob is still in the cache and verifies.
pub(crate) fn load_blob(dir: &Path, name: &str, cache: &Path) -> Option<LayerBlob> {
    let meta: Meta =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).ok()?).ok()?;
    let path = liftoff_registry::BlobCache::new(cache).path(&meta.digest)?;
    Some(LayerBlob {
        digest: meta.digest,
        diff_id: meta.diff_id,
        size: meta.size,
        media_type: meta.media_type,
        path,
        uncompressed_size: meta.uncompressed_size,
    })
}

/// Gives the staged entry its final name; if another build got there first, the
/// staged copy is kept where it is and returned instead.
pub(crate) fn commit(staging: tempfile::TempDir, dir: &Path) -> PathBuf {
    let staged = staging.keep();
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::rename(&staged, dir).is_ok() {
        dir.to_path_buf()
    } else {
        staged
    }
}
