//! Unpacking .debs into one layer directory the way dpkg would leave the filesystem after
//! `dpkg --unpack`: files (merged-/usr aware), and the dpkg database (`status`, `info/*`).

use crate::base::BaseSystem;
use crate::control::{Paragraph, paragraphs};
use crate::error::DebianError;
use crate::resolve::{Plan, PlannedPackage};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What [`unpack`] did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnpackReport {
    /// One entry per unpacked package, in plan order.
    pub packages: Vec<UnpackedPackage>,
    /// Packages with a `postinst` (run by a later `dpkg --configure -a`).
    pub postinst: Vec<String>,
    /// Packages with a `triggers` control file (ldconfig, ...).
    pub triggers: Vec<String>,
    /// Paths of the base image that belonged to the old version of an upgraded package and
    /// are not shipped by the new one (whiteout candidates); absolute, as in the rootfs.
    pub stale_paths: Vec<String>,
    /// Entries redirected through a directory symlink of the base: on merged /usr, `/bin`,
    /// `/sbin`, `/lib*` to `/usr/...`; likewise `/var/run` to `/run`.
    pub usr_rewrites: usize,
    /// Whether numeric owners could be applied (they can only when running as root).
    pub owners_preserved: bool,
}

/// One unpacked package.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnpackedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The name of its `var/lib/dpkg/info` files (`pkg` or `pkg:arch` for `Multi-Arch: same`).
    pub info_name: String,
    /// Entries of its data archive.
    pub entries: usize,
    /// Maintainer scripts it ships (`preinst`, `postinst`, `prerm`, `postrm`, `config`).
    pub maintainer_scripts: Vec<String>,
    /// Its conffiles.
    pub conffiles: Vec<String>,
}

const SCRIPTS: [&str; 5] = ["preinst", "postinst", "prerm", "postrm", "config"];

