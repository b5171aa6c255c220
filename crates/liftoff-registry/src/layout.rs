//! Images from an OCI image layout directory (`oci:PATH[:TAG]`) or an OCI archive, a tar of
//! such a directory (`oci-archive:FILE[:TAG]`). Blobs are verified and copied into the cache,
//! so a [`PulledImage`] means the same thing whatever its source.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::cache::{Expect, StoreError};
use crate::digest::{self, ParsedDigest};
use crate::manifest::{self, OCI_INDEX, Parsed, WantedPlatform};
use crate::{BlobCache, Descriptor, ImageSource, PulledImage, RegistryError};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MAX_INDEX_DEPTH: usize = 3;

/// Reads the image tagged `tag` (or the only image) for `platform` from the OCI layout `dir`.
pub fn read_oci_layout(
    dir: &Path,
    tag: Option<&str>,
    platform: (&str, &str),
    cache: &BlobCache,
) -> Result<PulledImage, RegistryError> {
    let store = DirStore(dir.to_path_buf());
    let layout = read_small(dir, "oci-layout")?;
    let index = read_small(dir, "index.json")?;
    let source = ImageSource::OciLayout {
        path: dir.to_path_buf(),
        tag: tag.map(str::to_string),
    };
    resolve(&store, layout, index, tag, platform, cache, source)
}

/// Like [`read_oci_layout`], for an OCI archive (an uncompressed tar of a layout).
pub fn read_oci_archive(
    file: &Path,
    tag: Option<&str>,
    platform: (&str, &str),
    cache: &BlobCache,
) -> Result<PulledImage, RegistryError> {
    let layout_error = |message: String| RegistryError::Layout {
        path: file.to_path_buf(),
        message,
    };
    let mut handle = File::open(file).map_err(|e| RegistryError::io("open", file, e))?;
    let mut magic = [0u8; 2];
    if handle.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b] {
        return Err(layout_error(
            "the archive is gzip-compressed; an OCI archive is a plain tar, so decompress it first (gunzip)"
                .to_string(),
        ));
    }
    handle
        .seek(SeekFrom::Start(0))
        .map_err(|e| RegistryError::io("read", file, e))?;

    let mut blobs = HashMap::new();
    let (mut layout, mut index) = (None, None);
    let mut archive = tar::Archive::new(handle);
    let entries = archive
        .entries()
        .map_err(|e| layout_error(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| layout_error(format!("unreadable tar entry: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| layout_error(format!("unreadable tar entry name: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let small = |entry: &mut tar::Entry<'_, File>| -> Result<Vec<u8>, RegistryError> {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| layout_error(format!("could not read {name}: {e}")))?;
            Ok(bytes)
        };
        match name.as_str() {
            "oci-layout" => layout = Some(small(&mut entry)?),
            "index.json" => index = Some(small(&mut entry)?),
            _ => {
                if let Some(blob) = name.strip_prefix("blobs/") {
                    blobs.insert(blob.to_string(), (entry.raw_file_position(), entry.size()));
                }
            }
        }
    }
    let store = ArchiveStore {
        path: file.to_path_buf(),
        blobs,
    };
    let source = ImageSource::OciArchive {
        path: file.to_path_buf(),
        tag: tag.map(str::to_string),
    };
    resolve(&store, layout, index, tag, platform, cache, source)
}

/// Where layout blobs come from.
trait BlobStore {
    fn path(&self) -> &Path;
    /// The blob's content, or `None` if the layout does not have it.
    fn open(&self, digest: ParsedDigest<'_>) -> Result<Option<Box<dyn Read + '_>>, RegistryError>;
}

struct DirStore(PathBuf);

impl BlobStore for DirStore {
    fn path(&self) -> &Path {
        &self.0
    }

    fn open(&self, digest: ParsedDigest<'_>) -> Result<Option<Box<dyn Read + '_>>, RegistryError> {
        let path = self
            .0
            .join("blobs")
            .join(digest.algorithm.name())
            .join(digest.hex);
        match File::open(&path) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io("open", path, e)),
        }
    }
}

struct ArchiveStore {
    path: PathBuf,
    /// `sha256/<hex>` → (offset of the data in the tar, size).
    blobs: HashMap<String, (u64, u64)>,
}

impl BlobStore for ArchiveStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self, digest: ParsedDigest<'_>) -> Result<Option<Box<dyn Read + '_>>, RegistryError> {
        let key = format!("{}/{}", digest.algorithm.name(), digest.hex);
        let Some(&(offset, size)) = self.blobs.get(&key) else {
            return Ok(None);
        };
        let mut file =
            File::open(&self.path).map_err(|e| RegistryError::io("open", &self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| RegistryError::io("read", &self.path, e))?;
        Ok(Some(Box::new(file.take(size))))
    }
}

fn resolve(
    store: &dyn BlobStore,
    layout: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    tag: Option<&str>,
    platform: (&str, &str),
    cache: &BlobCache,
    source: ImageSource,
) -> Result<PulledImage, RegistryError> {
    let layout_error = |message: String| RegistryError::Layout {
        path: store.path().to_path_buf(),
        message,
    };
    let source_name = source.to_string();
    let manifests = layout_manifests(store.path(), layout, index, &source_name)?;
    let mut descriptor = select_tag(&manifests, tag).map_err(layout_error)?.clone();
    let wanted = WantedPlatform::new(platform.0, platform.1);
    let mut index_digest = None;
    for _ in 0..MAX_INDEX_DEPTH {
        import(store, &descriptor, cache)?;
        let bytes = cache
            .read_checked(&descriptor.digest, Some(descriptor.size))
            .ok_or_else(|| {
                layout_error(format!(
                    "blob {} vanished from the cache",
                    descriptor.digest
                ))
            })?;
        match manifest::parse(
            &bytes,
            Some(&descriptor.media_type),
            &source_name,
            &descriptor.digest,
        )? {
            Parsed::Image {
                media_type,
                config,
                layers,
            } => {
                import(store, &config, cache)?;
                let config_bytes = cache
                    .read_checked(&config.digest, Some(config.size))
                    .ok_or_else(|| {
                        layout_error(format!("blob {} vanished from the cache", config.digest))
                    })?;
                for layer in &layers {
                    import(store, layer, cache)?;
                }
                return Ok(PulledImage {
                    source,
                    manifest_bytes: bytes,
                    manifest_digest: descriptor.digest,
                    manifest_media_type: media_type,
                    index_digest,
                    config_bytes,
                    config_digest: config.digest,
                    layers,
                });
            }
            Parsed::Index { manifests, .. } => {
                let name = format!("{source_name} (index {})", descriptor.digest);
                let chosen = manifest::select_platform(&manifests, &wanted, &name)?.clone();
                index_digest.get_or_insert_with(|| descriptor.digest.clone());
                descriptor = chosen;
            }
        }
    }
    Err(layout_error(format!(
        "indexes nest more than {MAX_INDEX_DEPTH} deep"
    )))
}

/// The entries of a layout's `index.json`, after checking its `oci-layout` file.
pub(crate) fn layout_manifests(
    path: &Path,
    layout: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    source_name: &str,
) -> Result<Vec<Descriptor>, RegistryError> {
    let layout_error = |message: String| RegistryError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let layout = layout.ok_or_else(|| {
        layout_error(
            "there is no `oci-layout` file, so this is not an OCI image layout".to_string(),
        )
    })?;
    let version = serde_json::from_slice::<serde_json::Value>(&layout)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
    if version.as_deref() != Some("1.0.0") {
        return Err(layout_error(
            "`oci-layout` does not say {\"imageLayoutVersion\": \"1.0.0\"}".to_string(),
        ));
    }
    let index = index.ok_or_else(|| layout_error("there is no `index.json`".to_string()))?;
    let Parsed::Index { manifests, .. } =
        manifest::parse(&index, Some(OCI_INDEX), source_name, "index.json")?
    else {
        unreachable!("parsed as an index");
    };
    Ok(manifests)
}

/// Reads `name` (`oci-layout`, `index.json`) from the layout directory `dir`, if it exists.
pub(crate) fn read_small(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, RegistryError> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io("read", dir.join(name), e)),
    }
}

