use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while preparing, running or converting a sandboxed step.
///
/// A command that runs and exits non-zero is *not* an error: [`crate::run`] returns its
/// status in [`crate::RunOutput`] and the caller decides.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No way to sandbox a build step on this machine.
    #[error(
        "cannot run build steps on this machine: {missing}\n\
         fixes: run liftoff as root (e.g. with sudo, or as root in CI); or enable unprivileged user \
         namespaces (`sysctl -w kernel.unprivileged_userns_clone=1` on Debian/Ubuntu, \
         `sysctl -w user.max_user_namespaces=15000` elsewhere) and make sure util-linux `unshare`, \
         `mount` and `setpriv` are installed; on macOS or Windows run liftoff inside a Linux VM or a \
         privileged Linux container"
    )]
    Unavailable { missing: String },

    /// The [`crate::RunSpec`] cannot be honoured as given.
    #[error("invalid sandbox run spec: {0}")]
    InvalidSpec(String),

    /// `user` names a user the image does not have.
    #[error(
        "user {user:?} is not in the image's /etc/passwd; add it in an earlier step (e.g. `useradd`) \
         or use a numeric uid[:gid]"
    )]
    UnknownUser { user: String },

    /// `user` names a group the image does not have.
    #[error(
        "group {group:?} (from user spec {user:?}) is not in the image's /etc/group; use a numeric gid"
    )]
    UnknownGroup { user: String, group: String },

    /// The mechanism cannot switch to the requested user.
    #[error(
        "cannot run as {user:?} (uid {uid}, gid {gid}) in an unprivileged user namespace: only root \
         inside the sandbox maps to your account; run liftoff as root to build steps that use USER"
    )]
    UserNeedsRoot { user: String, uid: u32, gid: u32 },

    /// The command did not finish in time; the whole process tree was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed with all its child processes \
         (raise the step timeout if it is just slow)\n--- last stderr lines ---\n{stderr_tail}"
    )]
    Timeout {
        command: String,
        timeout: Duration,
        stdout_tail: String,
        stderr_tail: String,
    },

    /// A step inside the sandbox (mounting the overlay, /proc, /dev, a bind…) failed before the
    /// command could start.
    #[error("sandbox setup failed while {step}: {detail}")]
    Setup { step: String, detail: String },

    /// A helper program could not be started or failed.
    #[error("`{tool}` failed: {detail}")]
    Tool { tool: String, detail: String },

    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The upper (or layer) directory holds something that cannot become an OCI layer.
    #[error("cannot convert {} to an OCI layer: {reason}", path.display())]
    Layer { path: PathBuf, reason: String },

    /// The sandbox's scratch directory could not be removed.
    #[error(
        "could not remove the sandbox scratch directory {}: {detail}; remove it by hand (nothing is \
         mounted on it)",
        path.display()
    )]
    Cleanup { path: PathBuf, detail: String },
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| SandboxError::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