/// Unpack the plan's .debs (`debs[i]` holds `plan.packages[i]`) into `out`, an empty directory
/// that becomes one image layer.
pub fn unpack(
    base: &BaseSystem,
    plan: &Plan,
    debs: &[PathBuf],
    out: &Path,
) -> Result<UnpackReport, DebianError> {
    let bad_out = |message: String| DebianError::BadOutput {
        out: out.to_path_buf(),
        message,
    };
    if debs.len() != plan.packages.len() {
        return Err(bad_out(format!(
            "{} .deb files for {} planned packages",
            debs.len(),
            plan.packages.len()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| DebianError::io("create", out, e))?;
    let non_empty = std::fs::read_dir(out)
        .map_err(|e| DebianError::io("read", out, e))?
        .next()
        .is_some();
    if non_empty {
        return Err(bad_out(
            "the directory is not empty; a layer must start empty".into(),
        ));
    }
    let mut u = Unpacker {
        out: out.to_path_buf(),
        base_root: base.rootfs.clone(),
        parents: HashMap::new(),
        owners_ok: true,
        usr_rewrites: 0,
        filters: base.path_filters.clone(),
        filtered: 0,
    };
    let info_dir = out.join("var/lib/dpkg/info");
    for d in ["var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info"] {
        u.mkdir(&out.join(d), 0o755, 0, 0)?;
    }

    let mut report = UnpackReport::default();
    let mut new_stanzas: Vec<(String, String, String)> = Vec::new();
    let mut written_info: HashSet<String> = HashSet::new();
    for (p, deb) in plan.packages.iter().zip(debs) {
        let unpacked = u.unpack_deb(p, deb, &info_dir, &mut written_info)?;
        let stanza = status_stanza(&unpacked.control, p, &unpacked.conffile_md5s);
        new_stanzas.push((p.name.clone(), p.architecture.clone(), stanza));
        if unpacked
            .info
            .maintainer_scripts
            .iter()
            .any(|s| s == "postinst")
        {
            report.postinst.push(p.name.clone());
        }
        if unpacked.has_triggers {
            report.triggers.push(p.name.clone());
        }
        if p.installed_version.is_some() {
            report
                .stale_paths
                .extend(stale_paths(base, p, &unpacked.list, &written_info));
        }
        report.packages.push(unpacked.info);
    }

    let status = full_status(base, new_stanzas);
    u.write_file(&out.join("var/lib/dpkg/status"), status.as_bytes(), 0o644)?;

    report.stale_paths.sort();
    report.stale_paths.dedup();
    report.usr_rewrites = u.usr_rewrites;
    report.owners_preserved = u.owners_ok;
    Ok(report)
}

/// The layer replaces the whole status file: base stanzas, minus the versions being replaced,
/// plus the new ones, sorted like dpkg writes it.
fn full_status(base: &BaseSystem, new_stanzas: Vec<(String, String, String)>) -> String {
    let replaced: HashSet<(&str, &str)> = new_stanzas
        .iter()
        .map(|(n, a, _)| {
            (
                n.as_str(),
                if a == "all" {
                    base.architecture.as_str()
                } else {
                    a.as_str()
                },
            )
        })
        .collect();
    let mut all: Vec<(String, String, String)> = Vec::new();
    for para in paragraphs(&base.status_text, false) {
        let Some(name) = para.get("Package").map(str::trim) else {
            continue;
        };
        let arch = para.get("Architecture").map_or("", str::trim);
        let arch_key = if arch == "all" {
            base.architecture.as_str()
        } else {
            arch
        };
        if replaced.contains(&(name, arch_key)) {
            continue;
        }
        all.push((name.to_string(), arch.to_string(), para.raw.to_string()));
    }
    all.extend(new_stanzas);
    all.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut status = String::new();
    for (_, _, s) in &all {
        status.push_str(s.trim_end_matches('\n'));
        status.push_str("\n\n");
    }
    status
}

struct Unpacker {
    out: PathBuf,
    /// The base rootfs, whose directory symlinks entries are redirected through.
    base_root: PathBuf,
    /// Resolved parent directories (`usr/lib` for `lib` on merged /usr).
    parents: HashMap<Vec<u8>, (Vec<Vec<u8>>, bool)>,
    owners_ok: bool,
    usr_rewrites: usize,
    /// dpkg's path filters of the base (slim images drop docs, man pages, locales).
    filters: Vec<crate::filters::PathFilter>,
    /// Entries left out by the filters.
    filtered: usize,
}

struct Unpacked {
    info: UnpackedPackage,
    control: String,
    conffile_md5s: Vec<(String, String)>,
    list: Vec<String>,
    has_triggers: bool,
}

fn deb_err(deb: &Path, message: impl Into<String>) -> DebianError {
    DebianError::Deb {
        deb: deb.to_path_buf(),
        message: message.into(),
    }
}

// .deb member names are lowercase by definition (deb(5)).
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn decompressor<'r, R: Read + 'r>(
    name: &str,
    r: R,
    deb: &Path,
) -> Result<Box<dyn Read + 'r>, DebianError> {
    Ok(if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(r))
    } else if name.ends_with(".zst") {
        Box::new(zstd::Decoder::new(r).map_err(|e| deb_err(deb, format!("{name}: {e}")))?)
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if name.ends_with(".tar") {
        Box::new(r)
    } else {
        return Err(deb_err(
            deb,
            format!("unsupported member `{name}` (expected .tar, .tar.xz, .tar.zst or .tar.gz)"),
        ));
    })
}

/// Split a tar path into components, rejecting absolute paths and `..`.
fn components<'p>(raw: &'p [u8], deb: &Path, entry: &str) -> Result<Vec<&'p [u8]>, DebianError> {
    let unsafe_entry = |reason: &str| DebianError::UnsafeEntry {
        deb: deb.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    if raw.starts_with(b"/") {
        return Err(unsafe_entry("is an absolute path"));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(unsafe_entry("has a `..` component")),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Unpacker {
    /// Where an entry lands in the image: its parent directories are resolved through the
    /// base's directory symlinks, as dpkg follows them on a real system (merged /usr: `lib/x`
    /// becomes `usr/lib/x`; `var/run/x` becomes `run/x`). A real directory in the layer would
    /// otherwise hide the base's symlink. Returns the components and whether they changed.
    fn place(&mut self, comps: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
        let Some((last, parent)) = comps.split_last() else {
            return (Vec::new(), false);
        };
        let key = parent.join(&b'/');
        let (mut out, changed) = if let Some(hit) = self.parents.get(&key) {
            hit.clone()
        } else {
            let r = resolve_through_base(&self.base_root, parent);
            self.parents.insert(key, r.clone());
            r
        };
        out.push(last.to_vec());
        (out, changed)
    }

    fn base_has_symlink(&self, comps: &[Vec<u8>]) -> bool {
        let mut p = self.base_root.clone();
        for c in comps {
            p.push(OsStr::from_bytes(c));
        }
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
    }

    fn host_path<C: AsRef<[u8]>>(&self, comps: &[C]) -> PathBuf {
        let mut p = self.out.clone();
        for c in comps {
            p.push(OsStr::from_bytes(c.as_ref()));
        }
        p
    }

    fn chown(&mut self, path: &Path, uid: u64, gid: u64) {
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
            self.owners_ok = false;
            return;
        };
        if std::os::unix::fs::lchown(path, Some(uid), Some(gid)).is_err() {
            self.owners_ok = false;
        }
    }

    fn mkdir(&mut self, path: &Path, mode: u32, uid: u64, gid: u64) -> Result<(), DebianError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(DebianError::BadOutput {
                    out: self.out.clone(),
                    message: format!("{} exists and is not a directory", path.display()),
                });
            }
            Err(_) => std::fs::create_dir(path).map_err(|e| DebianError::io("create", path, e))?,
        }
        self.chown(path, uid, gid);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| DebianError::io("set permissions of", path, e))
    }

    fn write_file(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), DebianError> {
        let mut f = std::fs::File::create(path).map_err(|e| DebianError::io("create", path, e))?;
        f.write_all(bytes)
            .map_err(|e| DebianError::io("write", path, e))?;
        drop(f);
        self.chown(path, 0, 0);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| DebianError::io("set permissions of", path, e))
    }

    /// Make sure every parent of `comps` inside the layer is a real directory (never a symlink,
    /// which would let an entry write outside the layer), creating missing ones.
    fn ensure_parents<C: AsRef<[u8]>>(
        &mut self,
        comps: &[C],
        deb: &Path,
        entry: &str,
    ) -> Result<(), DebianError> {
        let mut p = self.out.clone();
        for c in &comps[..comps.len().saturating_sub(1)] {
            p.push(OsStr::from_bytes(c.as_ref()));
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(DebianError::UnsafeEntry {
                        deb: deb.to_path_buf(),
                        entry: entry.to_string(),
                        reason: format!(
                            "would be written through the symlink {} (unpacked earlier), which could point outside the layer",
                            p.strip_prefix(&self.out).unwrap_or(&p).display()
                        ),
                    });
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(deb_err(
                        deb,
                        format!(
                            "entry `{entry}` needs {} to be a directory, but it is a file",
                            p.display()
                        ),
                    ));
                }
                Err(_) => self.mkdir(&p, 0o755, 0, 0)?,
            }
        }
        Ok(())
    }

    fn remove_existing(path: &Path, deb: &Path, entry: &str) -> Result<(), DebianError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Err(deb_err(
                deb,
                format!(
                    "entry `{entry}` would replace the directory {}",
                    path.display()
                ),
            )),
            Ok(_) => std::fs::remove_file(path).map_err(|e| DebianError::io("replace", path, e)),
            Err(_) => Ok(()),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn unpack_deb(
        &mut self,
        p: &PlannedPackage,
        deb: &Path,
        info_dir: &Path,
        written_info: &mut HashSet<String>,
    ) -> Result<Unpacked, DebianError> {
        let file = std::fs::File::open(deb).map_err(|e| DebianError::io("open", deb, e))?;
        let mut ar = ar::Archive::new(std::io::BufReader::new(file));
        let mut control_members: Vec<(String, Vec<u8>)> = Vec::new();
        let mut saw_binary = false;
        let mut result: Option<Unpacked> = None;
        while let Some(member) = ar.next_entry() {
            let mut member = member.map_err(|e| deb_err(deb, format!("not an ar archive: {e}")))?;
            let name = String::from_utf8_lossy(member.header().identifier())
                .trim_end_matches('/')
                .trim()
                .to_string();
            if name == "debian-binary" {
                let mut v = String::new();
                member
                    .read_to_string(&mut v)
                    .map_err(|e| deb_err(deb, e.to_string()))?;
                if !v.starts_with("2.") {
                    return Err(deb_err(
                        deb,
                        format!("unsupported .deb format version `{}`", v.trim()),
                    ));
                }
                saw_binary = true;
            } else if name.starts_with("control.tar") {
                let reader = decompressor(&name, &mut member, deb)?;
                let mut tar = tar::Archive::new(reader);
                for e in tar
                    .entries()
                    .map_err(|e| deb_err(deb, format!("{name}: {e}")))?
                {
                    let mut e = e.map_err(|e| deb_err(deb, format!("{name}: {e}")))?;
                    if !e.header().entry_type().is_file() {
                        continue;
                    }
                    let path = e.path_bytes().into_owned();
                    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
                    let base = String::from_utf8_lossy(base).into_owned();
                    if base.is_empty()
                        || !base
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
                        || base.starts_with('.')
                    {
                        return Err(DebianError::UnsafeEntry {
                            deb: deb.to_path_buf(),
                            entry: String::from_utf8_lossy(&path).into_owned(),
                            reason: "is not a valid control member name".into(),
                        });
                    }
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes)
                        .map_err(|e| deb_err(deb, format!("{name}: {e}")))?;
                    control_members.push((base, bytes));
                }
            } else if name.starts_with("data.tar") {
                if !saw_binary {
                    return Err(deb_err(deb, "data.tar comes before debian-binary"));
                }
                let control = control_members
                    .iter()
                    .find(|(n, _)| n == "control")
                    .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
                    .ok_or_else(|| deb_err(deb, "no control file before data.tar"))?;
                check_control(&control, p, deb)?;
                let conffiles: Vec<String> = control_members
                    .iter()
                    .find(|(n, _)| n == "conffiles")
                    .map(|(_, b)| {
                        String::from_utf8_lossy(b)
                            .lines()
                            .filter_map(|l| l.split_whitespace().last())
                            .filter(|c| c.starts_with('/'))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let reader = decompressor(&name, &mut member, deb)?;
                let (list, entries) = self.extract_data(reader, deb, &name)?;
                result = Some(self.finish(
                    p,
                    deb,
                    info_dir,
                    control,
                    conffiles,
                    &control_members,
                    list,
                    entries,
                    written_info,
                )?);
                break;
            }
        }
        result.ok_or_else(|| deb_err(deb, "no data.tar member"))
    }

    /// Extract the data archive; returns the dpkg file list (original paths) and entry count.
    #[allow(clippy::too_many_lines)] // one match over the tar entry kinds
    fn extract_data(
        &mut self,
        reader: Box<dyn Read + '_>,
        deb: &Path,
        member: &str,
    ) -> Result<(Vec<String>, usize), DebianError> {
        let mut tar = tar::Archive::new(reader);
        let mut list = Vec::new();
        let mut count = 0;
        for e in tar
            .entries()
            .map_err(|e| deb_err(deb, format!("{member}: {e}")))?
        {
            let mut e = e.map_err(|e| deb_err(deb, format!("{member}: {e}")))?;
            count += 1;
            let raw = e.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let comps = components(&raw, deb, &shown)?;
            if comps.is_empty() {
                list.push("/.".to_string());
                continue;
            }
            let orig: Vec<u8> = comps.join(&b'/');
            let abs = format!("/{}", String::from_utf8_lossy(&orig));
            {
                let kind = e.header().entry_type();
                if crate::filters::skip(&self.filters, &abs, kind.is_dir() || kind.is_symlink()) {
                    // As dpkg: not installed and not in the package's file list.
                    self.filtered += 1;
                    continue;
                }
            }
            list.push(abs);
            let (dest_comps, redirected) = self.place(&comps);
            self.usr_rewrites += usize::from(redirected);
            self.ensure_parents(&dest_comps, deb, &shown)?;
            let dest = self.host_path(&dest_comps);
            let h = e.header();
            let mode = h
                .mode()
                .map_err(|err| deb_err(deb, format!("{shown}: {err}")))?
                & 0o7777;
            let uid = h.uid().unwrap_or(0);
            let gid = h.gid().unwrap_or(0);
            let mtime = h.mtime().unwrap_or(0);
            let kind = h.entry_type();
            if kind.is_dir() {
                if self.base_has_symlink(&dest_comps) {
                    // The base has a symlink here (to a directory): keep it, as dpkg does.
                    continue;
                }
                match std::fs::symlink_metadata(&dest) {
                    // A directory entry over a symlink (to a directory) keeps the symlink, as dpkg does.
                    Ok(m) if m.file_type().is_symlink() => {}
                    _ => self.mkdir(&dest, mode, uid, gid)?,
                }
            } else if kind.is_file() || kind == tar::EntryType::Continuous {
                Self::remove_existing(&dest, deb, &shown)?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(|err| DebianError::io("create", &dest, err))?;
                std::io::copy(&mut e, &mut f)
                    .map_err(|err| deb_err(deb, format!("{member}: {shown}: {err}")))?;
                let _ =
                    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime));
                drop(f);
                self.chown(&dest, uid, gid);
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                    .map_err(|err| DebianError::io("set permissions of", &dest, err))?;
            } else if kind.is_symlink() {
                let target = e
                    .link_name_bytes()
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or_default();
                check_symlink(&dest_comps, &target, deb, &shown)?;
                Self::remove_existing(&dest, deb, &shown)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &dest)
                    .map_err(|err| DebianError::io("create the symlink", &dest, err))?;
                self.chown(&dest, uid, gid);
            } else if kind.is_hard_link() {
                let target = e
                    .link_name_bytes()
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or_default();
                let tshown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = components(&target, deb, &format!("{shown} (hard link to {tshown})"))?;
                let tabs = format!("/{}", String::from_utf8_lossy(&tcomps.join(&b'/')));
                if crate::filters::skip(&self.filters, &tabs, false) {
                    // Its target was filtered out; dpkg leaves the link out as well.
                    list.pop();
                    self.filtered += 1;
                    continue;
                }
                let (tcomps, _) = self.place(&tcomps);
                self.ensure_parents(&tcomps, deb, &shown)?;
                let tpath = self.host_path(&tcomps);
                match std::fs::symlink_metadata(&tpath) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(DebianError::UnsafeEntry {
                            deb: deb.to_path_buf(),
                            entry: shown,
                            reason: format!(
                                "is a hard link to `{tshown}`, which is not a file unpacked before it"
                            ),
                        });
                    }
                }
                Self::remove_existing(&dest, deb, &shown)?;
                std::fs::hard_link(&tpath, &dest)
                    .map_err(|err| DebianError::io("create the hard link", &dest, err))?;
            } else {
                return Err(deb_err(
                    deb,
                    format!(
                        "entry `{shown}` has an unsupported type ({kind:?}); device nodes and fifos cannot be unpacked into a layer"
                    ),
                ));
            }
        }
        Ok((list, count))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        p: &PlannedPackage,
        deb: &Path,
        info_dir: &Path,
        control: String,
        conffiles: Vec<String>,
        members: &[(String, Vec<u8>)],
        list: Vec<String>,
        entries: usize,
        written_info: &mut HashSet<String>,
    ) -> Result<Unpacked, DebianError> {
        let info_name = info_name(p);
        let mut listing = list.join("\n");
        listing.push('\n');
        let list_file = format!("{info_name}.list");
        self.write_file(&info_dir.join(&list_file), listing.as_bytes(), 0o644)?;
        written_info.insert(list_file);
        let mut scripts = Vec::new();
        let mut has_triggers = false;
        for (name, bytes) in members {
            if name == "control" {
                continue;
            }
            let is_script = SCRIPTS.contains(&name.as_str());
            if is_script {
                scripts.push(name.clone());
            }
            has_triggers |= name == "triggers";
            let file = format!("{info_name}.{name}");
            self.write_file(
                &info_dir.join(&file),
                bytes,
                if is_script { 0o755 } else { 0o644 },
            )?;
            written_info.insert(file);
        }
        let mut conffile_md5s = Vec::new();
        for c in &conffiles {
            let comps = components(c.trim_start_matches('/').as_bytes(), deb, c)?;
            let (placed, _) = self.place(&comps);
            let dest = self.host_path(&placed);
            let md5 = match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_file() => {
                    let bytes =
                        std::fs::read(&dest).map_err(|e| DebianError::io("read", &dest, e))?;
                    crate::http::hex(&Md5::digest(&bytes))
                }
                _ => "newconffile".to_string(),
            };
            conffile_md5s.push((c.clone(), md5));
        }
        Ok(Unpacked {
            info: UnpackedPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: p.architecture.clone(),
                info_name,
                entries,
                maintainer_scripts: scripts,
                conffiles,
            },
            control,
            conffile_md5s,
            list,
            has_triggers,
        })
    }
}

