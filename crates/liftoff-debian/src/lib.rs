//! Debian packages into an image layer without apt, dpkg or a daemon.
//!
//! 1. [`BaseSystem::read`] reads a base rootfs (read-only): its dpkg database, dpkg
//!    architecture, apt sources with their keyrings, and whether /usr is merged.
//! 2. [`resolve`] fetches each source's `InRelease`, verifies its `OpenPGP` signature against the
//!    base image's keyring and its `Valid-Until`, fetches the Packages indexes by hash (checked
//!    against `InRelease`, cached content-addressed) and computes the packages apt would install
//!    (`apt-get install --no-install-recommends`), keeping the repository of each stanza.
//! 3. [`fetch`] downloads the .debs in parallel, each verified by SHA-256 and size.
//! 4. [`unpack`] extracts them into an empty directory that becomes one layer: merged-/usr
//!    path rewriting, refusal of entries that would escape the layer, and a complete dpkg
//!    database (`status` with the new packages `install ok unpacked`, `info/*`), so a later
//!    `dpkg --configure -a` can run the maintainer scripts.

mod base;
mod control;
mod deps;
mod error;
mod fetch;
mod filters;
mod http;
mod index;
mod release;
mod resolve;
mod rootfs;
mod sources;
mod suggest;
mod unpack;
mod version;

pub use base::BaseSystem;
pub use error::DebianError;
pub use fetch::fetch;
pub use resolve::{Plan, PlannedPackage, Requested, resolve};
pub use sources::{Keyring, Source};
pub use unpack::{UnpackReport, UnpackedPackage, unpack};
pub use version::{Relation, compare_versions};

/// Check a `Date`/`Valid-Until` pair of a Release file against a time (unix seconds): an
/// expired or not-yet-valid Release is an error. [`resolve`] does this with the current time.
pub fn check_release_dates(
    date: Option<&str>,
    valid_until: Option<&str>,
    now_unix: i64,
    url: &str,
) -> Result<(), DebianError> {
    release::check_dates(date, valid_until, now_unix, url)
}
