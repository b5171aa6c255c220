//! Running one build step (a Dockerfile `RUN`) on an overlay of image layers.
//!
//! Everything is mounted *inside* the sandbox's private mount namespace: the overlay, `/proc`,
//! `/dev`, the `/tmp` tmpfs, the binds. The host never sees a mount, and the kernel takes them
//! all down when the last process of the sandbox exits, so no failure path can leak one.
//!
//! The process chain (all helpers are host programs called by absolute path):
//! `unshare --mount --pid --ipc --uts [--net] --fork` → `sh -c <setup script>` (pid 1 of the
//! sandbox; mounts) → `exec env -i <spec env> setpriv <caps, gid, groups>` →
//! `unshare --root <merged> --wd <workdir> --setuid <uid>` → the command, still pid 1.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, SandboxError};
use crate::mechanism::{self, HELPER_PATH, Mechanism, Tools};
use crate::tree::{self, Create, Layers, Record, Resolved, Want, XattrNs};
use crate::user;

/// Lines kept from the end of stdout and of stderr.
pub const TAIL_LINES: usize = 40;
/// Longer lines are cut (progress bars, minified output).
const TAIL_LINE_BYTES: usize = 2000;

/// Docker's default capability set: what a `RUN` step as root may do.
const CAPABILITIES: &str = "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,\
+setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap";

/// A host path mounted into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// File or directory on the host.
    pub host: PathBuf,
    /// Absolute path in the image. A missing mountpoint is created for the run and removed
    /// afterwards, so a bind never shows up in the layer.
    pub target: String,
    pub read_only: bool,
}

/// One build step.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Read-only layer directories in overlay form (whiteouts are char 0/0 devices, opaque
    /// directories carry `trusted.overlay.opaque=y`; see [`crate::oci_whiteouts_to_overlay`]),
    /// top-most first like overlayfs' `lowerdir`.
    pub lowers: Vec<PathBuf>,
    /// An empty directory (on a filesystem with xattrs, not overlayfs) that receives the step's
    /// changes; turn it into a layer with [`crate::upper_to_layer`]. Scratch space is created next
    /// to it, so its parent must be writable.
    pub upper: PathBuf,
    /// Exec form; a shell form is the caller's `["/bin/sh", "-c", …]`. A bare program name is
    /// looked up in the image along `PATH` from `env` (glibc's `/bin:/usr/bin` when unset).
    pub command: Vec<String>,
    /// The command's whole environment (nothing is inherited or added, not even `HOME`).
    pub env: Vec<(String, String)>,
    /// `name`, `uid`, `name:group` or `uid:gid`, resolved against the image's `/etc/passwd` and
    /// `/etc/group`; `None` is root.
    pub user: Option<String>,
    /// Absolute working directory in the image; created (owned by `user`) if missing, and that
    /// directory stays in the layer like Docker's `WORKDIR`. Empty means `/`.
    pub workdir: String,
    /// Share the host network (and mount the host's resolv.conf over `/etc/resolv.conf` for the
    /// run only); `false` gives a private network namespace with only `lo`.
    pub network: bool,
    pub binds: Vec<Bind>,
    /// Wall-clock limit; on expiry every process of the step is killed.
    pub timeout: Duration,
}

/// How a step ended. A non-zero `status` is not an error: the caller decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// The exit code, or 128 + the signal number when killed by a signal. 127/126: the command
    /// was not found / could not be executed.
    pub status: i32,
    /// The last [`TAIL_LINES`] lines of stdout.
    pub stdout_tail: String,
    /// The last [`TAIL_LINES`] lines of stderr.
    pub stderr_tail: String,
}

/// Runs a step with the mechanism [`crate::available`] picks.
pub fn run(spec: &RunSpec) -> Result<RunOutput> {
    run_with(spec, mechanism::available()?)
}