fn info_name(p: &PlannedPackage) -> String {
    if p.multi_arch == "same" {
        format!("{}:{}", p.name, p.architecture)
    } else {
        p.name.clone()
    }
}

/// Resolve directory components through the symlinks of the base rootfs (absolute targets
/// from the image root, `..` clamped at it).
fn resolve_through_base(root: &Path, comps: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut resolved: Vec<Vec<u8>> = Vec::new();
    let mut pending: std::collections::VecDeque<Vec<u8>> =
        comps.iter().map(|c| c.to_vec()).collect();
    let mut hops = 0;
    let mut changed = false;
    while let Some(c) = pending.pop_front() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let mut p = root.to_path_buf();
        for r in &resolved {
            p.push(OsStr::from_bytes(r));
        }
        p.push(OsStr::from_bytes(&c));
        let link = std::fs::symlink_metadata(&p)
            .ok()
            .filter(|m| m.file_type().is_symlink())
            .and_then(|_| std::fs::read_link(&p).ok());
        match link {
            Some(target) if hops < 40 => {
                hops += 1;
                changed = true;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    resolved.clear();
                }
                for part in t.split(|&b| b == b'/').rev() {
                    pending.push_front(part.to_vec());
                }
            }
            _ => resolved.push(c),
        }
    }
    (resolved, changed)
}

