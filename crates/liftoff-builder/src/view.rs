//! A read-only merged view of layer directories in overlay form, without
//! mounting: the files liftoff itself needs from the base image (dpkg status, apt
//! sources and keyrings, /etc/passwd) are looked up top-down like overlayfs does.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use crate::{BuildError, io};

/// Layer directories, bottom-most first.
pub(crate) struct View {
    layers: Vec<PathBuf>,
}

fn is_whiteout(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| xattr_is_y(dir, name))
}

fn xattr_is_y(dir: &Path, name: &str) -> bool {
    matches!(xattr::get(dir, name), Ok(Some(v)) if v == b"y")
}

impl View {
    pub(crate) fn new(bottom_to_top: &[PathBuf]) -> Self {
        Self {
            layers: bottom_to_top.to_vec(),
        }
    }

    /// The layer file that `rel` resolves to, if it exists in the merged view.
    fn lookup(&self, rel: &str) -> Option<PathBuf> {
        for layer in self.layers.iter().rev() {
            let p = layer.join(rel);
            if is_whiteout(&p) {
                return None;
            }
            if std::fs::symlink_metadata(&p).is_ok() {
                return Some(p);
            }
        }
        None
    }

    fn read_dir_merged(&self, rel: &str) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut deleted = std::collections::BTreeSet::new();
        for layer in self.layers.iter().rev() {
            let dir = layer.join(rel);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if deleted.contains(&name) || names.contains(&name) {
                    continue;
                }
                if is_whiteout(&e.path()) {
                    deleted.insert(name);
                } else {
                    names.insert(name);
                }
            }
            if is_opaque(&dir) {
                break;
            }
        }
        names.into_iter().collect()
    }

    /// Copies `rels` (files, symlinks or whole directories) of the merged view under `dest`.
    pub(crate) fn materialize(&self, rels: &[&str], dest: &Path) -> Result<(), BuildError> {
        for rel in rels {
            self.copy(rel, dest)?;
        }
        Ok(())
    }

    fn copy(&self, rel: &str, dest: &Path) -> Result<(), BuildError> {
        let Some(src) = self.lookup(rel) else {
            return Ok(());
        };
        let target = dest.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        let meta = std::fs::symlink_metadata(&src).map_err(io("read", &src))?;
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&src).map_err(io("read", &src))?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target).map_err(io("create", &target))?;
        } else if meta.is_dir() {
            std::fs::create_dir_all(&target).map_err(io("create", &target))?;
            for name in self.read_dir_merged(rel) {
                self.copy(&format!("{rel}/{name}"), dest)?;
            }
        } else if meta.is_file() {
            std::fs::copy(&src, &target).map_err(io("copy", &src))?;
        }
        Ok(())
    }

    /// A file's contents in the merged view.
    pub(crate) fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.lookup(rel)?).ok()
    }

    /// `(uid, gid)` of a user from the image's `/etc/passwd`.
    pub(crate) fn user_ids(&self, user: &str) -> Result<(u32, u32), BuildError> {
        let passwd = self.read("etc/passwd").unwrap_or_default();
        passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
            })
            .ok_or_else(|| {
                BuildError::Invalid(format!(
                    "the base image has no `{user}` user in /etc/passwd; upstream's images run as `{user}` (uid 1000). Use a node base image or add the user."
                ))
            })
    }
}