/// Runs a step with a given mechanism (e.g. [`Mechanism::UserNamespace`] even as root).
pub fn run_with(spec: &RunSpec, mechanism: Mechanism) -> Result<RunOutput> {
    let tools = mechanism::tools()?;
    let checked = validate(spec)?;
    let scratch = Scratch::new(&checked.upper)?;
    let mut undo = Undo {
        record: Record::default(),
        upper: &checked.upper,
        done: false,
    };
    let result = prepare_and_run(spec, &checked, mechanism, tools, &scratch, &mut undo.record);
    // The namespace is gone here (its last process was waited for), so the overlay is no longer
    // mounted anywhere and the upper directory can be edited offline.
    undo.done = true;
    let undone = undo.record.undo(&checked.upper);
    let closed = scratch.close();
    let out = result?;
    undone?;
    closed?;
    Ok(out)
}

/// Takes the run's mountpoints out of the upper directory even when unwinding from a panic.
struct Undo<'a> {
    record: Record,
    upper: &'a Path,
    done: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.record.undo(self.upper);
        }
    }
}

/// The spec, checked, with canonical host paths.
struct Checked {
    lowers: Vec<PathBuf>,
    upper: PathBuf,
    binds: Vec<(PathBuf, Vec<OsString>, bool, bool)>, // host, target, read_only, is_dir
}

fn overlay_path(what: &str, p: &Path) -> Result<PathBuf> {
    let c = p.canonicalize().ctx("resolving the layer directory", p)?;
    if !c.is_dir() {
        return Err(SandboxError::InvalidSpec(format!(
            "{what} {} is not a directory",
            p.display()
        )));
    }
    match c.to_str() {
        Some(s) if !s.contains([',', ':', '\\', '\n', '\'']) => Ok(c),
        _ => Err(SandboxError::InvalidSpec(format!(
            "{what} {} cannot be passed to overlayfs (non-UTF-8, or contains , : \\ ' or a newline); \
             use a plainer directory name",
            c.display()
        ))),
    }
}

fn validate(spec: &RunSpec) -> Result<Checked> {
    if spec.command.is_empty() {
        return Err(SandboxError::InvalidSpec("the command is empty".into()));
    }
    if spec.timeout.is_zero() {
        return Err(SandboxError::InvalidSpec("the timeout is zero".into()));
    }
    for (k, _) in &spec.env {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(SandboxError::InvalidSpec(format!(
                "environment variable name {k:?} is empty or contains '='"
            )));
        }
    }
    if !spec.workdir.is_empty() && !spec.workdir.starts_with('/') {
        return Err(SandboxError::InvalidSpec(format!(
            "workdir {:?} must be an absolute path",
            spec.workdir
        )));
    }
    let lowers = spec
        .lowers
        .iter()
        .map(|l| overlay_path("lower layer", l))
        .collect::<Result<Vec<_>>>()?;
    let upper = overlay_path("upper directory", &spec.upper)?;
    if upper.parent().is_none() {
        return Err(SandboxError::InvalidSpec(
            "the upper directory cannot be /".into(),
        ));
    }

    let mut binds = Vec::new();
    let mut targets: Vec<Vec<OsString>> = Vec::new();
    if spec.network {
        targets.push(tree::normalize("/etc/resolv.conf"));
    }
    for b in &spec.binds {
        let host = b.host.canonicalize().map_err(|e| {
            SandboxError::InvalidSpec(format!("bind source {}: {e}", b.host.display()))
        })?;
        if host.to_str().is_none_or(|s| s.contains('\n')) {
            return Err(SandboxError::InvalidSpec(format!(
                "bind source {} must be UTF-8 without newlines",
                host.display()
            )));
        }
        if !b.target.starts_with('/') {
            return Err(SandboxError::InvalidSpec(format!(
                "bind target {:?} must be an absolute path",
                b.target
            )));
        }
        let target = tree::normalize(&b.target);
        if target.is_empty() || ["proc", "sys", "dev"].iter().any(|s| target[0] == *s) {
            return Err(SandboxError::InvalidSpec(format!(
                "bind target {:?} is /, or inside /proc, /sys or /dev, which the sandbox provides",
                b.target
            )));
        }
        if let Some(other) = targets
            .iter()
            .find(|t| t.starts_with(&target) || target.starts_with(t))
        {
            return Err(SandboxError::InvalidSpec(format!(
                "bind target {:?} overlaps {} (another bind, or /etc/resolv.conf with network); \
                 nested binds are not supported",
                b.target,
                tree::in_image(other)?
            )));
        }
        targets.push(target.clone());
        let is_dir = host.is_dir();
        binds.push((host, target, b.read_only, is_dir));
    }
    Ok(Checked {
        lowers,
        upper,
        binds,
    })
}