pub(crate) fn select_tag<'a>(
    manifests: &'a [Descriptor],
    tag: Option<&str>,
) -> Result<&'a Descriptor, String> {
    let name_of = |d: &Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned()
    };
    let tags = || {
        let names: Vec<String> = manifests.iter().filter_map(name_of).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    match tag {
        Some(tag) => manifests
            .iter()
            .find(|d| name_of(d).as_deref() == Some(tag))
            .ok_or_else(|| format!("no image is tagged `{tag}` (tags: {})", tags())),
        None => match manifests {
            [only] => Ok(only),
            [] => Err("index.json lists no images".to_string()),
            _ => Err(format!(
                "index.json lists {} images; name one with a tag (tags: {})",
                manifests.len(),
                tags()
            )),
        },
    }
}

/// Copies a layout blob into the cache, verifying its digest and size.
fn import(
    store: &dyn BlobStore,
    descriptor: &Descriptor,
    cache: &BlobCache,
) -> Result<(), RegistryError> {
    let parsed = digest::parse(&descriptor.digest)?;
    if cache
        .lookup(&descriptor.digest, Some(descriptor.size))
        .is_some()
    {
        return Ok(());
    }
    let source_name = store.path().display().to_string();
    let reader = store.open(parsed)?.ok_or_else(|| RegistryError::Layout {
        path: store.path().to_path_buf(),
        message: format!("blob {} is missing", descriptor.digest),
    })?;
    let expect = Expect {
        digest: Some(&descriptor.digest),
        size: Some(descriptor.size),
    };
    match cache.store(reader, expect, &mut |_| {}) {
        Ok(_) => Ok(()),
        Err(StoreError::Source(e)) => Err(RegistryError::Layout {
            path: store.path().to_path_buf(),
            message: format!("could not read blob {}: {e}", descriptor.digest),
        }),
        Err(StoreError::Cache(e)) => Err(e),
        Err(StoreError::TooLong { expected }) => Err(RegistryError::SizeMismatch {
            source_name,
            digest: descriptor.digest.clone(),
            expected,
            actual: format!("more than {expected}"),
        }),
        Err(StoreError::Mismatch {
            actual_digest,
            actual_size,
        }) => {
            if actual_size == descriptor.size {
                Err(RegistryError::DigestMismatch {
                    source_name,
                    what: format!("blob {}", descriptor.digest),
                    expected: descriptor.digest.clone(),
                    actual: actual_digest,
                })
            } else {
                Err(RegistryError::SizeMismatch {
                    source_name,
                    digest: descriptor.digest.clone(),
                    expected: descriptor.size,
                    actual: actual_size.to_string(),
                })
            }
        }
    }
}
