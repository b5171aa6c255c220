//! Deterministic layers from a directory tree.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tar::EntryType;

use crate::digest::{HashWriter, digest_hex};
use crate::error::{ImageError, IoContext};
use crate::media::{MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD};
use crate::tarw::{DetTar, Meta};

/// The only extended attribute carried into layers (file capabilities, e.g. on `ping`).
pub(crate) const XATTR_CAPABILITY: &str = "security.capability";

/// Gzip level: the same as `gzip -6` and Docker's default.
const GZIP_LEVEL: u32 = 6;
/// The gzip header's OS byte: 255 ("unknown"), as Go's `compress/gzip` (Docker, `BuildKit`)
/// writes it; fixed so the bytes don't depend on the build host.
const GZIP_OS_UNKNOWN: u8 = 255;
/// Zstandard level 3, libzstd's default, single-threaded (multi-threaded output differs).
const ZSTD_LEVEL: i32 = 3;

/// How a layer's tar stream is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`: level 6, no name, mtime 0, OS 255.
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`: level 3, single-threaded.
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE_LAYER_GZIP,
            Compression::Zstd => MEDIA_TYPE_LAYER_ZSTD,
        }
    }
}

/// What [`layer_from_dir`] puts in the layer and how.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerOptions {
    pub compression: Compression,
    /// The mtime of every entry: `SOURCE_DATE_EPOCH`, or 0
    /// (see [`crate::source_date_epoch`]).
    pub mtime: u64,
    /// Numeric `(uid, gid)` given to every entry instead of the owner on disk, like
    /// `COPY --chown=node:node` (`Some((1000, 1000))`).
    pub owner_override: Option<(u32, u32)>,
    /// Put the tree under this directory, e.g. `"app/"` for `/app`. The prefix directory
    /// itself gets an entry (with the source directory's mode, the owner override and the
    /// fixed mtime); its ancestors don't, so they keep what lower layers say (and extractors
    /// create missing ones as root 0755).
    pub prefix: Option<String>,
    /// Glob patterns on paths relative to the source directory (no leading `./` or `/`):
    /// `*` stays within one path component, `**` crosses them. A matched directory is left
    /// out with everything under it; `dev/*` keeps `dev` itself but none of its contents.
    pub exclude: Vec<String>,
}

/// A layer blob written into a content-addressed blob directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the compressed bytes (the manifest's layer digest).
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// OCI media type, from [`Compression::media_type`].
    pub media_type: String,
    /// `<blobs>/sha256/<hex>`.
    pub path: PathBuf,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

impl LayerBlob {
    /// The manifest descriptor of this layer.
    pub fn descriptor(&self) -> crate::Descriptor {
        crate::Descriptor::new(&self.media_type, &self.digest, self.size)
    }
}

/// Build a deterministic layer from `dir` and write it to `<blobs>/sha256/<hex>`.
///
/// * Entries come depth first, the names in each directory sorted by their bytes, so a
///   directory always precedes its contents (the order of GNU `tar --sort=name`). The
///   source directory itself has no entry unless [`LayerOptions::prefix`] is set.
/// * GNU headers with numeric owners only, the permission bits from disk (setuid, setgid
///   and sticky included), mtime fixed to [`LayerOptions::mtime`], no atime/ctime.
/// * Regular files, directories, symlinks (targets byte for byte), hard links (files that
///   share an inode become link entries to the first path that was written), character
///   and block devices, FIFOs. Sockets are skipped. Overlay whiteouts must already be
///   converted to `.wh.*` files, which are ordinary files here.
/// * The only xattr kept is `security.capability`, as a pax `SCHILY.xattr.` record.
/// * Files are streamed; the tar is compressed, and both the tar (diff id) and the blob
///   (digest) are hashed in the same pass. The blob goes to a temporary file in the
///   blob directory and is renamed into place.
pub fn layer_from_dir(
    dir: &Path,
    blobs: &Path,
    opts: &LayerOptions,
) -> Result<LayerBlob, ImageError> {
    let root_meta = fs::metadata(dir).map_err(|_| ImageError::NotADirectory(dir.to_owned()))?;
    if !root_meta.is_dir() {
        return Err(ImageError::NotADirectory(dir.to_owned()));
    }
    let prefix = normalize_prefix(opts.prefix.as_deref())?;
    let exclude = build_exclude(&opts.exclude)?;

    let sha_dir = blobs.join("sha256");
    fs::create_dir_all(&sha_dir).ctx("creating blob directory", &sha_dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-layer-")
        .tempfile_in(&sha_dir)
        .ctx("creating a temporary file in", &sha_dir)?;

    let (digest, size, diff_id, uncompressed_size) = {
        let out = HashWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
        let compressor =
            Compressor::new(opts.compression, out).ctx("starting compression for", tmp.path())?;
        let mut walker = Walker {
            tar: DetTar::new(HashWriter::new(compressor)),
            opts,
            exclude,
            prefix,
            links: HashMap::new(),
        };
        if let Some(prefix) = walker.prefix.clone() {
            let meta = walker.meta(&root_meta);
            walker
                .tar
                .dir(&prefix[..prefix.len() - 1], meta)
                .ctx("archiving", dir)?;
        }
        walker.walk(dir, &[])?;

        let Walker { tar, .. } = walker;
        let tar_hash = tar.finish().ctx("finishing the tar of", dir)?;
        let (compressor, diff_id, uncompressed_size) = tar_hash.finish();
        let out = compressor
            .finish()
            .ctx("finishing compression into", tmp.path())?;
        let (buf, digest, size) = out.finish();
        buf.into_inner()
            .map_err(io::IntoInnerError::into_error)
            .ctx("writing", tmp.path())?;
        (digest, size, diff_id, uncompressed_size)
    };

    let final_path = sha_dir.join(digest_hex(&digest)?);
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .ctx("setting permissions of", tmp.path())?;
    tmp.persist(&final_path)
        .map_err(|e| ImageError::io("renaming a layer blob to", &final_path, e.error))?;

    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: opts.compression.media_type().to_owned(),
        path: final_path,
        uncompressed_size,
    })
}

/// `"app"`, `"/app/"`, `"./app"` → `"app/"`; errors on `..`, absolute or empty prefixes.
fn normalize_prefix(prefix: Option<&str>) -> Result<Option<Vec<u8>>, ImageError> {
    let Some(raw) = prefix else { return Ok(None) };
    if raw.starts_with('/') {
        return Err(ImageError::InvalidPrefix(raw.to_owned()));
    }
    let mut out = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(ImageError::InvalidPrefix(raw.to_owned())),
            p => {
                out.extend_from_slice(p.as_bytes());
                out.push(b'/');
            }
        }
    }
    if out.is_empty() {
        return Err(ImageError::InvalidPrefix(raw.to_owned()));
    }
    Ok(Some(out))
}

fn build_exclude(patterns: &[String]) -> Result<Option<GlobSet>, ImageError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim_start_matches("./").trim_start_matches('/');
        let trimmed = trimmed.trim_end_matches('/');
        let glob = GlobBuilder::new(trimmed)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| ImageError::InvalidExclude {
                pattern: pattern.clone(),
                message: e.kind().to_string(),
            })?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| ImageError::InvalidExclude {
            pattern: patterns.join(", "),
            message: e.to_string(),
        })
}

struct Walker<'a, W: Write> {
    tar: DetTar<W>,
    opts: &'a LayerOptions,
    exclude: Option<GlobSet>,
    prefix: Option<Vec<u8>>,
    /// (dev, inode) of multiply-linked files → archive path of the first one written.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Walker<'_, W> {
    fn meta(&self, m: &Metadata) -> Meta {
        let (uid, gid) = self.opts.owner_override.unwrap_or((m.uid(), m.gid()));
        Meta {
            mode: m.mode() & 0o7777,
            uid,
            gid,
            mtime: self.opts.mtime,
        }
    }

    fn walk(&mut self, fs_dir: &Path, rel: &[u8]) -> Result<(), ImageError> {
        let mut names: Vec<OsString> = Vec::new();
        for entry in fs::read_dir(fs_dir).ctx("listing", fs_dir)? {
            names.push(entry.ctx("listing", fs_dir)?.file_name());
        }
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let mut rel_child = Vec::with_capacity(rel.len() + 1 + name.len());
            if !rel.is_empty() {
                rel_child.extend_from_slice(rel);
                rel_child.push(b'/');
            }
            rel_child.extend_from_slice(name.as_bytes());
            if let Some(set) = &self.exclude
                && set.is_match(Path::new(std::ffi::OsStr::from_bytes(&rel_child)))
            {
                continue;
            }
            let fs_path = fs_dir.join(&name);
            let meta = fs::symlink_metadata(&fs_path).ctx("reading metadata of", &fs_path)?;
            self.entry(&fs_path, &rel_child, &meta)?;
            if meta.is_dir() {
                self.walk(&fs_path, &rel_child)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, fs_path: &Path, rel: &[u8], m: &Metadata) -> Result<(), ImageError> {
        let path = match &self.prefix {
            Some(p) => [p.as_slice(), rel].concat(),
            None => rel.to_vec(),
        };
        let meta = self.meta(m);
        let ft = m.file_type();
        if ft.is_dir() {
            return self.tar.dir(&path, meta).ctx("archiving", fs_path);
        }
        if ft.is_socket() {
            return Ok(());
        }
        if m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            if let Some(first) = self.links.get(&key) {
                return self
                    .tar
                    .link(EntryType::Link, &path, first, meta)
                    .ctx("archiving", fs_path);
            }
            self.links.insert(key, path.clone());
        }
        if ft.is_file() {
            let mut file = File::open(fs_path).ctx("opening", fs_path)?;
            let cap = read_capability(fs_path)?;
            let xattrs: Vec<(&str, &[u8])> = cap
                .as_deref()
                .map(|v| vec![(XATTR_CAPABILITY, v)])
                .unwrap_or_default();
            let size = m.len();
            let reader = ExactReader {
                inner: &mut file,
                remaining: size,
            };
            self.tar
                .file(&path, meta, size, &xattrs, reader)
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        ImageError::FileChanged {
                            path: fs_path.to_owned(),
                            expected: size,
                        }
                    } else {
                        ImageError::io("archiving", fs_path, e)
                    }
                })?;
            // A file that grew while we read it would silently lose its tail.
            let mut probe = [0u8; 1];
            if file.read(&mut probe).ctx("reading", fs_path)? != 0 {
                return Err(ImageError::FileChanged {
                    path: fs_path.to_owned(),
                    expected: size,
                });
            }
            Ok(())
        } else if ft.is_symlink() {
            let target = fs::read_link(fs_path).ctx("reading symlink", fs_path)?;
            self.tar
                .link(
                    EntryType::Symlink,
                    &path,
                    &target.into_os_string().into_vec(),
                    meta,
                )
                .ctx("archiving", fs_path)
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            let rdev = m.rdev();
            self.tar
                .special(
                    kind,
                    &path,
                    meta,
                    rustix::fs::major(rdev),
                    rustix::fs::minor(rdev),
                )
                .ctx("archiving", fs_path)
        } else if ft.is_fifo() {
            self.tar
                .special(EntryType::Fifo, &path, meta, 0, 0)
                .ctx("archiving", fs_path)
        } else {
            Ok(())
        }
    }
}

/// The `security.capability` xattr of a file, if it has one.
fn read_capability(path: &Path) -> Result<Option<Vec<u8>>, ImageError> {
    let mut buf = [0u8; 256];
    match rustix::fs::lgetxattr(path, XATTR_CAPABILITY, &mut buf[..]) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::NOTSUP => Ok(None),
        Err(e) => Err(ImageError::io(
            "reading the security.capability xattr of",
            path,
            e.into(),
        )),
    }
}

/// Reads exactly `remaining` bytes; fails with `UnexpectedEof` if the source is shorter.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The compression stage of the layer pipeline.
enum Compressor<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(kind: Compression, out: W) -> io::Result<Self> {
        Ok(match kind {
            Compression::Gzip => Compressor::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(GZIP_OS_UNKNOWN)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                Compressor::Zstd(zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    /// Deliberately a no-op: flushing a deflate or zstd stream emits a sync block, which
    /// would make the bytes depend on when flushes happen. `finish` writes everything.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix(Some("app")).unwrap().unwrap(), b"app/");
        assert_eq!(normalize_prefix(Some("./a//b/")).unwrap().unwrap(), b"a/b/");
        assert!(normalize_prefix(Some("/app")).is_err());
        assert!(normalize_prefix(Some("a/../b")).is_err());
        assert!(normalize_prefix(Some("./")).is_err());
        assert!(normalize_prefix(None).unwrap().is_none());
    }
}
