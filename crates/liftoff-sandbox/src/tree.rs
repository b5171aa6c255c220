//! The merged view of an overlay stack, read and written *offline* (no mount needed).
//!
//! Before a step runs, the sandbox must read the image's `/etc/passwd`, create the working
//! directory and the mountpoints it needs (`/proc`, binds, `/etc/resolv.conf`…). It does that
//! here, straight on the layer directories, following overlayfs' own lookup rules (whiteouts,
//! opaque directories, upper-most entry wins) and resolving symlinks *inside* the image root, so
//! an image symlink such as `/etc/resolv.conf -> /run/…` can never point a mount at the host.
//! New entries go into the upper directory exactly as overlayfs' copy-up would put them there,
//! and everything created only for the sandbox is recorded so it can be taken out again.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps};

use crate::error::{IoContext, Result, SandboxError};

/// Symlinks followed while resolving one path, like the kernel's `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// Which xattr namespace overlayfs uses for its own attributes on this mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XattrNs {
    /// `trusted.overlay.*`: a normal (root) overlay mount.
    Trusted,
    /// `user.overlay.*`: an overlay mounted with `userxattr` inside a user namespace.
    User,
}

impl XattrNs {
    pub(crate) fn opaque(self) -> &'static str {
        match self {
            XattrNs::Trusted => "trusted.overlay.opaque",
            XattrNs::User => "user.overlay.opaque",
        }
    }
}

/// An overlay whiteout: a character device with device number 0/0.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// `trusted.overlay.opaque=y` or `user.overlay.opaque=y` on a directory. (`x` is not opaque: newer
/// kernels use it to mark directories that merely contain "xwhiteouts".)
pub(crate) fn is_opaque(path: &Path) -> bool {
    [XattrNs::Trusted, XattrNs::User]
        .iter()
        .any(|ns| matches!(xattr::get(path, ns.opaque()), Ok(Some(v)) if v == b"y"))
}

/// Attributes that belong to overlayfs itself and must never reach a layer.
pub(crate) fn is_overlay_xattr(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b"trusted.overlay.") || b.starts_with(b"user.overlay.")
}

/// Creates an overlay whiteout (char 0/0) at `path`.
pub(crate) fn make_whiteout(path: &Path) -> Result<()> {
    rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0)
        .map_err(io::Error::from)
        .ctx("creating the overlay whiteout", path)
}

/// Copies ownership, permissions, the non-overlay xattrs and the times of `meta` (read from
/// `from`) onto `to`. Ownership is best effort when `strict_owner` is false (unprivileged).
pub(crate) fn copy_metadata(
    from: &Path,
    meta: &Metadata,
    to: &Path,
    strict_owner: bool,
) -> Result<()> {
    if let Err(e) = std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        && strict_owner
    {
        return Err(e).ctx("setting the owner of", to);
    }
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx("setting the permissions of", to)?;
    }
    copy_xattrs(from, to)?;
    set_times(to, meta)
}

/// Copies every xattr except overlayfs' own (`security.capability`, ACLs, `user.*`…).
pub(crate) fn copy_xattrs(from: &Path, to: &Path) -> Result<()> {
    let names = match xattr::list(from) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) => {
            return Ok(());
        }
        Err(e) => return Err(e).ctx("listing the xattrs of", from),
    };
    for name in names {
        if is_overlay_xattr(&name) {
            continue;
        }
        if let Some(value) = xattr::get(from, &name).ctx("reading an xattr of", from)? {
            xattr::set(to, &name, &value).map_err(|e| SandboxError::Io {
                action: "copying an xattr onto",
                path: to.to_path_buf(),
                source: io::Error::new(e.kind(), format!("{}: {e}", name.to_string_lossy())),
            })?;
        }
    }
    Ok(())
}

/// Sets atime and mtime of `to` (not following symlinks) from `meta`.
pub(crate) fn set_times(to: &Path, meta: &Metadata) -> Result<()> {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(CWD, to, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io::Error::from)
        .ctx("setting the times of", to)
}

/// Splits an absolute (or root-relative) path into its components; `..` stays in place.
pub(crate) fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Lexically normalises an in-image path: `..` is applied textually and clamps at `/`.
pub(crate) fn normalize(path: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in components(Path::new(path)) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

/// `/a/b` for the components `[a, b]` (`/` for none); image paths must be UTF-8.
pub(crate) fn in_image(comps: &[OsString]) -> Result<String> {
    if comps.is_empty() {
        return Ok("/".to_owned());
    }
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(c.to_str().ok_or_else(|| {
            SandboxError::InvalidSpec(format!(
                "image path component {:?} is not UTF-8",
                c.display()
            ))
        })?);
    }
    Ok(s)
}

