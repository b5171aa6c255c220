//! Build steps without a container engine: run a command on an overlay of image layers in
//! private namespaces, then turn what it changed into an OCI layer directory.
//!
//! ```text
//! lowers (overlay form) ──run()──▶ upper (overlay diff) ──upper_to_layer()──▶ layer dir (OCI form)
//!        ▲                               │                                      │
//!        └── oci_whiteouts_to_overlay() ─┴── (or use upper directly as the next  └─▶ tar writer
//!            on unpacked OCI layers           step's top lower)
//! ```
//!
//! * [`available`] probes the machine once: [`Mechanism::RootOverlay`] as root (preferred), else
//!   [`Mechanism::UserNamespace`], else an error naming what is missing and the fixes.
//! * [`run`] mounts `overlay(lowers, upper)` inside fresh mount, pid, ipc, uts (and, without
//!   `network`, net) namespaces with `/proc`, a minimal `/dev` (null zero full random urandom tty,
//!   shm, pts, ptmx, fd), a tmpfs on `/tmp` (not captured), the binds and, with `network`, the
//!   host's resolv.conf; runs the command chrooted, as the image's user, with exactly the given
//!   environment, Docker's default capabilities and a wall-clock timeout that kills the whole
//!   process tree. Mounts never exist outside the sandbox's namespace, so they vanish with it on
//!   every path (error, timeout, panic, even a killed liftoff); mountpoints created for the run
//!   are taken out of the upper directory before `run` returns.
//!   The command is pid 1 of its pid namespace (like `docker run` without `--init`): whatever it
//!   leaves running in the background dies with it. The hostname is `liftoff`.
//! * [`upper_to_layer`] converts the upper directory into OCI layer semantics.
//!
//! Host programs used: util-linux `unshare`, `mount`, `setpriv`; coreutils `env`, `cp`,
//! `mkdir`, `chown`; `sh`; optionally iproute2 `ip` (brings `lo` up).
//!
//! Not isolated: cgroups (no memory/CPU limits; crun-style cgroup setup does not work on every
//! host), seccomp. Environment variables such as `LD_PRELOAD` in [`RunSpec::env`] also reach the
//! two host helpers (`setpriv`, `unshare`) that exec the command.

mod error;
mod layer;
mod mechanism;
mod run;
mod tree;
mod user;

pub use error::{Result, SandboxError};
pub use layer::{
    OPAQUE_MARKER, WHITEOUT_PREFIX, oci_whiteouts_to_overlay, oci_whiteouts_to_overlay_for,
    upper_to_layer,
};
pub use mechanism::{Mechanism, available};
pub use run::{Bind, RunOutput, RunSpec, TAIL_LINES, run, run_with};
