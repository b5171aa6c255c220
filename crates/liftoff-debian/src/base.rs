//! The base image's Debian state, read from its rootfs directory (read-only).

use crate::control::paragraphs;
use crate::error::DebianError;
use crate::index::Record;
use crate::rootfs;
use crate::sources::{self, Source};
use std::path::{Path, PathBuf};

/// The directories that merged-/usr systems replace with symlinks into `/usr`.
const USR_ALIASES: [&str; 7] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// A Debian-based rootfs as dpkg and apt see it.
#[derive(Debug)]
pub struct BaseSystem {
    pub(crate) rootfs: PathBuf,
    pub(crate) architecture: String,
    pub(crate) foreign_architectures: Vec<String>,
    pub(crate) status_text: String,
    /// Packages whose status has a current version (installed, unpacked, half-configured, ...)
    /// for the native architecture or `all`.
    pub(crate) installed: Vec<Record>,
    pub(crate) sources: Vec<Source>,
    pub(crate) usr_aliases: Vec<String>,
    /// dpkg's `path-exclude`/`path-include` filters of the rootfs.
    pub(crate) path_filters: Vec<crate::filters::PathFilter>,
}

impl BaseSystem {
    /// Read the dpkg database, dpkg architecture, apt sources and keyrings and the merged-/usr
    /// layout of a rootfs directory. Nothing in it is written.
    pub fn read(rootfs: &Path) -> Result<Self, DebianError> {
        let status_path = rootfs::resolve_in(rootfs, Path::new("/var/lib/dpkg/status"));
        let status_bytes = match std::fs::read(&status_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DebianError::NotDebianBased {
                    rootfs: rootfs.to_path_buf(),
                    packages: Vec::new(),
                });
            }
            Err(e) => return Err(DebianError::io("read", status_path, e)),
        };
        let status_text = String::from_utf8(status_bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());

        let mut dpkg_arch = None;
        let mut all_installed = Vec::new();
        for p in paragraphs(&status_text, false) {
            let Some(status) = p.get("Status") else {
                continue;
            };
            if !has_current_version(status) {
                continue;
            }
            let rec = Record::from_paragraph(&p, None).map_err(|message| DebianError::Parse {
                path: PathBuf::from("/var/lib/dpkg/status"),
                message,
            })?;
            if rec.name == "dpkg" {
                dpkg_arch = Some(rec.arch.clone());
            }
            all_installed.push(rec);
        }

        let arch_file = rootfs::read(rootfs, "/var/lib/dpkg/arch")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let listed: Vec<String> = arch_file.split_whitespace().map(str::to_string).collect();
        let architecture = dpkg_arch
            .filter(|a| a != "all")
            .or_else(|| listed.first().cloned())
            .ok_or_else(|| DebianError::Parse {
                path: PathBuf::from("/var/lib/dpkg/status"),
                message: "cannot tell the dpkg architecture: no `dpkg` package in the status file and no /var/lib/dpkg/arch".into(),
            })?;
        let foreign_architectures = listed.into_iter().filter(|a| *a != architecture).collect();
        let installed = all_installed
            .into_iter()
            .filter(|r| r.arch == architecture || r.arch == "all")
            .collect();

        let sources = sources::read_sources(rootfs)?;
        let usr_aliases = USR_ALIASES
            .iter()
            .filter(|d| {
                let p = rootfs.join(d);
                std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink())
                    && std::fs::read_link(&p).is_ok_and(|t| {
                        t.to_string_lossy()
                            .trim_start_matches('/')
                            .trim_end_matches('/')
                            == format!("usr/{d}")
                    })
            })
            .map(|d| (*d).to_string())
            .collect();

        Ok(Self {
            rootfs: rootfs.to_path_buf(),
            architecture,
            foreign_architectures,
            status_text,
            installed,
            sources,
            usr_aliases,
            path_filters: crate::filters::read(rootfs),
        })
    }

    /// [`BaseSystem::read`], naming the requested packages in a "not Debian-based" error.
    pub fn read_for(rootfs: &Path, requested: &[crate::Requested]) -> Result<Self, DebianError> {
        Self::read(rootfs).map_err(|e| e.with_requested(requested))
    }

    /// The rootfs directory this was read from.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// dpkg's native architecture (`amd64`, `arm64`, ...).
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Foreign architectures enabled with `dpkg --add-architecture` (not used for resolving).
    pub fn foreign_architectures(&self) -> &[String] {
        &self.foreign_architectures
    }

    /// The apt sources, in apt's order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Top-level directories that are symlinks into `/usr` (`bin`, `lib`, ...).
    pub fn usr_aliases(&self) -> &[String] {
        &self.usr_aliases
    }

    /// Whether the rootfs has a merged /usr (at least `bin`, `sbin` and `lib` are symlinks).
    pub fn is_merged_usr(&self) -> bool {
        ["bin", "sbin", "lib"]
            .iter()
            .all(|d| self.usr_aliases.iter().any(|a| a == d))
    }

    /// The installed version of a package (native architecture or `all`), if any.
    pub fn installed_version(&self, name: &str) -> Option<&str> {
        self.installed
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.version.as_str())
    }

    /// How many packages have a current version in the dpkg database.
    pub fn installed_count(&self) -> usize {
        self.installed.len()
    }
}

/// Whether a dpkg `Status:` value means the package has a current version (what apt calls
/// `CurrentVer`): every state but `not-installed` and `config-files`.
fn has_current_version(status: &str) -> bool {
    let state = status.split_whitespace().nth(2).unwrap_or("");
    !matches!(state, "" | "not-installed" | "config-files")
}