fn join(base: &Path, comps: &[OsString]) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

/// What one path is in the merged view.
enum Node {
    Missing,
    /// A directory, with the layers contributing to it, upper-most first.
    Dir(Vec<usize>),
    Symlink(PathBuf),
    /// Any other non-directory, found in `layer`.
    Other(usize),
    /// A parent component is not a directory.
    NotDir,
}

/// What the caller wants at the end of the path when it has to be created.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    Dir { mode: u32, uid: u32, gid: u32 },
    File,
}

/// How to create missing entries.
pub(crate) struct Create<'r> {
    pub want: Want,
    /// Where to note what was created (mountpoints); `None` for entries that stay (WORKDIR).
    pub record: Option<&'r mut Record>,
    pub ns: XattrNs,
    /// Root can give copied-up directories their owner; unprivileged it is best effort.
    pub strict_owner: bool,
}

/// The result of resolving a path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Resolved (and, when asked, created) at these symlink-free components.
    At(Vec<OsString>),
    /// Does not exist (only without [`Create`]).
    Missing,
    /// The path leads into the `stop_at` directory (the tmpfs on /tmp): these components remain
    /// below it, to be created inside the tmpfs at run time.
    Below(Vec<OsString>),
}

/// The layer directories of an overlay, upper-most first (`dirs[0]` is the upper in a run).
pub(crate) struct Layers {
    pub dirs: Vec<PathBuf>,
}

