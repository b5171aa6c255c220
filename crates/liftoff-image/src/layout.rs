//! OCI image manifest, OCI image layout directory and oci-archive.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ConfigBlob;
use crate::digest::{HashReader, digest_hex, sha256_digest};
use crate::error::{ImageError, IoContext};
use crate::layer::LayerBlob;
use crate::media::{MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, oci_layer_media_type};
use crate::tarw::{DetTar, Meta};

/// The `oci-layout` file's version.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";
/// The index annotation that carries the tag.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI content descriptor. Fields serialise in the order of the Go reference types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: digest.to_owned(),
            size,
            urls: None,
            annotations: None,
        }
    }

    /// A base image layer's descriptor for our OCI manifest: same digest and size, the
    /// media type translated to OCI (Docker gzip layers are byte-identical OCI gzip layers).
    pub fn for_base_layer(media_type: &str, digest: &str, size: u64) -> Result<Self, ImageError> {
        digest_hex(digest)?;
        Ok(Descriptor::new(
            oci_layer_media_type(media_type)?,
            digest,
            size,
        ))
    }
}

/// An OCI image manifest (schema version 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_MANIFEST.to_owned(),
            config,
            layers,
            annotations: None,
        }
    }

    /// The manifest's bytes: compact JSON, fields in declaration order, annotation keys
    /// sorted. These exact bytes are what a registry must receive.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }
}

/// A manifest as written: the bytes to push as they are, their digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestRef {
    pub digest: String,
    pub size: u64,
    pub bytes: Vec<u8>,
}

impl ManifestRef {
    /// The index/`subject` descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(MEDIA_TYPE_MANIFEST, &self.digest, self.size)
    }
}

/// Where the bytes of a blob come from when writing a layout.
#[derive(Clone, Debug)]
pub enum Blob {
    /// A file whose content hashes to `digest` (checked while copying).
    File { digest: String, path: PathBuf },
    /// In-memory bytes (e.g. the config).
    Bytes { digest: String, bytes: Vec<u8> },
}

impl Blob {
    pub fn digest(&self) -> &str {
        match self {
            Blob::File { digest, .. } | Blob::Bytes { digest, .. } => digest,
        }
    }
}

impl From<&LayerBlob> for Blob {
    fn from(layer: &LayerBlob) -> Self {
        Blob::File {
            digest: layer.digest.clone(),
            path: layer.path.clone(),
        }
    }
}

impl From<&ConfigBlob> for Blob {
    fn from(config: &ConfigBlob) -> Self {
        Blob::Bytes {
            digest: config.digest.clone(),
            bytes: config.bytes.clone(),
        }
    }
}