/// The run's scratch directory next to the upper (the overlay work dir must be on the same
/// filesystem): `work/`, `merged/`, `state/`, and an empty lower when there is none.
struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    fn new(upper: &Path) -> Result<Scratch> {
        let parent = upper.parent().unwrap_or(Path::new("/"));
        let dir = tempfile::Builder::new()
            .prefix(".liftoff-sandbox-")
            .tempdir_in(parent)
            .ctx("creating the sandbox scratch directory in", parent)?;
        for sub in ["work", "merged", "state", "empty"] {
            fs::create_dir(dir.path().join(sub)).ctx("creating", dir.path().join(sub))?;
        }
        Ok(Scratch { dir: Some(dir) })
    }

    fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), tempfile::TempDir::path)
    }

    fn close(mut self) -> Result<()> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let path = dir.path().to_path_buf();
        // Overlayfs leaves work/work (and work/index) mode 000; fine for root, not for an
        // unprivileged owner.
        for sub in ["work/work", "work/index"] {
            let _ = fs::set_permissions(path.join(sub), fs::Permissions::from_mode(0o700));
        }
        dir.close().map_err(|e| SandboxError::Cleanup {
            path,
            detail: e.to_string(),
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            for sub in ["work/work", "work/index"] {
                let _ =
                    fs::set_permissions(dir.path().join(sub), fs::Permissions::from_mode(0o700));
            }
        }
    }
}

/// Where a bind (or resolv.conf) goes: at a resolved image path, or below the /tmp tmpfs (made
/// at run time).
enum Target {
    Image(Vec<OsString>),
    Tmp(Vec<OsString>),
}

/// Single-quotes a string for `sh`.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn qp(p: &Path) -> String {
    q(&p.to_string_lossy())
}

/// `"$M"/a/b` for in-image components (already symlink-free).
fn at(comps: &[OsString]) -> Result<String> {
    Ok(format!("\"$M\"{}", q(&tree::in_image(comps)?)))
}

/// A mountpoint below the /tmp tmpfs, created at run time.
fn below_tmp(tmp: &[OsString], rest: &[OsString]) -> Vec<OsString> {
    tmp.iter().chain(rest).cloned().collect()
}