impl Layers {
    fn lookup(&self, comps: &[OsString]) -> Result<Node> {
        let mut active: Vec<usize> = (0..self.dirs.len()).collect();
        for i in 0..comps.len() {
            let prefix = &comps[..=i];
            let last = i + 1 == comps.len();
            let mut dirs = Vec::new();
            let mut other = None;
            for &l in &active {
                let p = join(&self.dirs[l], prefix);
                let meta = match fs::symlink_metadata(&p) {
                    Ok(m) => m,
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || e.kind() == io::ErrorKind::NotADirectory =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e).ctx("looking up", p),
                };
                if is_whiteout(&meta) {
                    break;
                }
                if meta.is_dir() {
                    dirs.push(l);
                    if is_opaque(&p) {
                        break;
                    }
                    continue;
                }
                // A non-directory hides everything below it; it is the entry only if no upper
                // layer had a directory here.
                if dirs.is_empty() {
                    other = Some((l, meta, p));
                }
                break;
            }
            if let Some((l, meta, p)) = other {
                if !last {
                    return Ok(Node::NotDir);
                }
                if meta.file_type().is_symlink() {
                    return Ok(Node::Symlink(
                        fs::read_link(&p).ctx("reading the symlink", p)?,
                    ));
                }
                return Ok(Node::Other(l));
            }
            if dirs.is_empty() {
                return Ok(Node::Missing);
            }
            active = dirs;
        }
        Ok(Node::Dir(active))
    }

    /// True when `rel` is a directory in the merged view of these layers.
    pub(crate) fn is_dir(&self, rel: &Path) -> Result<bool> {
        Ok(matches!(self.lookup(&components(rel))?, Node::Dir(_)))
    }

    /// The host path of a regular file at `path` in the merged view (symlinks followed inside
    /// the image), if it exists.
    pub(crate) fn file(&self, path: &str) -> Result<Option<PathBuf>> {
        match self.resolve(path, None, None)? {
            Resolved::At(comps) => match self.lookup(&comps)? {
                Node::Other(l) => Ok(Some(join(&self.dirs[l], &comps))),
                _ => Ok(None),
            },
            Resolved::Missing | Resolved::Below(_) => Ok(None),
        }
    }

    /// Resolves `path` in the image, following symlinks inside the image root. With `create`,
    /// missing components are created in the upper layer (`dirs[0]`). With `stop_at`, a path
    /// that reaches that directory returns what is left below it instead.
    pub(crate) fn resolve(
        &self,
        path: &str,
        mut create: Option<&mut Create<'_>>,
        stop_at: Option<&[OsString]>,
    ) -> Result<Resolved> {
        let mut pending: VecDeque<OsString> = normalize(path).into();
        let mut cur: Vec<OsString> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            cur.push(c);
            match self.lookup(&cur)? {
                Node::Dir(_) => {
                    if stop_at == Some(cur.as_slice()) {
                        let rest: Vec<OsString> = pending.into_iter().collect();
                        if rest.iter().any(|c| c == "..") {
                            return Err(SandboxError::InvalidSpec(format!(
                                "{path}: `..` below the /tmp tmpfs is not supported"
                            )));
                        }
                        return Ok(Resolved::Below(rest));
                    }
                    if pending.is_empty()
                        && let Some(Create {
                            want: Want::File, ..
                        }) = create.as_deref()
                    {
                        return Err(SandboxError::InvalidSpec(format!(
                            "{path}: is a directory in the image, but a file is needed there"
                        )));
                    }
                }
                Node::Symlink(target) => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(SandboxError::InvalidSpec(format!(
                            "{path}: too many levels of symbolic links in the image"
                        )));
                    }
                    cur.pop();
                    if target.is_absolute() {
                        cur.clear();
                    }
                    for t in components(&target).into_iter().rev() {
                        pending.push_front(t);
                    }
                }
                Node::Other(_) => {
                    if !pending.is_empty() {
                        if create.is_none() {
                            return Ok(Resolved::Missing);
                        }
                        return Err(not_a_dir(path, &cur));
                    }
                    if let Some(Create {
                        want: Want::Dir { .. },
                        ..
                    }) = create.as_deref()
                    {
                        return Err(not_a_dir(path, &cur));
                    }
                }
                Node::NotDir if create.is_none() => return Ok(Resolved::Missing),
                Node::NotDir => return Err(not_a_dir(path, &cur)),
                Node::Missing => {
                    let Some(create) = create.as_deref_mut() else {
                        return Ok(Resolved::Missing);
                    };
                    let dir = !pending.is_empty() || matches!(create.want, Want::Dir { .. });
                    self.create_in_upper(&cur, dir, create)?;
                }
            }
        }
        Ok(Resolved::At(cur))
    }

    /// Creates `comps` (whose parent exists in the merged view) in the upper layer, copying up
    /// the parent directories first.
    fn create_in_upper(
        &self,
        comps: &[OsString],
        dir: bool,
        create: &mut Create<'_>,
    ) -> Result<()> {
        let upper = &self.dirs[0];
        // Copy-up of the parents, as overlayfs would do.
        for i in 0..comps.len() - 1 {
            let prefix = &comps[..=i];
            let up = join(upper, prefix);
            match fs::symlink_metadata(&up) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => return Err(not_a_dir(&in_image(comps)?, prefix)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx("looking up", up),
            }
            let Node::Dir(layers) = self.lookup(prefix)? else {
                return Err(not_a_dir(&in_image(comps)?, prefix));
            };
            let src = join(&self.dirs[layers[0]], prefix);
            let meta = fs::symlink_metadata(&src).ctx("reading", &src)?;
            fs::create_dir(&up).ctx("creating (copy-up)", &up)?;
            copy_metadata(&src, &meta, &up, create.strict_owner)?;
            if let Some(record) = create.record.as_deref_mut() {
                record.copied_up.push(CopiedUp {
                    rel: prefix.to_vec(),
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                });
            }
        }

        let target = join(upper, comps);
        // A whiteout in the upper layer hides the name below; it is replaced, and a directory
        // put in its place must be opaque so nothing from below shows through.
        let replaced_whiteout = match fs::symlink_metadata(&target) {
            Ok(m) if is_whiteout(&m) => {
                fs::remove_file(&target).ctx("removing the whiteout", &target)?;
                true
            }
            Ok(_) => {
                return Err(SandboxError::InvalidSpec(format!(
                    "{}: exists in the upper layer but not in the merged view",
                    in_image(comps)?
                )));
            }
            Err(_) => false,
        };
        if dir {
            let (mode, uid, gid) = match create.want {
                Want::Dir { mode, uid, gid } => (mode, uid, gid),
                Want::File => (0o755, 0, 0),
            };
            fs::DirBuilder::new()
                .mode(mode)
                .create(&target)
                .ctx("creating the directory", &target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .ctx("setting the permissions of", &target)?;
            if let Err(e) = std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                && create.strict_owner
            {
                return Err(e).ctx("setting the owner of", &target);
            }
            if replaced_whiteout {
                xattr::set(&target, create.ns.opaque(), b"y").ctx("marking opaque", &target)?;
            }
        } else {
            fs::File::create(&target).ctx("creating the mountpoint", &target)?;
        }
        if let Some(record) = create.record.as_deref_mut() {
            record.created.push(Created {
                rel: comps.to_vec(),
                dir,
                replaced_whiteout,
            });
        }
        Ok(())
    }
}

