//! Reading files inside a rootfs directory: symlinks resolve against the rootfs, never the host.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Resolve `path` (as seen from inside the rootfs) to a host path under `rootfs`, following
/// symlinks the way a chroot would: absolute targets restart at the rootfs, `..` stops at it.
pub(crate) fn resolve_in(rootfs: &Path, path: &Path) -> PathBuf {
    let mut stack: Vec<OsString> = Vec::new();
    let mut pending: Vec<OsString> = components(path);
    pending.reverse();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            stack.pop();
            continue;
        }
        let mut candidate = rootfs.to_path_buf();
        candidate.extend(&stack);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && hops < 40 => {
                hops += 1;
                let Ok(target) = std::fs::read_link(&candidate) else {
                    stack.push(c);
                    continue;
                };
                if target.is_absolute() {
                    stack.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => stack.push(c),
        }
    }
    let mut out = rootfs.to_path_buf();
    out.extend(&stack);
    out
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Read a file of the rootfs.
pub(crate) fn read(rootfs: &Path, path: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(resolve_in(rootfs, Path::new(path)))
}

/// List a directory of the rootfs (file names, sorted); a missing directory is empty.
pub(crate) fn list_dir(rootfs: &Path, path: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(resolve_in(rootfs, Path::new(path))) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_symlinks_stay_in_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/share/keyrings")).unwrap();
        std::fs::create_dir_all(root.join("etc/apt")).unwrap();
        std::fs::write(root.join("usr/share/keyrings/k.gpg"), b"key").unwrap();
        std::os::unix::fs::symlink("/usr/share/keyrings/k.gpg", root.join("etc/apt/k.gpg"))
            .unwrap();
        std::os::unix::fs::symlink("../../../../../etc", root.join("etc/apt/up")).unwrap();
        assert_eq!(read(root, "/etc/apt/k.gpg").unwrap(), b"key");
        assert_eq!(
            resolve_in(root, Path::new("/etc/apt/up/apt")),
            root.join("etc/apt")
        );
    }
}