/// An OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
#[derive(Clone, Debug)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Open `dir` as a layout, creating it (and `oci-layout`, `blobs/sha256`) if needed.
    pub fn create(dir: &Path) -> Result<Self, ImageError> {
        let sha = dir.join("blobs").join("sha256");
        fs::create_dir_all(&sha).ctx("creating", &sha)?;
        let marker = dir.join("oci-layout");
        let want = format!("{{\"imageLayoutVersion\":\"{OCI_LAYOUT_VERSION}\"}}");
        if fs::read(&marker).ok().as_deref() != Some(want.as_bytes()) {
            write_atomic(&marker, want.as_bytes())?;
        }
        Ok(OciLayout {
            root: dir.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/blobs`: pass it to [`crate::layer_from_dir`] to write layers in place.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// `<root>/blobs/sha256/<hex>`.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self
            .root
            .join("blobs")
            .join("sha256")
            .join(digest_hex(digest)?))
    }

    /// Add a blob unless the layout already holds it. The content is hashed on the way in
    /// and must match the blob's digest.
    pub fn put_blob(&self, blob: &Blob) -> Result<PathBuf, ImageError> {
        let dest = self.blob_path(blob.digest())?;
        match blob {
            Blob::File { path, .. } if same_file(path, &dest) => {}
            _ if dest.exists() => {}
            Blob::Bytes { digest, bytes } => {
                let actual = sha256_digest(bytes);
                if &actual != digest {
                    return Err(ImageError::DigestMismatch {
                        path: dest,
                        expected: digest.clone(),
                        actual,
                    });
                }
                write_atomic(&dest, bytes)?;
            }
            Blob::File { digest, path } => copy_verified(path, &dest, digest)?,
        }
        Ok(dest)
    }

    /// Write the manifest blob and point `tag` at it in `index.json` (replacing any entry
    /// with the same tag). Every blob the manifest references must already be present.
    pub fn write_manifest(
        &self,
        manifest: &ImageManifest,
        tag: &str,
    ) -> Result<ManifestRef, ImageError> {
        if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ImageError::InvalidTag(tag.to_owned()));
        }
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let path = self.blob_path(&d.digest)?;
            let actual = match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(_) => {
                    return Err(ImageError::MissingBlob {
                        layout: self.root.clone(),
                        digest: d.digest.clone(),
                        size: d.size,
                    });
                }
            };
            if actual != d.size {
                return Err(ImageError::SizeMismatch {
                    digest: d.digest.clone(),
                    expected: d.size,
                    actual,
                });
            }
        }
        let bytes = manifest.to_bytes();
        let digest = sha256_digest(&bytes);
        let mref = ManifestRef {
            size: bytes.len() as u64,
            digest,
            bytes,
        };
        let path = self.blob_path(&mref.digest)?;
        if !path.exists() {
            write_atomic(&path, &mref.bytes)?;
        }
        self.tag(&mref.descriptor(), tag)?;
        Ok(mref)
    }

    /// Point `tag` at `manifest` in `index.json`, keeping other entries in their order.
    fn tag(&self, manifest: &Descriptor, tag: &str) -> Result<(), ImageError> {
        let index_path = self.root.join("index.json");
        let mut manifests: Vec<Value> = Vec::new();
        match fs::read(&index_path) {
            Ok(bytes) => {
                let invalid = |message: String| ImageError::InvalidIndex {
                    path: index_path.clone(),
                    message,
                };
                let index: Value =
                    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
                match index.get("manifests") {
                    Some(Value::Array(items)) => manifests.clone_from(items),
                    None | Some(Value::Null) => {}
                    Some(_) => return Err(invalid("\"manifests\" is not an array".into())),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io("reading", &index_path, e)),
        }
        manifests.retain(|m| m["annotations"][ANNOTATION_REF_NAME].as_str() != Some(tag));
        let mut entry = manifest.clone();
        entry.annotations = Some(BTreeMap::from([(
            ANNOTATION_REF_NAME.to_owned(),
            tag.to_owned(),
        )]));
        manifests.push(serde_json::to_value(&entry).expect("a descriptor always serialises"));
        let mut index = serde_json::Map::new();
        index.insert("schemaVersion".into(), Value::from(2));
        index.insert("mediaType".into(), Value::from(MEDIA_TYPE_INDEX));
        index.insert("manifests".into(), Value::Array(manifests));
        let bytes = serde_json::to_vec(&Value::Object(index)).expect("an index always serialises");
        write_atomic(&index_path, &bytes)
    }
}

/// Write an OCI image layout at `dir` (created if needed): every blob in `blobs` is added
/// (hashed and checked against its digest; files already in place are left alone), then
/// the manifest bytes, then `index.json` with `tag` as `org.opencontainers.image.ref.name`.
///
/// The returned bytes are the manifest exactly as stored; push those, never a
/// re-serialisation.
pub fn write_oci_layout(
    dir: &Path,
    manifest: &ImageManifest,
    blobs: &[Blob],
    tag: &str,
) -> Result<ManifestRef, ImageError> {
    let layout = OciLayout::create(dir)?;
    for blob in blobs {
        layout.put_blob(blob)?;
    }
    layout.write_manifest(manifest, tag)
}

/// Archive entries: owner 0:0, mtime 0, files 0644, directories 0755.
const ARCHIVE_FILE: Meta = Meta {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
};
const ARCHIVE_DIR: Meta = Meta {
    mode: 0o755,
    ..ARCHIVE_FILE
};

type ArchiveTar<'f> = DetTar<BufWriter<&'f File>>;

/// Writes a deterministic tar to `file` through a temp file next to it, renamed into place
/// (mode 0644) only once `add_entries` has added every entry.
fn write_archive(
    file: &Path,
    prefix: &str,
    add_entries: impl FnOnce(&mut ArchiveTar<'_>) -> Result<(), ImageError>,
) -> Result<(), ImageError> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempfile_in(&parent)
        .ctx("creating a temporary file in", &parent)?;
    let mut tar = DetTar::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
    add_entries(&mut tar)?;
    let out = tar.finish().ctx("writing", tmp.path())?;
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)
        .ctx("writing", tmp.path())?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .ctx("setting permissions of", tmp.path())?;
    tmp.persist(file)
        .map_err(|e| ImageError::io("renaming the archive to", file, e.error))?;
    Ok(())
}

/// Adds the file at `path` as `name`.
fn archive_file(tar: &mut ArchiveTar<'_>, name: &str, path: &Path) -> Result<(), ImageError> {
    let mut f = File::open(path).ctx("opening", path)?;
    let size = f.metadata().ctx("reading metadata of", path)?.len();
    tar.file(
        name.as_bytes(),
        ARCHIVE_FILE,
        size,
        &[],
        io::Read::take(&mut f, size),
    )
    .ctx("archiving", path)
}

/// Pack a layout directory into an uncompressed, deterministic oci-archive tar:
/// `oci-layout`, `index.json`, then `blobs/`, `blobs/sha256/` and the blobs in name
/// order; owner 0:0, mode 0644 (directories 0755), mtime 0. Nothing else in the directory
/// (e.g. temporary files) goes in.
pub fn write_oci_archive(layout_dir: &Path, file: &Path) -> Result<(), ImageError> {
    write_archive(file, ".tmp-oci-archive-", |tar| {
        archive_file(tar, "oci-layout", &layout_dir.join("oci-layout"))?;
        archive_file(tar, "index.json", &layout_dir.join("index.json"))?;
        tar.dir(b"blobs", ARCHIVE_DIR)
            .ctx("archiving", layout_dir)?;
        let blobs = layout_dir.join("blobs");
        let mut algs = list_names(&blobs)?;
        algs.retain(|a| !a.starts_with('.'));
        for alg in algs {
            let alg_dir = blobs.join(&alg);
            if !alg_dir.is_dir() {
                continue;
            }
            tar.dir(format!("blobs/{alg}").as_bytes(), ARCHIVE_DIR)
                .ctx("archiving", &alg_dir)?;
            let mut names = list_names(&alg_dir)?;
            names.retain(|n| !n.starts_with('.'));
            for name in names {
                archive_file(tar, &format!("blobs/{alg}/{name}"), &alg_dir.join(&name))?;
            }
        }
        Ok(())
    })
}

/// File names of a directory (UTF-8 only, as blob names are), sorted.
fn list_names(dir: &Path) -> Result<Vec<String>, ImageError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).ctx("listing", dir)? {
        let entry = entry.ctx("listing", dir)?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Write `bytes` to a temporary file next to `dest` and rename it into place.
fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .ctx("creating a temporary file in", dir)?;
    tmp.write_all(bytes).ctx("writing", tmp.path())?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .ctx("setting permissions of", tmp.path())?;
    tmp.persist(dest)
        .map_err(|e| ImageError::io("renaming into", dest, e.error))?;
    Ok(())
}

/// Copy `src` to `dest` through a temporary file, checking the content's digest.
fn copy_verified(src: &Path, dest: &Path, digest: &str) -> Result<(), ImageError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .ctx("creating a temporary file in", dir)?;
    let mut reader = HashReader::new(File::open(src).ctx("opening blob", src)?);
    let mut writer = BufWriter::with_capacity(1 << 20, tmp.as_file());
    io::copy(&mut reader, &mut writer).ctx("copying blob", src)?;
    writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
        .ctx("writing", tmp.path())?;
    let (actual, _) = reader.finish();
    if actual != digest {
        return Err(ImageError::DigestMismatch {
            path: src.to_owned(),
            expected: digest.to_owned(),
            actual,
        });
    }
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .ctx("setting permissions of", tmp.path())?;
    tmp.persist(dest)
        .map_err(|e| ImageError::io("renaming into", dest, e.error))?;
    Ok(())
}

/// `manifest.json` of a docker archive for the image tagged `tag`, its config digest and layers.
fn docker_manifest(
    layout_dir: &Path,
    tag: Option<&str>,
    repo_tags: &[String],
) -> Result<(Vec<u8>, String, Vec<String>), ImageError> {
    let read_json = |path: &Path| -> Result<serde_json::Value, ImageError> {
        let bytes = fs::read(path).ctx("reading", path)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::InvalidConfig(format!("{} is not valid JSON: {e}", path.display()))
        })
    };
    let blob = |digest: &str| -> Result<PathBuf, ImageError> {
        Ok(layout_dir.join("blobs/sha256").join(digest_hex(digest)?))
    };
    let index = read_json(&layout_dir.join("index.json"))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = match tag {
        Some(t) => manifests
            .iter()
            .find(|m| m["annotations"][ANNOTATION_REF_NAME] == t),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    }
    .ok_or_else(|| {
        ImageError::InvalidConfig(format!(
            "{}: no image {} in index.json",
            layout_dir.display(),
            tag.map_or_else(
                || "(several, name a tag)".to_string(),
                |t| format!("tagged {t}")
            )
        ))
    })?;
    let manifest_digest = chosen["digest"].as_str().unwrap_or_default().to_string();
    let manifest = read_json(&blob(&manifest_digest)?)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let mt = l["mediaType"].as_str().unwrap_or_default();
        if mt.contains("zstd") {
            return Err(ImageError::InvalidConfig(
                "the image has zstd layers, which `docker load` reads only from Docker 25 on; build with --compression gzip to load it into an older engine".into(),
            ));
        }
        layers.push(l["digest"].as_str().unwrap_or_default().to_string());
    }
    let name_of = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let docker_manifest = serde_json::json!([{
        "Config": name_of(&config_digest),
        "RepoTags": repo_tags,
        "Layers": layers.iter().map(|d| name_of(d)).collect::<Vec<_>>(),
    }]);
    let manifest_bytes = serde_json::to_vec(&docker_manifest).unwrap_or_default();
    Ok((manifest_bytes, config_digest, layers))
}

/// Pack the image tagged `tag` (or the only one) of a layout into a `docker load` archive
/// (`docker save` format: `manifest.json` with `Config`, `RepoTags`, `Layers`, the blobs under
/// `blobs/sha256/`), deterministic like [`write_oci_archive`]. Docker's loader reads gzip layers;
/// zstd layers need Docker 25 or newer, so they are refused with a hint.
pub fn write_docker_archive(
    layout_dir: &Path,
    tag: Option<&str>,
    repo_tags: &[String],
    file: &Path,
) -> Result<(), ImageError> {
    let (manifest_bytes, config_digest, layers) = docker_manifest(layout_dir, tag, repo_tags)?;
    write_archive(file, ".tmp-docker-archive-", |tar| {
        tar.file(
            b"manifest.json",
            ARCHIVE_FILE,
            manifest_bytes.len() as u64,
            &[],
            &manifest_bytes[..],
        )
        .ctx("archiving", file)?;
        tar.dir(b"blobs", ARCHIVE_DIR).ctx("archiving", file)?;
        tar.dir(b"blobs/sha256", ARCHIVE_DIR)
            .ctx("archiving", file)?;
        let mut seen = std::collections::BTreeSet::new();
        for digest in std::iter::once(&config_digest).chain(layers.iter()) {
            if seen.insert(digest.clone()) {
                let hex = digest_hex(digest)?;
                archive_file(
                    tar,
                    &format!("blobs/sha256/{hex}"),
                    &layout_dir.join("blobs/sha256").join(hex),
                )?;
            }
        }
        Ok(())
    })
}