fn not_a_dir(path: &str, at: &[OsString]) -> SandboxError {
    let at = in_image(at).unwrap_or_else(|_| format!("{at:?}"));
    SandboxError::InvalidSpec(format!(
        "{path}: {at} is not a directory in the image, so it cannot hold a mountpoint or directory there"
    ))
}

/// What the sandbox added to the upper layer for itself, to be taken out after the run.
#[derive(Debug, Default)]
pub(crate) struct Record {
    created: Vec<Created>,
    copied_up: Vec<CopiedUp>,
}

#[derive(Debug)]
struct Created {
    rel: Vec<OsString>,
    dir: bool,
    replaced_whiteout: bool,
}

#[derive(Debug)]
struct CopiedUp {
    rel: Vec<OsString>,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Record {
    /// Removes the mountpoints (empty files and empty directories) created for the run, puts
    /// back any whiteout they replaced, then the copied-up parents that are still empty and
    /// unchanged. Must run when the overlay is no longer mounted.
    pub(crate) fn undo(&self, upper: &Path) -> Result<()> {
        for c in self.created.iter().rev() {
            let p = join(upper, &c.rel);
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            let removed = if c.dir {
                meta.is_dir() && fs::remove_dir(&p).is_ok()
            } else if meta.is_file() && meta.len() == 0 {
                fs::remove_file(&p).ctx("removing the mountpoint", &p)?;
                true
            } else {
                false
            };
            if removed && c.replaced_whiteout {
                make_whiteout(&p)?;
            }
        }
        for c in self.copied_up.iter().rev() {
            let p = join(upper, &c.rel);
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            let unchanged = meta.is_dir()
                && meta.mode() & 0o7777 == c.mode
                && meta.uid() == c.uid
                && meta.gid() == c.gid
                && !is_opaque(&p);
            let empty = fs::read_dir(&p).is_ok_and(|mut d| d.next().is_none());
            if unchanged && empty {
                // A concurrent change would only make remove_dir fail, which is fine.
                let _ = fs::remove_dir(&p);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_clamps_at_root() {
        assert_eq!(
            normalize("/a/../../b/./c/"),
            vec![OsString::from("b"), OsString::from("c")]
        );
        assert!(normalize("/").is_empty());
        assert_eq!(in_image(&normalize("x/y")).unwrap(), "/x/y");
    }

    #[test]
    fn lookup_follows_overlay_rules_and_image_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let (upper, mid, low) = (t.path().join("u"), t.path().join("m"), t.path().join("l"));
        for d in [&upper, &mid, &low] {
            fs::create_dir(d).unwrap();
        }
        fs::create_dir_all(low.join("etc")).unwrap();
        fs::write(low.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        fs::create_dir_all(mid.join("etc")).unwrap();
        fs::write(mid.join("etc/group"), "root:x:0:\n").unwrap();
        // An absolute symlink must resolve inside the image, never on the host.
        std::os::unix::fs::symlink("/etc", mid.join("conf")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", mid.join("pw")).unwrap();
        let layers = Layers {
            dirs: vec![upper.clone(), mid.clone(), low.clone()],
        };
        assert_eq!(
            layers.file("/etc/passwd").unwrap(),
            Some(low.join("etc/passwd"))
        );
        assert_eq!(
            layers.file("/conf/group").unwrap(),
            Some(mid.join("etc/group"))
        );
        assert_eq!(layers.file("/pw").unwrap(), Some(low.join("etc/passwd")));
        assert_eq!(layers.file("/etc/shadow").unwrap(), None);
        assert!(layers.is_dir(Path::new("etc")).unwrap());
        // A file in a higher layer hides a directory below.
        fs::write(upper.join("etc"), "").unwrap();
        assert!(!layers.is_dir(Path::new("etc")).unwrap());
        assert_eq!(layers.file("/etc/passwd").unwrap(), None);
    }
}
