#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// A `security.capability` value granting `cap_net_raw` (bit 13), effective: the v2 layout
/// (`magic_etc`, then permitted/inheritable pairs, little endian).
pub fn net_raw_capability() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

pub fn write(root: &Path, rel: &str, content: &[u8], mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub const LONG_DIR: &str = "deep/a-directory-name-that-is-quite-long-0123456789/another-fairly-long-directory-name-abcdefghij";

/// A tree with every kind of entry a layer can hold. Returns whether the capability xattr
/// could be set (it needs root and a file system that supports it).
pub fn sample_tree(root: &Path) -> bool {
    fs::create_dir_all(root).unwrap();
    write(root, "a/b.txt", b"hello from b\n", 0o644);
    write(root, "a-c", b"a dash c\n", 0o600);
    write(root, "a/exec.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "a/setuid", b"suid\n", 0o4755);
    write(root, "z/.wh.gone", b"", 0o644);
    write(root, "z/sub/deep.txt", &vec![b'x'; 100_000], 0o644);
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::hard_link(root.join("a/b.txt"), root.join("z/hard-b")).unwrap();
    symlink("../a/b.txt", root.join("z/rel-link")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    let long_target = format!("{}/target-{}", LONG_DIR, "t".repeat(40));
    symlink(&long_target, root.join("z/long-link")).unwrap();
    write(
        root,
        &format!("{LONG_DIR}/file-with-a-long-name.txt"),
        b"long\n",
        0o644,
    );
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let cap_file = root.join("a/ping");
    write(root, "a/ping", b"\x7fELF fake ping", 0o755);
    rustix::fs::lsetxattr(
        &cap_file,
        "security.capability",
        &net_raw_capability(),
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok()
}

/// The uncompressed tar of a layer blob.
pub fn layer_tar(blob: &Path) -> Vec<u8> {
    let raw = fs::read(blob).unwrap();
    let mut out = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(&raw[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else {
        out = raw;
    }
    out
}

/// One parsed tar entry.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub link: Option<String>,
    pub pax: Vec<(String, Vec<u8>)>,
    pub size: u64,
    pub dev: (u32, u32),
}

pub fn entries(tar_bytes: &[u8]) -> Vec<Seen> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let pax = match e.pax_extensions().unwrap() {
            Some(exts) => exts
                .map(|x| {
                    let x = x.unwrap();
                    (x.key().unwrap().to_owned(), x.value_bytes().to_vec())
                })
                .collect(),
            None => Vec::new(),
        };
        let h = e.header();
        out.push(Seen {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap()),
            pax,
            size: h.size().unwrap(),
            // Like GNU tar, non-device entries leave these fields as NULs.
            dev: if matches!(h.entry_type().as_byte(), b'3' | b'4') {
                (
                    h.device_major().unwrap().unwrap(),
                    h.device_minor().unwrap().unwrap(),
                )
            } else {
                (0, 0)
            },
        });
    }
    out
}