#[allow(clippy::too_many_lines)] // one linear script, easier to audit in one piece
fn prepare_and_run(
    spec: &RunSpec,
    checked: &Checked,
    mechanism: Mechanism,
    tools: &Tools,
    scratch: &Scratch,
    record: &mut Record,
) -> Result<RunOutput> {
    let rootless = mechanism == Mechanism::UserNamespace;
    let ns = if rootless {
        XattrNs::User
    } else {
        XattrNs::Trusted
    };
    let mut dirs = vec![checked.upper.clone()];
    dirs.extend(checked.lowers.iter().cloned());
    let layers = Layers { dirs };

    // The user, from the image's own files.
    let read = |path: &str| -> Result<String> {
        match layers.file(path)? {
            Some(p) => fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .ctx("reading the image's", p),
            None => Ok(String::new()),
        }
    };
    let exec_user = user::resolve(
        spec.user.as_deref(),
        &read("/etc/passwd")?,
        &read("/etc/group")?,
    )?;
    if rootless && (exec_user.uid != 0 || exec_user.gid != 0) {
        return Err(SandboxError::UserNeedsRoot {
            user: spec.user.clone().unwrap_or_default(),
            uid: exec_user.uid,
            gid: exec_user.gid,
        });
    }

    // Mountpoints the sandbox needs; created only when missing, and removed after the run.
    let mut mountpoint = |path: &str, want: Want, stop: Option<&[OsString]>| -> Result<Resolved> {
        let mut create = Create {
            want,
            record: Some(&mut *record),
            ns,
            strict_owner: !rootless,
        };
        layers.resolve(path, Some(&mut create), stop)
    };
    let dir = |mode| Want::Dir {
        mode,
        uid: 0,
        gid: 0,
    };
    let fixed = |r: Resolved, what: &str| -> Result<Vec<OsString>> {
        match r {
            Resolved::At(c) if !c.is_empty() => Ok(c),
            _ => Err(SandboxError::InvalidSpec(format!(
                "the image's {what} resolves to / or into /tmp"
            ))),
        }
    };
    let proc_at = fixed(mountpoint("/proc", dir(0o555), None)?, "/proc")?;
    let dev_at = fixed(mountpoint("/dev", dir(0o755), None)?, "/dev")?;
    let tmp_at = fixed(mountpoint("/tmp", dir(0o1777), None)?, "/tmp")?;
    let sys_at = match layers.resolve("/sys", None, None)? {
        Resolved::At(c) if !c.is_empty() && layers.is_dir(&PathBuf::from_iter(&c))? => Some(c),
        _ => None,
    };
    let special = [&proc_at, &dev_at, &tmp_at];
    let check_special = |c: &[OsString], what: &str| -> Result<()> {
        if c.is_empty()
            || special.iter().any(|s| c.starts_with(s))
            || sys_at.as_ref().is_some_and(|s| c.starts_with(s))
        {
            return Err(SandboxError::InvalidSpec(format!(
                "{what} resolves to {} in the image, which the sandbox mounts itself",
                tree::in_image(c)?
            )));
        }
        Ok(())
    };

    // Binds (and resolv.conf): resolved in the image; below /tmp they are made in the tmpfs.
    let mut bind_mounts: Vec<(String, Target, bool, bool)> = Vec::new(); // source, target, ro, dir
    if spec.network {
        let host_resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        let copy = scratch.path().join("state/resolv.conf");
        fs::write(&copy, host_resolv).ctx("writing", &copy)?;
        let target = match mountpoint("/etc/resolv.conf", Want::File, Some(&tmp_at))? {
            Resolved::At(c) => {
                check_special(&c, "/etc/resolv.conf")?;
                Target::Image(c)
            }
            Resolved::Below(rest) => Target::Tmp(below_tmp(&tmp_at, &rest)),
            Resolved::Missing => unreachable!("created"),
        };
        bind_mounts.push((copy.to_string_lossy().into_owned(), target, false, false));
    }
    for (host, target, ro, is_dir) in &checked.binds {
        let want = if *is_dir { dir(0o755) } else { Want::File };
        let shown = tree::in_image(target)?;
        let target = match mountpoint(&shown, want, Some(&tmp_at))? {
            Resolved::At(c) => {
                check_special(&c, &format!("bind target {shown}"))?;
                Target::Image(c)
            }
            Resolved::Below(rest) => Target::Tmp(below_tmp(&tmp_at, &rest)),
            Resolved::Missing => unreachable!("created"),
        };
        bind_mounts.push((host.to_string_lossy().into_owned(), target, *ro, *is_dir));
    }

    // WORKDIR: created for good (not recorded), owned by the user.
    let workdir = if spec.workdir.is_empty() {
        "/"
    } else {
        spec.workdir.as_str()
    };
    let mut create_wd = Create {
        want: Want::Dir {
            mode: 0o755,
            uid: exec_user.uid,
            gid: exec_user.gid,
        },
        record: None,
        ns,
        strict_owner: !rootless,
    };
    let workdir_in_tmp = match layers.resolve(workdir, Some(&mut create_wd), Some(&tmp_at))? {
        Resolved::Below(rest) => Some(below_tmp(&tmp_at, &rest)),
        Resolved::At(_) | Resolved::Missing => None,
    };

    // The setup script, run as pid 1 of the new namespaces.
    let state = scratch.path().join("state");
    let merged = scratch.path().join("merged");
    let lowerdir = if checked.lowers.is_empty() {
        scratch.path().join("empty").to_string_lossy().into_owned()
    } else {
        checked
            .lowers
            .iter()
            .map(|l| l.to_string_lossy())
            .collect::<Vec<_>>()
            .join(":")
    };
    let mount = qp(&tools.mount);
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "S={}; M={}", qp(&state), qp(&merged)).ok();
    writeln!(
        w,
        "fail() {{ printf '%s\\n' \"$1\" > \"$S/setup-error\"; exit 125; }}"
    )
    .ok();
    writeln!(w, "L=\"$S/setup.log\"").ok();
    writeln!(
        w,
        "{mount} -t overlay liftoff -o {} \"$M\" 2>>\"$L\" || fail 'mounting the overlay'",
        q(&format!(
            "lowerdir={lowerdir},upperdir={},workdir={},index=off,metacopy=off,{}",
            checked.upper.display(),
            scratch.path().join("work").display(),
            // Renamed directories must be copied, not recorded as redirects, or the upper would
            // not be a self-contained diff; `userxattr` only accepts `nofollow` for that.
            if rootless {
                "redirect_dir=nofollow,userxattr"
            } else {
                "redirect_dir=off"
            }
        ))
    )
    .ok();
    writeln!(
        w,
        "{mount} -t proc -o nosuid,nodev,noexec proc {} 2>>\"$L\" || fail 'mounting /proc'",
        at(&proc_at)?
    )
    .ok();
    if let Some(sys) = &sys_at {
        // Best effort, like Docker's read-only /sys (not possible in every namespace setup).
        writeln!(
            w,
            "{mount} -t sysfs -o ro,nosuid,nodev,noexec sysfs {} 2>/dev/null",
            at(sys)?
        )
        .ok();
    }
    let dev = at(&dev_at)?;
    writeln!(
        w,
        "{mount} -t tmpfs -o nosuid,mode=0755,size=65536k liftoff-dev {dev} 2>>\"$L\" || fail 'mounting /dev'"
    )
    .ok();
    // One `cp -a` of a template made here is much cheaper than a mknod/ln process per node.
    let template = scratch.path().join("dev");
    make_dev_template(&template, rootless)?;
    writeln!(
        w,
        "{} -a {}/. {dev}/ 2>>\"$L\" || fail 'populating /dev'",
        qp(&tools.cp),
        qp(&template)
    )
    .ok();
    if rootless {
        // No mknod in a user namespace: bind the host's nodes onto the template's empty files.
        for (name, ..) in DEV_NODES {
            writeln!(
                w,
                "{mount} --bind /dev/{name} {dev}/{name} 2>>\"$L\" || fail 'binding /dev/{name}'"
            )
            .ok();
        }
    }
    writeln!(
        w,
        "{mount} -t tmpfs -o nosuid,nodev,mode=1777,size=65536k shm {dev}/shm 2>>\"$L\" || fail 'mounting /dev/shm'"
    )
    .ok();
    // /dev/pts is optional (builds rarely need a pty).
    writeln!(
        w,
        "{mount} -t devpts -o newinstance,ptmxmode=0666,mode=0620{} devpts {dev}/pts 2>/dev/null",
        if rootless { "" } else { ",gid=5" }
    )
    .ok();
    writeln!(
        w,
        "{mount} -t tmpfs -o nosuid,nodev,mode=1777 liftoff-tmp {} 2>>\"$L\" || fail 'mounting the /tmp tmpfs'",
        at(&tmp_at)?
    )
    .ok();
    let mkdir = qp(&tools.mkdir);
    for (source, target, ro, is_dir) in &bind_mounts {
        let comps = match target {
            Target::Image(c) | Target::Tmp(c) => c,
        };
        let t = at(comps)?;
        let shown = tree::in_image(comps)?;
        if matches!(target, Target::Tmp(_)) {
            // A fresh tmpfs: no symlinks to worry about.
            let fail = q(&format!(
                "creating the mountpoint {shown} in the /tmp tmpfs"
            ));
            if *is_dir {
                writeln!(w, "{mkdir} -p {t} 2>>\"$L\" || fail {fail}").ok();
            } else {
                let parent = at(&comps[..comps.len() - 1])?;
                writeln!(w, "{mkdir} -p {parent} 2>>\"$L\" && : > {t} || fail {fail}").ok();
            }
        }
        let fail = q(&format!("bind-mounting {source} at {shown}"));
        writeln!(
            w,
            "{mount} --bind {} {t} 2>>\"$L\" || fail {fail}",
            q(source)
        )
        .ok();
        if *ro {
            // In a user namespace the source mount's nosuid/nodev/noexec are locked and must be
            // repeated; try the plain form first.
            writeln!(
                w,
                "{{ {mount} -o remount,bind,ro {t} || {mount} -o remount,bind,ro,nosuid,nodev {t} \
                 || {mount} -o remount,bind,ro,nosuid,nodev,noexec {t}; }} 2>>\"$L\" || fail {fail}"
            )
            .ok();
        }
    }
    if let Some(c) = &workdir_in_tmp {
        let t = at(c)?;
        writeln!(
            w,
            "{mkdir} -p {t} && {} {}:{} {t} 2>>\"$L\" || fail 'creating the workdir in /tmp'",
            qp(&tools.chown),
            exec_user.uid,
            exec_user.gid
        )
        .ok();
    }
    if !spec.network
        && let Some(ip) = &tools.ip
    {
        writeln!(w, "{} link set lo up 2>/dev/null", qp(ip)).ok();
    }
    writeln!(w, "printf liftoff > /proc/sys/kernel/hostname 2>/dev/null").ok();
    write!(w, "exec {} -i --", qp(&tools.env)).ok();
    for (k, v) in &spec.env {
        write!(w, " {}", q(&format!("{k}={v}"))).ok();
    }
    write!(w, " {} --bounding-set={CAPABILITIES}", qp(&tools.setpriv)).ok();
    if !rootless {
        write!(w, " --regid={}", exec_user.gid).ok();
        if exec_user.groups.is_empty() {
            write!(w, " --clear-groups").ok();
        } else {
            let groups: Vec<String> = exec_user.groups.iter().map(u32::to_string).collect();
            write!(w, " --groups={}", groups.join(",")).ok();
        }
    }
    write!(
        w,
        " -- {} --root=\"$M\" --wd={}",
        qp(&tools.unshare),
        q(workdir)
    )
    .ok();
    if exec_user.uid != 0 {
        write!(w, " --setuid={}", exec_user.uid).ok();
    }
    write!(w, " --").ok();
    for a in &spec.command {
        write!(w, " {}", q(a)).ok();
    }
    writeln!(w).ok();

    let mut cmd = Command::new(&tools.unshare);
    if rootless {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--mount", "--pid", "--ipc", "--uts"]);
    if !spec.network {
        cmd.arg("--net");
    }
    cmd.args(["--fork", "--kill-child", "--propagation", "private", "--"])
        .arg(&tools.sh)
        .arg("-c")
        .arg(&s)
        .env_clear()
        .env("PATH", HELPER_PATH)
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, stdout_tail, stderr_tail, timed_out) = supervise(cmd, spec.timeout, tools)?;

    if let Ok(step) = fs::read_to_string(state.join("setup-error")) {
        let log = fs::read_to_string(state.join("setup.log")).unwrap_or_default();
        let detail = if log.trim().is_empty() {
            stderr_tail
        } else {
            log.trim().to_owned()
        };
        return Err(SandboxError::Setup {
            step: step.trim().to_owned(),
            detail,
        });
    }
    if timed_out {
        return Err(SandboxError::Timeout {
            command: shown_command(&spec.command),
            timeout: spec.timeout,
            stdout_tail,
            stderr_tail,
        });
    }
    Ok(RunOutput {
        status: exit_code(status),
        stdout_tail,
        stderr_tail,
    })
}