/// A symlink must resolve inside the root: relative targets from the link's directory,
/// absolute ones from the image root; `..` may not climb above it.
fn check_symlink<C: AsRef<[u8]>>(
    link: &[C],
    target: &[u8],
    deb: &Path,
    entry: &str,
) -> Result<(), DebianError> {
    let reject = |why: String| DebianError::UnsafeEntry {
        deb: deb.to_path_buf(),
        entry: entry.to_string(),
        reason: why,
    };
    if target.is_empty() {
        return Err(reject("is a symlink with an empty target".into()));
    }
    let shown = String::from_utf8_lossy(target);
    let mut depth: Vec<&[u8]> = if target.starts_with(b"/") {
        Vec::new()
    } else {
        link[..link.len().saturating_sub(1)]
            .iter()
            .map(AsRef::as_ref)
            .collect()
    };
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if depth.pop().is_none() {
                    return Err(reject(format!(
                        "is a symlink to `{shown}`, which escapes the image root"
                    )));
                }
            }
            c => depth.push(c),
        }
    }
    Ok(())
}

fn check_control(control: &str, p: &PlannedPackage, deb: &Path) -> Result<(), DebianError> {
    let para = paragraphs(control, false)
        .next()
        .ok_or_else(|| deb_err(deb, "empty control file"))?;
    let field = |n: &str| para.get(n).map_or("", str::trim);
    if field("Package") != p.name
        || field("Version") != p.version
        || field("Architecture") != p.architecture
    {
        return Err(deb_err(
            deb,
            format!(
                "it holds {} {} ({}) but the plan expects {} {} ({})",
                field("Package"),
                field("Version"),
                field("Architecture"),
                p.name,
                p.version,
                p.architecture
            ),
        ));
    }
    Ok(())
}

