//! Overlay upper directory ⇄ OCI layer directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode};

use crate::error::{IoContext, Result, SandboxError};
use crate::mechanism::Mechanism;
use crate::tree::{self, Layers, XattrNs};

/// The OCI whiteout prefix: `.wh.<name>` deletes `<name>` from the layers below.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque marker: the directory holding it hides its contents in the layers below.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The entries of `root` (not itself), parents before children, sorted by name.
fn entries(root: &Path) -> Result<Vec<(PathBuf, Metadata)>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            SandboxError::Io {
                action: "walking",
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("walk error")),
            }
        })?;
        let meta = entry.metadata().map_err(|e| SandboxError::Io {
            action: "reading",
            path: entry.path().to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("metadata error")),
        })?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_path_buf();
        out.push((rel, meta));
    }
    Ok(out)
}

fn whiteout_name(rel: &Path) -> PathBuf {
    let name = rel.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
    let mut wh = OsString::from(WHITEOUT_PREFIX);
    wh.push(std::ffi::OsStr::from_bytes(name));
    rel.with_file_name(wh)
}

/// An empty regular file standing for an OCI whiteout or opaque marker.
fn write_marker(path: &Path, times: &Metadata) -> Result<()> {
    fs::File::create(path).ctx("creating the whiteout file", path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .ctx("setting the permissions of", path)?;
    tree::set_times(path, times)
}

fn strip_overlay_xattrs(path: &Path) -> Result<()> {
    let Ok(names) = xattr::list(path) else {
        return Ok(());
    };
    for name in names.filter(|n| tree::is_overlay_xattr(n)) {
        xattr::remove(path, &name).ctx("removing an overlay xattr from", path)?;
    }
    Ok(())
}

/// Turns an overlay upper directory into an OCI layer directory at `out`:
///
/// - whiteouts (char 0/0 devices) become empty regular files `.wh.<name>`;
/// - directories marked `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`) get an empty
///   `.wh..wh..opq` file, but only when the directory exists in the `lowers` (overlay form,
///   top-most first), since otherwise there is nothing to hide;
/// - overlayfs' own xattrs (`trusted.overlay.*`, `user.overlay.*`) are dropped, all others
///   (`security.capability`, ACLs…) are kept, as are owners, modes, times and hard links.
///
/// When `out` is `upper` itself the conversion is done in place (cheap, but the directory can no
/// longer serve as an overlay lower); otherwise `out` must be missing or empty, receives a copy,
/// and `upper` is left untouched (so it can still be the lower of the next step). Sockets are
/// skipped. A file whose name starts with `.wh.` cannot be represented and is an error.
///
/// Sandbox artefacts (mountpoints, `/etc/resolv.conf`) never reach `upper`: [`crate::run`] takes
/// them out before it returns. The tar writer must treat `.wh.*` regular files as OCI whiteouts.
pub fn upper_to_layer(upper: &Path, lowers: &[PathBuf], out: &Path) -> Result<()> {
    let upper_meta = fs::symlink_metadata(upper).ctx("reading the upper directory", upper)?;
    if !upper_meta.is_dir() {
        return Err(SandboxError::Layer {
            path: upper.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let lower_view = Layers {
        dirs: lowers.to_vec(),
    };
    let list = entries(upper)?;
    for (rel, _) in &list {
        if rel
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(SandboxError::Layer {
                path: upper.join(rel),
                reason: format!(
                    "the build created a file named {WHITEOUT_PREFIX}*, which OCI layers reserve for \
                     whiteouts; rename it"
                ),
            });
        }
    }
    let in_place = match (upper.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if in_place {
        convert_in_place(upper, &upper_meta, &list, &lower_view)
    } else {
        copy_converted(upper, &upper_meta, &list, &lower_view, out)
    }
}

fn convert_in_place(
    upper: &Path,
    upper_meta: &Metadata,
    list: &[(PathBuf, Metadata)],
    lowers: &Layers,
) -> Result<()> {
    strip_overlay_xattrs(upper)?;
    for (rel, meta) in list {
        let p = upper.join(rel);
        if tree::is_whiteout(meta) {
            fs::remove_file(&p).ctx("removing the overlay whiteout", &p)?;
            write_marker(&upper.join(whiteout_name(rel)), meta)?;
            continue;
        }
        if meta.is_dir() && tree::is_opaque(&p) && lowers.is_dir(rel)? {
            write_marker(&p.join(OPAQUE_MARKER), meta)?;
        }
        strip_overlay_xattrs(&p)?;
    }
    // New marker files changed directory mtimes: put them back, deepest first.
    for (rel, meta) in list.iter().rev().filter(|(_, m)| m.is_dir()) {
        tree::set_times(&upper.join(rel), meta)?;
    }
    tree::set_times(upper, upper_meta)
}

fn copy_converted(
    upper: &Path,
    upper_meta: &Metadata,
    list: &[(PathBuf, Metadata)],
    lowers: &Layers,
    out: &Path,
) -> Result<()> {
    match fs::read_dir(out) {
        Ok(mut d) => {
            if d.next().is_some() {
                return Err(SandboxError::Layer {
                    path: out.to_path_buf(),
                    reason: "the output directory is not empty".into(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(out).ctx("creating the layer directory", out)?;
        }
        Err(e) => return Err(e).ctx("reading the layer directory", out),
    }
    let strict = rustix::process::geteuid().is_root();
    tree::copy_metadata(upper, upper_meta, out, strict)?;
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (rel, meta) in list {
        let src = upper.join(rel);
        let dst = out.join(rel);
        let ft = meta.file_type();
        if tree::is_whiteout(meta) {
            write_marker(&out.join(whiteout_name(rel)), meta)?;
        } else if ft.is_dir() {
            fs::create_dir(&dst).ctx("creating", &dst)?;
            tree::copy_metadata(&src, meta, &dst, strict)?;
            if tree::is_opaque(&src) && lowers.is_dir(rel)? {
                write_marker(&dst.join(OPAQUE_MARKER), meta)?;
            }
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    fs::hard_link(first, &dst).ctx("hard-linking", &dst)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), dst.clone());
            }
            fs::copy(&src, &dst).ctx("copying", &src)?;
            tree::copy_metadata(&src, meta, &dst, strict)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src).ctx("reading the symlink", &src)?;
            std::os::unix::fs::symlink(&target, &dst).ctx("creating the symlink", &dst)?;
            tree::copy_metadata(&src, meta, &dst, strict)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_fifo() {
                FileType::Fifo
            } else if ft.is_char_device() {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            rustix::fs::mknodat(
                CWD,
                &dst,
                kind,
                Mode::from_raw_mode(meta.mode() & 0o7777),
                meta.rdev(),
            )
            .map_err(io::Error::from)
            .ctx("creating the special file", &dst)?;
            tree::copy_metadata(&src, meta, &dst, strict)?;
        }
        // Sockets cannot be put in a layer; Docker skips them too.
    }
    for (rel, meta) in list.iter().rev().filter(|(_, m)| m.is_dir()) {
        tree::set_times(&out.join(rel), meta)?;
    }
    tree::set_times(out, upper_meta)
}

/// Converts an unpacked OCI layer directory, in place, into an overlayfs lower layer:
/// `.wh.<name>` files become whiteouts (char 0/0 devices, `mknod` needs root or, unprivileged,
/// Linux 5.8+) and `.wh..wh..opq` files become `trusted.overlay.opaque=y` on their directory.
/// Directory times are preserved.
///
/// Whoever unpacks layers for [`crate::RunSpec::lowers`] must produce exactly this: the layer's
/// files with their owners, modes, xattrs and hard links, plus overlay-form whiteouts and opaque
/// directories (unpack as OCI and call this, or write them directly). A `.wh.<name>` next to a
/// `<name>` of the same layer keeps `<name>` (made opaque if it is a directory).
pub fn oci_whiteouts_to_overlay(layer_dir: &Path) -> Result<()> {
    oci_whiteouts_to_overlay_for(layer_dir, Mechanism::RootOverlay)
}

/// [`oci_whiteouts_to_overlay`] for a given mechanism: [`Mechanism::UserNamespace`] mounts use
/// `user.overlay.opaque` instead of `trusted.overlay.opaque`.
pub fn oci_whiteouts_to_overlay_for(layer_dir: &Path, mechanism: Mechanism) -> Result<()> {
    let ns = if mechanism == Mechanism::UserNamespace {
        XattrNs::User
    } else {
        XattrNs::Trusted
    };
    let root_meta =
        fs::symlink_metadata(layer_dir).ctx("reading the layer directory", layer_dir)?;
    let list = entries(layer_dir)?;
    let set_opaque = |dir: &Path| xattr::set(dir, ns.opaque(), b"y").ctx("marking opaque", dir);
    for (rel, meta) in &list {
        let Some(name) = rel.file_name().map(OsStrExt::as_bytes) else {
            continue;
        };
        let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
            continue;
        };
        let p = layer_dir.join(rel);
        let parent = p.parent().unwrap_or(layer_dir).to_path_buf();
        if meta.is_dir() {
            return Err(SandboxError::Layer {
                path: p,
                reason: "a directory named like an OCI whiteout".into(),
            });
        }
        fs::remove_file(&p).ctx("removing the OCI whiteout", &p)?;
        if name == OPAQUE_MARKER.as_bytes() {
            set_opaque(&parent)?;
            continue;
        }
        let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => set_opaque(&target)?,
            Ok(_) => {}
            Err(_) => tree::make_whiteout(&target)?,
        }
    }
    for (rel, meta) in list.iter().rev().filter(|(_, m)| m.is_dir()) {
        let p = layer_dir.join(rel);
        if p.exists() {
            tree::set_times(&p, meta)?;
        }
    }
    tree::set_times(layer_dir, &root_meta)
}