/// The device nodes of the sandbox's /dev: name, major, minor.
const DEV_NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A minimal /dev to copy into the sandbox's /dev tmpfs: the nodes (empty files to bind the
/// host's nodes onto when unprivileged), `shm/`, `pts/` and the usual symlinks.
fn make_dev_template(dir: &Path, rootless: bool) -> Result<()> {
    fs::create_dir(dir).ctx("creating", dir)?;
    for (name, major, minor) in DEV_NODES {
        let p = dir.join(name);
        if rootless {
            fs::File::create(&p).ctx("creating", &p)?;
        } else {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &p,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                rustix::fs::makedev(major, minor),
            )
            .map_err(io::Error::from)
            .ctx("creating the device node", &p)?;
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666))
            .ctx("setting the mode of", &p)?;
    }
    for sub in ["shm", "pts"] {
        fs::create_dir(dir.join(sub)).ctx("creating", dir.join(sub))?;
    }
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dir.join(link)).ctx("creating", dir.join(link))?;
    }
    Ok(())
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn shown_command(command: &[String]) -> String {
    let mut s = command.join(" ");
    if s.chars().count() > 200 {
        s = s.chars().take(200).collect::<String>() + "…";
    }
    s
}

/// Collects the last lines of a stream.
fn tail_reader(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut lines: VecDeque<Vec<u8>> = VecDeque::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        let push = |line: &mut Vec<u8>, lines: &mut VecDeque<Vec<u8>>| {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            line.truncate(TAIL_LINE_BYTES);
            lines.push_back(std::mem::take(line));
            if lines.len() > TAIL_LINES {
                lines.pop_front();
            }
        };
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            for &b in &buf[..n] {
                if b == b'\n' {
                    push(&mut partial, &mut lines);
                } else if partial.len() <= TAIL_LINE_BYTES {
                    partial.push(b);
                }
            }
        }
        if !partial.is_empty() {
            push(&mut partial, &mut lines);
        }
        let joined: Vec<u8> = lines.into_iter().collect::<Vec<_>>().join(&b'\n');
        String::from_utf8_lossy(&joined).into_owned()
    })
}

