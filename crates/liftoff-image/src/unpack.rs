//! Extract a layer blob into a directory (an overlay lower dir).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::error::{ImageError, IoContext};
use crate::layer::XATTR_CAPABILITY;
use crate::media::oci_layer_media_type;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Extract a layer (gzip, zstd or plain tar; OCI or Docker media type) into `dest`.
///
/// `dest` is created if missing and is meant to be an empty directory that becomes one
/// overlay lower dir; nothing is merged across layers here, and OCI whiteouts (`.wh.*`,
/// `.wh..wh..opq`) are kept as the regular files they are in the tar.
///
/// * Entry names with `..` components or a leading `/` are refused, and so is any entry
///   whose parent path runs through a symlink (a symlink in the layer could otherwise
///   redirect a later entry outside `dest`). Symlinks themselves are created verbatim,
///   absolute targets included: they are resolved inside the container, not here.
/// * Hard links must name a path already extracted in `dest`, reached without symlinks.
/// * Modes (setuid/setgid/sticky included), mtimes and, when running as root, numeric
///   owners and the `security.capability` xattr are restored. Character and block devices are
///   skipped (a container gets its own `/dev`); FIFOs are created.
/// * The compression is taken from the blob's magic bytes, as Docker does, so a
///   mislabelled blob still extracts; `media_type` must still be a known layer type.
pub fn unpack_layer(blob: &Path, media_type: &str, dest: &Path) -> Result<(), ImageError> {
    oci_layer_media_type(media_type)?;
    let file = File::open(blob).ctx("opening layer", blob)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let corrupt = |source: io::Error| ImageError::CorruptLayer {
        blob: blob.to_owned(),
        source,
    };
    let head = reader.fill_buf().map_err(corrupt)?;
    let decoded: Box<dyn Read> = if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(corrupt)?)
    } else {
        Box::new(reader)
    };

    fs::create_dir_all(dest).ctx("creating", dest)?;
    let mut unpacker = Unpacker {
        blob,
        dest,
        chown: rustix::process::geteuid().is_root(),
        dirs: Vec::new(),
        verified: HashSet::new(),
    };
    let mut archive = tar::Archive::new(decoded);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()
}

/// Metadata of one entry, pax overrides applied.
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    capability: Option<Vec<u8>>,
}

struct Unpacker<'a> {
    blob: &'a Path,
    dest: &'a Path,
    chown: bool,
    /// Directories whose mode and mtime are applied at the end, after their contents.
    dirs: Vec<(PathBuf, u32, i64)>,
    /// Directories under `dest` known to be real directories (not symlinks).
    verified: HashSet<PathBuf>,
}

