//! Detecting how (and whether) build steps can be sandboxed on this machine.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{Result, SandboxError};

/// How [`crate::run`] isolates a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// Running as root: util-linux `unshare` creates private mount, pid, ipc, uts (and net)
    /// namespaces, overlayfs is mounted inside them (`trusted.overlay.*` xattrs), and the
    /// command runs chrooted as the requested user with Docker's default capability set.
    /// Files keep their real owners, so `USER node` steps produce files owned by 1000.
    RootOverlay,
    /// Unprivileged: the same, inside a user namespace where only root exists (your uid maps
    /// to 0), with overlayfs mounted `userxattr` (Linux 5.11+, `user.overlay.*` xattrs).
    /// Steps must run as root (uid 0); files in the upper directory are owned by *your* uid
    /// and gid on disk, which a layer writer must record as 0:0.
    UserNamespace,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::RootOverlay => "root + overlayfs + namespaces (util-linux unshare)",
            Mechanism::UserNamespace => {
                "unprivileged user namespace + overlayfs (userxattr) (util-linux unshare)"
            }
        })
    }
}

/// The host programs the sandbox drives (absolute paths).
#[derive(Debug)]
pub(crate) struct Tools {
    pub unshare: PathBuf,
    pub mount: PathBuf,
    pub setpriv: PathBuf,
    pub env: PathBuf,
    pub sh: PathBuf,
    pub mkdir: PathBuf,
    pub cp: PathBuf,
    pub chown: PathBuf,
    /// Brings `lo` up in a private network namespace; without it `lo` stays down.
    pub ip: Option<PathBuf>,
}

/// The PATH used for the sandbox's own helpers, whatever the caller's environment is.
pub(crate) const HELPER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn find_program(name: &str) -> Option<PathBuf> {
    HELPER_PATH
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn find_tools() -> std::result::Result<Tools, String> {
    let mut missing = Vec::new();
    let mut need = |name: &str, package: &str| {
        find_program(name).unwrap_or_else(|| {
            missing.push(format!("`{name}` ({package})"));
            PathBuf::new()
        })
    };
    let tools = Tools {
        unshare: need("unshare", "util-linux"),
        mount: need("mount", "mount/util-linux"),
        setpriv: need("setpriv", "util-linux"),
        env: need("env", "coreutils"),
        sh: need("sh", "a POSIX shell"),
        mkdir: need("mkdir", "coreutils"),
        cp: need("cp", "coreutils"),
        chown: need("chown", "coreutils"),
        ip: find_program("ip"),
    };
    if missing.is_empty() {
        Ok(tools)
    } else {
        Err(format!(
            "missing host programs: {} (e.g. `apt-get install util-linux mount coreutils`)",
            missing.join(", ")
        ))
    }
}

/// Mounts a throwaway overlay inside fresh namespaces, exactly as a run does.
fn probe(tools: &Tools, mechanism: Mechanism) -> std::result::Result<(), String> {
    let scratch = tempfile::Builder::new()
        .prefix(".liftoff-sandbox-probe-")
        .tempdir()
        .map_err(|e| {
            format!(
                "cannot create a scratch directory in {}: {e}",
                std::env::temp_dir().display()
            )
        })?;
    let d = scratch.path();
    for sub in ["lower", "upper", "work", "merged"] {
        fs::create_dir(d.join(sub)).map_err(|e| format!("{}: {e}", d.join(sub).display()))?;
    }
    // The same options as a run (see run.rs).
    let extra = if mechanism == Mechanism::UserNamespace {
        ",index=off,metacopy=off,redirect_dir=nofollow,userxattr"
    } else {
        ",index=off,metacopy=off,redirect_dir=off"
    };
    let opts = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work{extra}",
        d.display()
    );
    let mut cmd = Command::new(&tools.unshare);
    if mechanism == Mechanism::UserNamespace {
        cmd.args(["--user", "--map-root-user"]);
    }
    let out = cmd
        .args([
            "--mount",
            "--pid",
            "--ipc",
            "--uts",
            "--net",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ])
        .arg(&tools.mount)
        .args(["-t", "overlay", "liftoff-probe", "-o", &opts])
        .arg(d.join("merged"))
        .env_clear()
        .env("PATH", HELPER_PATH)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", tools.unshare.display()))?;
    // Work dirs made by an unprivileged overlay are mode 000 to their owner.
    let _ = fs::set_permissions(d.join("work/work"), fs::Permissions::from_mode(0o700));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn detect() -> std::result::Result<(Mechanism, Tools), String> {
    if !cfg!(target_os = "linux") {
        return Err("this is not Linux: overlayfs and namespaces are Linux kernel features".into());
    }
    let tools = find_tools()?;
    let root = rustix::process::geteuid().is_root();
    let mut reasons = Vec::new();
    if root {
        match probe(&tools, Mechanism::RootOverlay) {
            Ok(()) => return Ok((Mechanism::RootOverlay, tools)),
            Err(e) => reasons.push(format!(
                "as root, namespaces + an overlay mount failed ({e}); a container needs \
                 CAP_SYS_ADMIN (e.g. `--privileged`)"
            )),
        }
    } else {
        reasons.push("not running as root".to_owned());
    }
    match probe(&tools, Mechanism::UserNamespace) {
        Ok(()) => return Ok((Mechanism::UserNamespace, tools)),
        Err(e) => reasons.push(format!(
            "an unprivileged user namespace with an overlay mount failed ({e}); it needs \
             user namespaces enabled and Linux 5.11+"
        )),
    }
    Err(reasons.join("; "))
}

fn detected() -> &'static std::result::Result<(Mechanism, Tools), String> {
    static DETECTED: OnceLock<std::result::Result<(Mechanism, Tools), String>> = OnceLock::new();
    DETECTED.get_or_init(detect)
}

/// Finds how build steps can be sandboxed here: [`Mechanism::RootOverlay`] when running as root
/// (preferred), else [`Mechanism::UserNamespace`]. Both are probed for real (an overlay is mounted
/// in fresh namespaces) once per process; the error names what is missing and the fixes.
pub fn available() -> Result<Mechanism> {
    detected()
        .as_ref()
        .map(|(m, _)| *m)
        .map_err(|missing| SandboxError::Unavailable {
            missing: missing.clone(),
        })
}

pub(crate) fn tools() -> Result<&'static Tools> {
    match detected() {
        Ok((_, tools)) => Ok(tools),
        Err(missing) => Err(SandboxError::Unavailable {
            missing: missing.clone(),
        }),
    }
}
