//! A thin deterministic tar writer over `tar::Builder`.
//!
//! Every header is built from scratch: GNU format, numeric uid/gid only (user and group
//! names stay empty), the given mode and mtime, atime/ctime zero, and no pax records except
//! the `SCHILY.xattr.*` ones the caller asks for. Paths longer than 100 bytes use the GNU
//! long-name (`L`) and long-link (`K`) extensions, which every OCI unpacker reads.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::{Builder, EntryType, Header};

/// Ownership, permission bits and modification time of one entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

pub(crate) struct DetTar<W: Write> {
    builder: Builder<W>,
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn header(kind: EntryType, meta: Meta) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode & 0o7777);
    h.set_uid(u64::from(meta.uid));
    h.set_gid(u64::from(meta.gid));
    h.set_mtime(meta.mtime);
    h.set_size(0);
    h
}

impl<W: Write> DetTar<W> {
    pub(crate) fn new(out: W) -> Self {
        let mut builder = Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        builder.follow_symlinks(false);
        DetTar { builder }
    }

    /// A directory; `path` has no trailing slash (one is added).
    pub(crate) fn dir(&mut self, path: &[u8], meta: Meta) -> io::Result<()> {
        let mut h = header(EntryType::Directory, meta);
        let mut p = path.to_vec();
        p.push(b'/');
        self.builder.append_data(&mut h, as_path(&p), io::empty())
    }

    /// A regular file of exactly `size` bytes read from `data`.
    pub(crate) fn file(
        &mut self,
        path: &[u8],
        meta: Meta,
        size: u64,
        xattrs: &[(&str, &[u8])],
        data: impl Read,
    ) -> io::Result<()> {
        self.pax_xattrs(xattrs)?;
        let mut h = header(EntryType::Regular, meta);
        h.set_size(size);
        self.builder.append_data(&mut h, as_path(path), data)
    }

    /// A symbolic or hard link. The target is stored byte for byte.
    pub(crate) fn link(
        &mut self,
        kind: EntryType,
        path: &[u8],
        target: &[u8],
        meta: Meta,
    ) -> io::Result<()> {
        let mut h = header(kind, meta);
        let slot = &mut h.as_old_mut().linkname;
        if target.len() <= slot.len() && !target.contains(&0) {
            // Short targets go in verbatim: `Header::set_link_name` would normalise them
            // through `Path::components` (dropping `./` segments and doubled slashes).
            slot[..target.len()].copy_from_slice(target);
            self.builder.append_data(&mut h, as_path(path), io::empty())
        } else {
            // Long targets: the crate writes a GNU `K` record with the raw bytes.
            self.builder
                .append_link(&mut h, as_path(path), as_path(target))
        }
    }

    /// A character or block device, or a FIFO (`major`/`minor` zero).
    pub(crate) fn special(
        &mut self,
        kind: EntryType,
        path: &[u8],
        meta: Meta,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        let mut h = header(kind, meta);
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        self.builder.append_data(&mut h, as_path(path), io::empty())
    }

    fn pax_xattrs(&mut self, xattrs: &[(&str, &[u8])]) -> io::Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(name, value)| (format!("SCHILY.xattr.{name}"), *value))
            .collect();
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Write the end-of-archive marker and hand back the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}