impl Unpacker<'_> {
    fn unsafe_entry(&self, entry: &[u8], reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            blob: self.blob.to_owned(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn corrupt(&self, source: io::Error) -> ImageError {
        ImageError::CorruptLayer {
            blob: self.blob.to_owned(),
            source,
        }
    }

    /// A relative path without `.`/empty components; refuses `..` and absolute names.
    fn clean(&self, raw: &[u8], what: &str) -> Result<PathBuf, ImageError> {
        if raw.starts_with(b"/") {
            return Err(self.unsafe_entry(raw, format!("{what} is an absolute path")));
        }
        let mut out = PathBuf::new();
        for comp in raw.split(|b| *b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => {
                    return Err(self.unsafe_entry(raw, format!("{what} contains `..`")));
                }
                c => out.push(OsStr::from_bytes(c)),
            }
        }
        Ok(out)
    }

    fn attrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<Attrs, ImageError> {
        let h = entry.header();
        let bad = |e: io::Error| {
            self.corrupt(io::Error::new(
                e.kind(),
                format!("entry {:?}: {e}", String::from_utf8_lossy(raw)),
            ))
        };
        let to_u32 = |v: u64| {
            u32::try_from(v)
                .map_err(|_| bad(io::Error::other(format!("owner id {v} out of range"))))
        };
        let mut attrs = Attrs {
            mode: or_zero(h.mode(), &h.as_old().mode).map_err(bad)? & 0o7777,
            uid: to_u32(or_zero(h.uid(), &h.as_old().uid).map_err(bad)?)?,
            gid: to_u32(or_zero(h.gid(), &h.as_old().gid).map_err(bad)?)?,
            mtime: i64::try_from(or_zero(h.mtime(), &h.as_old().mtime).map_err(bad)?)
                .unwrap_or(i64::MAX),
            capability: None,
        };
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                let value = ext.value_bytes();
                let parse = |what: &str| -> Result<u64, ImageError> {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| bad(io::Error::other(format!("invalid pax {what} record"))))
                };
                match ext.key_bytes() {
                    b"uid" => attrs.uid = to_u32(parse("uid")?)?,
                    b"gid" => attrs.gid = to_u32(parse("gid")?)?,
                    b"mtime" => {
                        // "1234.5678": whole seconds are enough.
                        let whole = value.split(|b| *b == b'.').next().unwrap_or_default();
                        if let Some(secs) = std::str::from_utf8(whole)
                            .ok()
                            .and_then(|v| v.parse::<i64>().ok())
                        {
                            attrs.mtime = secs;
                        }
                    }
                    k if k.strip_prefix(b"SCHILY.xattr.") == Some(XATTR_CAPABILITY.as_bytes()) => {
                        attrs.capability = Some(value.to_vec());
                    }
                    _ => {}
                }
            }
        }
        Ok(attrs)
    }

    /// Make sure every parent of `rel` is a real directory inside `dest`, creating missing
    /// ones (root 0755) when `create` is set.
    fn check_parents(&mut self, rel: &Path, raw: &[u8], create: bool) -> Result<(), ImageError> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut cur = self.dest.to_path_buf();
        for comp in parent.components() {
            cur.push(comp);
            if self.verified.contains(&cur) {
                continue;
            }
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.unsafe_entry(
                        raw,
                        format!(
                            "its parent {} is a symlink in this layer; following it could \
                             write outside the destination",
                            cur.strip_prefix(self.dest).unwrap_or(&cur).display()
                        ),
                    ));
                }
                Ok(_) => {
                    return Err(self.unsafe_entry(
                        raw,
                        format!(
                            "its parent {} is not a directory",
                            cur.strip_prefix(self.dest).unwrap_or(&cur).display()
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&cur).ctx("creating directory", &cur)?;
                    fs::set_permissions(&cur, fs::Permissions::from_mode(0o755))
                        .ctx("setting permissions of", &cur)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(self.unsafe_entry(
                        raw,
                        format!(
                            "hard link target directory {} does not exist",
                            cur.strip_prefix(self.dest).unwrap_or(&cur).display()
                        ),
                    ));
                }
                Err(e) => return Err(ImageError::io("reading metadata of", &cur, e)),
            }
            self.verified.insert(cur.clone());
        }
        Ok(())
    }

    /// Remove whatever is at `target` unless it is a directory and `keep_dir` is set.
    /// Returns whether a directory was kept.
    fn clear(&mut self, target: &Path, keep_dir: bool) -> Result<bool, ImageError> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {
                if keep_dir {
                    return Ok(true);
                }
                fs::remove_dir_all(target).ctx("replacing directory", target)?;
                // Anything cached under it is gone now.
                self.verified.clear();
                Ok(false)
            }
            Ok(_) => {
                fs::remove_file(target).ctx("replacing", target)?;
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::io("reading metadata of", target, e)),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        let rel = self.clean(&raw, "the entry name")?;
        let attrs = self.attrs(entry, &raw)?;
        let target = self.dest.join(&rel);

        if rel.as_os_str().is_empty() {
            // The layer's root ("./"): only its metadata matters.
            if !kind.is_dir() {
                return Err(self.unsafe_entry(&raw, "the layer root is not a directory"));
            }
            self.own(&target, &attrs)?;
            self.dirs.push((target, attrs.mode, attrs.mtime));
            return Ok(());
        }

        match kind {
            EntryType::Char | EntryType::Block => return Ok(()),
            EntryType::Directory => {
                self.check_parents(&rel, &raw, true)?;
                if !self.clear(&target, true)? {
                    fs::create_dir(&target).ctx("creating directory", &target)?;
                }
                self.own(&target, &attrs)?;
                self.dirs.push((target.clone(), attrs.mode, attrs.mtime));
                self.verified.insert(target);
                return Ok(());
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.check_parents(&rel, &raw, true)?;
                self.clear(&target, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .ctx("creating", &target)?;
                io::copy(entry, &mut file).ctx("extracting", &target)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&raw, "symlink without a target"))?
                    .into_owned();
                self.check_parents(&rel, &raw, true)?;
                self.clear(&target, false)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .ctx("creating symlink", &target)?;
            }
            EntryType::Link => return self.hard_link(entry, &raw, &rel, &target),
            EntryType::Fifo => {
                self.check_parents(&rel, &raw, true)?;
                self.clear(&target, false)?;
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &target,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .map_err(|e| ImageError::io("creating FIFO", &target, e.into()))?;
            }
            other => {
                return Err(self.unsafe_entry(
                    &raw,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        self.finish_entry(&target, kind, &attrs)
    }

    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        raw: &[u8],
        rel: &Path,
        target: &Path,
    ) -> Result<(), ImageError> {
        let link = entry
            .link_name_bytes()
            .ok_or_else(|| self.unsafe_entry(raw, "hard link without a target"))?
            .into_owned();
        let link_rel = self.clean(&link, "the hard link target")?;
        if link_rel.as_os_str().is_empty() {
            return Err(self.unsafe_entry(raw, "hard link to the layer root"));
        }
        self.check_parents(&link_rel, raw, false)?;
        let source = self.dest.join(&link_rel);
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_dir() => {
                return Err(self.unsafe_entry(raw, "hard link to a directory"));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(self.unsafe_entry(
                    raw,
                    format!(
                        "hard link target {} was not extracted before it",
                        String::from_utf8_lossy(&link)
                    ),
                ));
            }
        }
        if link_rel == rel {
            return Ok(());
        }
        self.check_parents(rel, raw, true)?;
        self.clear(target, false)?;
        // A hard link shares the inode, so its metadata is the target's.
        fs::hard_link(&source, target).ctx("creating hard link", target)
    }

    fn own(&self, target: &Path, attrs: &Attrs) -> Result<(), ImageError> {
        if self.chown {
            std::os::unix::fs::lchown(target, Some(attrs.uid), Some(attrs.gid))
                .ctx("setting the owner of", target)?;
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid bits), then the capability (chown clears it
    /// too), then mtime.
    fn finish_entry(
        &self,
        target: &Path,
        kind: EntryType,
        attrs: &Attrs,
    ) -> Result<(), ImageError> {
        self.own(target, attrs)?;
        if kind != EntryType::Symlink {
            fs::set_permissions(target, fs::Permissions::from_mode(attrs.mode))
                .ctx("setting permissions of", target)?;
        }
        // Only root may set `security.*` xattrs, as with owners.
        if let Some(cap) = attrs.capability.as_ref().filter(|_| self.chown) {
            rustix::fs::lsetxattr(
                target,
                XATTR_CAPABILITY,
                cap,
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| ImageError::io("setting security.capability on", target, e.into()))?;
        }
        set_mtime(target, attrs.mtime)
    }

    fn finish(self) -> Result<(), ImageError> {
        for (dir, mode, mtime) in self.dirs.iter().rev() {
            fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                .ctx("setting permissions of", dir)?;
            set_mtime(dir, *mtime)?;
        }
        Ok(())
    }
}

/// A numeric header field, where a blank one (all NULs or spaces) reads as 0, as Go's
/// `archive/tar` (and so Docker) reads it.
fn or_zero<T: Default>(parsed: io::Result<T>, raw: &[u8]) -> io::Result<T> {
    match parsed {
        Err(_) if raw.iter().all(|b| matches!(b, 0 | b' ')) => Ok(T::default()),
        other => other,
    }
}

fn set_mtime(target: &Path, mtime: i64) -> Result<(), ImageError> {
    let ts = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        target,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| ImageError::io("setting the mtime of", target, e.into()))
}