/// Kills the sandbox when dropped before it was reaped (timeouts, panics).
struct Supervised {
    child: Child,
    reaped: bool,
}

impl Supervised {
    /// SIGKILL to pid 1 of the sandbox's pid namespace (the forked child of `unshare`) makes the
    /// kernel kill every process in it, however deep or detached; then `unshare` itself.
    fn kill_tree(&mut self) {
        let pid = self.child.id();
        for child in children_of(pid) {
            if let Some(p) = rustix::process::Pid::from_raw(child) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = self.child.kill();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_tree();
            let _ = self.child.wait();
        }
    }
}

fn children_of(pid: u32) -> Vec<i32> {
    if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    // Kernels without CONFIG_PROC_CHILDREN: scan /proc for the parent pid.
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(entry.path().join("stat"))
            && let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a)
            && after
                .split_whitespace()
                .nth(1)
                .and_then(|pp| pp.parse::<u32>().ok())
                == Some(pid)
        {
            out.push(p);
        }
    }
    out
}

/// Starts the sandbox, waits up to `timeout`, kills the whole tree on expiry.
fn supervise(
    mut cmd: Command,
    timeout: Duration,
    tools: &Tools,
) -> Result<(ExitStatus, String, String, bool)> {
    let mut child = cmd.spawn().map_err(|e| SandboxError::Tool {
        tool: tools.unshare.display().to_string(),
        detail: format!("cannot start it: {e}"),
    })?;
    let stdout = child.stdout.take().map(tail_reader);
    let stderr = child.stderr.take().map(tail_reader);
    let mut sup = Supervised {
        child,
        reaped: false,
    };
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = sup.child.try_wait().map_err(|e| SandboxError::Tool {
            tool: tools.unshare.display().to_string(),
            detail: format!("waiting for it: {e}"),
        })? {
            break status;
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            timed_out = true;
            sup.kill_tree();
            break sup.child.wait().map_err(|e| SandboxError::Tool {
                tool: tools.unshare.display().to_string(),
                detail: format!("waiting for it after killing it: {e}"),
            })?;
        }
        std::thread::sleep(nap.min(timeout.saturating_sub(elapsed)));
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    sup.reaped = true;
    // Every writer was in the sandbox, which is gone: the pipes are at EOF.
    let stdout_tail = stdout
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr_tail = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    Ok((status, stdout_tail, stderr_tail, timed_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(q("a'b"), r"'a'\''b'");
        assert_eq!(q(""), "''");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut text = String::new();
        for i in 1..=100 {
            writeln!(text, "line {i}").unwrap();
        }
        let tail = tail_reader(io::Cursor::new(text.into_bytes()))
            .join()
            .unwrap();
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 61");
        assert_eq!(*lines.last().unwrap(), "line 100");
        let tail = tail_reader(io::Cursor::new(b"no newline".to_vec()))
            .join()
            .unwrap();
        assert_eq!(tail, "no newline");
    }
}