/// dpkg's field order in the status file; other fields follow in their control-file order.
const FIELD_ORDER: [&str; 26] = [
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
];

/// The status stanza of a newly unpacked package: its control fields, `Status: install ok
/// unpacked` (so `dpkg --configure -a` runs its postinst later), `Config-Version` for upgrades,
/// and its `Conffiles` with their md5sums.
fn status_stanza(control: &str, p: &PlannedPackage, conffiles: &[(String, String)]) -> String {
    let Some(para) = paragraphs(control, false).next() else {
        return String::new();
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let value = |para: &Paragraph<'_>, name: &str| para.get(name).map(str::to_string);
    let mut extra: Vec<(String, String)> = Vec::new();
    let known: BTreeSet<String> = FIELD_ORDER.iter().map(|s| s.to_ascii_lowercase()).collect();
    for (k, v) in &para.fields {
        if !known.contains(&k.to_ascii_lowercase()) {
            extra.push(((*k).to_string(), (*v).to_string()));
        }
    }
    let mut by_name: HashMap<&str, String> = HashMap::new();
    by_name.insert("Status", "install ok unpacked".to_string());
    if let Some(old) = &p.installed_version {
        by_name.insert("Config-Version", old.clone());
    }
    if !conffiles.is_empty() {
        let block: Vec<String> = conffiles
            .iter()
            .map(|(path, md5)| format!(" {path} {md5}"))
            .collect();
        by_name.insert("Conffiles", format!("\n{}", block.join("\n")));
    }
    for name in FIELD_ORDER {
        let v = by_name.remove(name).or_else(|| value(&para, name));
        if let Some(v) = v {
            if name == "Description" {
                fields.push((name.to_string(), v));
                fields.append(&mut extra);
                continue;
            }
            fields.push((name.to_string(), v));
        }
    }
    fields.append(&mut extra);
    let mut s = String::new();
    for (k, v) in fields {
        s.push_str(&k);
        s.push(':');
        if !v.starts_with('\n') {
            s.push(' ');
        }
        s.push_str(&v);
        s.push('\n');
    }
    s
}

/// Paths of the old version of an upgraded package that the new one no longer ships.
fn stale_paths(
    base: &BaseSystem,
    p: &PlannedPackage,
    new_list: &[String],
    written_info: &HashSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let old = base.installed.iter().find(|r| r.name == p.name);
    let old_key = match old {
        Some(r) if r.multi_arch == "same" => format!("{}:{}", r.name, r.arch),
        Some(r) => r.name.clone(),
        None => return out,
    };
    let info = crate::rootfs::resolve_in(&base.rootfs, Path::new("/var/lib/dpkg/info"));
    let new: HashSet<&str> = new_list.iter().map(String::as_str).collect();
    if let Ok(text) = std::fs::read_to_string(info.join(format!("{old_key}.list"))) {
        for line in text.lines() {
            if line.is_empty() || new.contains(line) {
                continue;
            }
            let host = crate::rootfs::resolve_in(&base.rootfs, Path::new(line));
            if std::fs::symlink_metadata(&host).is_ok_and(|m| !m.is_dir()) {
                out.push(line.to_string());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(&info) {
        let prefix = format!("{old_key}.");
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(ext) = name.strip_prefix(&prefix)
                && !ext.contains('.')
                && !written_info.contains(&name)
            {
                out.push(format!("/var/lib/dpkg/info/{name}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_escape_checks() {
        let deb = Path::new("x.deb");
        let link: Vec<&[u8]> = vec![b"usr", b"lib", b"x"];
        assert!(check_symlink(&link, b"libx.so.1", deb, "e").is_ok());
        assert!(check_symlink(&link, b"../../bin/y", deb, "e").is_ok());
        assert!(check_symlink(&link, b"/etc/alternatives/x", deb, "e").is_ok());
        assert!(check_symlink(&link, b"../../../etc/passwd", deb, "e").is_err());
        assert!(check_symlink(&link, b"/../etc/passwd", deb, "e").is_err());
        assert!(components(b"./usr/../../x", deb, "e").is_err());
        assert!(components(b"/etc/x", deb, "e").is_err());
        assert_eq!(
            components(b"./usr//bin/", deb, "e").unwrap(),
            vec![&b"usr"[..], b"bin"]
        );
    }

    #[test]
    fn entries_follow_the_base_directory_symlinks() {
        let base = tempfile::tempdir().unwrap();
        let b = base.path();
        std::fs::create_dir_all(b.join("usr/lib")).unwrap();
        std::fs::create_dir_all(b.join("run")).unwrap();
        std::fs::create_dir_all(b.join("var")).unwrap();
        std::os::unix::fs::symlink("usr/lib", b.join("lib")).unwrap();
        std::os::unix::fs::symlink("/run", b.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../../..", b.join("usr/lib/up")).unwrap();
        let r = |p: &str| {
            let comps: Vec<&[u8]> = p.split('/').map(str::as_bytes).collect();
            let (v, changed) = resolve_through_base(b, &comps);
            (
                v.iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
                changed,
            )
        };
        assert_eq!(
            r("lib/x86_64-linux-gnu"),
            ("usr/lib/x86_64-linux-gnu".into(), true)
        );
        assert_eq!(r("var/run/dbus"), ("run/dbus".into(), true));
        assert_eq!(r("usr/share/doc"), ("usr/share/doc".into(), false));
        // A base symlink climbing out is clamped at the image root.
        assert_eq!(r("usr/lib/up/etc"), ("etc".into(), true));
    }

    #[test]
    fn status_stanza_orders_fields_like_dpkg() {
        let control = "Package: libx1\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: M <m@example.invalid>\nInstalled-Size: 10\nDepends: libc6 (>= 2.34)\nSection: libs\nPriority: optional\nMulti-Arch: same\nHomepage: https://example.invalid\nDescription: short\n long line\n";
        let p = PlannedPackage {
            name: "libx1".into(),
            version: "1.0-1".into(),
            architecture: "amd64".into(),
            filename: "pool/x.deb".into(),
            size: 1,
            sha256: "0".repeat(64),
            base_url: "http://repo.invalid".into(),
            multi_arch: "same".into(),
            installed_version: Some("0.9-1".into()),
            pulled_by: None,
        };
        let s = status_stanza(control, &p, &[("/etc/x.conf".into(), "abc".into())]);
        assert_eq!(
            s,
            "Package: libx1\nStatus: install ok unpacked\nPriority: optional\nSection: libs\nInstalled-Size: 10\nMaintainer: M <m@example.invalid>\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1.0-1\nConfig-Version: 0.9-1\nDepends: libc6 (>= 2.34)\nConffiles:\n /etc/x.conf abc\nDescription: short\n long line\nHomepage: https://example.invalid\n"
        );
        assert_eq!(info_name(&p), "libx1:amd64");
    }
}
