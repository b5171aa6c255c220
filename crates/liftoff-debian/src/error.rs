use std::path::PathBuf;

/// Everything that can go wrong while resolving, fetching or unpacking Debian packages.
///
/// Each variant names the package, version, index, URL or file involved, so the message
/// alone tells the user what to change.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// The base rootfs has no dpkg database, so it cannot take Debian packages.
    #[error(
        "the base image is not Debian-based (no /var/lib/dpkg/status in {}); image packages{} need a Debian or Ubuntu base image",
        rootfs.display(),
        if packages.is_empty() { String::new() } else { format!(" ({})", packages.join(", ")) }
    )]
    NotDebianBased {
        /// The rootfs that was read.
        rootfs: PathBuf,
        /// The requested packages, when known.
        packages: Vec<String>,
    },

    /// A file of the base rootfs or the cache could not be read or written.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A package request is not a valid Debian package name.
    #[error(
        "invalid package request `{input}`: {reason}; a package name uses only lowercase letters, digits and `+ - .`, starts with a letter or digit and is at least two characters long (optionally `name=version`)"
    )]
    InvalidPackageName {
        /// The request as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A pinned version in a package request has characters a Debian version cannot have.
    #[error(
        "invalid version in package request `{input}`: {reason}; a Debian version uses only letters, digits and `. + ~ : -`"
    )]
    InvalidVersion {
        /// The request as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A dpkg status file, apt sources file or index could not be parsed.
    #[error("could not parse {}: {message}", path.display())]
    Parse {
        /// The file (inside the rootfs, the cache, or a URL).
        path: PathBuf,
        /// What was wrong.
        message: String,
    },

    /// The base image declares no usable apt sources.
    #[error(
        "the base image {} has no enabled `deb` sources in /etc/apt/sources.list or /etc/apt/sources.list.d/*.{{list,sources}}; it cannot install packages without them",
        rootfs.display()
    )]
    NoSources {
        /// The rootfs that was read.
        rootfs: PathBuf,
    },

    /// An apt source uses a URI scheme other than http(s).
    #[error(
        "apt source `{uri}` in {} uses an unsupported URI scheme; only http:// and https:// sources can be fetched without apt",
        path.display()
    )]
    UnsupportedUri {
        /// The sources file.
        path: PathBuf,
        /// The URI.
        uri: String,
    },

    /// No `OpenPGP` key could be loaded to verify a source's `InRelease`.
    #[error(
        "no usable OpenPGP key to verify {uri} {suite} (looked in {}): {message}",
        keyrings.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Keyring {
        /// The source URI.
        uri: String,
        /// The suite.
        suite: String,
        /// The keyrings that were tried.
        keyrings: Vec<PathBuf>,
        /// Why none worked.
        message: String,
    },

    /// An HTTP request failed (network error or non-success status).
    #[error("could not download {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong, including the HTTP status when there was one.
        message: String,
    },

    /// An `InRelease` file is not signed by a key of the base image's keyring.
    #[error(
        "the signature of {url} could not be verified with the base image's keyring ({}): {message}; refusing to use an unauthenticated package index",
        keyrings.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    BadSignature {
        /// The `InRelease` URL.
        url: String,
        /// The keyrings used.
        keyrings: Vec<PathBuf>,
        /// Why verification failed.
        message: String,
    },

    /// An `InRelease` file is past its `Valid-Until` date (a replayed or stale mirror).
    #[error(
        "{url} expired: its Valid-Until is {valid_until} but now is {now}; the mirror serves a stale index (or the clock is wrong)"
    )]
    ReleaseExpired {
        /// The `InRelease` URL.
        url: String,
        /// The Valid-Until field.
        valid_until: String,
        /// The current time, formatted like the field.
        now: String,
    },

    /// An `InRelease` file is dated in the future.
    #[error("{url} is not valid yet: its Date is {date} but now is {now}; check the clock")]
    ReleaseNotYetValid {
        /// The `InRelease` URL.
        url: String,
        /// The Date field.
        date: String,
        /// The current time.
        now: String,
    },

    /// An `InRelease` file lists no Packages index for a component/architecture.
    #[error(
        "{url} lists no Packages index for `{component}` on {architecture} (no SHA256 entry for {component}/binary-{architecture}/Packages{{.xz,.gz,}}); check the Components of this source in the base image"
    )]
    IndexMissing {
        /// The `InRelease` URL.
        url: String,
        /// The component.
        component: String,
        /// The architecture.
        architecture: String,
    },

    /// A downloaded (or cached) file does not match the hash and size it was announced with.
    #[error(
        "{what} from {url} does not match its announced checksum (expected sha256 {expected_sha256}, {expected_size} bytes; got sha256 {actual_sha256}, {actual_size} bytes)"
    )]
    HashMismatch {
        /// What the file is (".deb of jq 1.6", "Packages index").
        what: String,
        /// Where it came from.
        url: String,
        /// Expected SHA-256 (hex).
        expected_sha256: String,
        /// Expected size in bytes.
        expected_size: u64,
        /// Actual SHA-256 (hex).
        actual_sha256: String,
        /// Actual size in bytes.
        actual_size: u64,
    },

    /// A compressed stream could not be decompressed.
    #[error("could not decompress {what}: {message}")]
    Decompress {
        /// What was being decompressed.
        what: String,
        /// The decoder's error.
        message: String,
    },

    /// A requested package exists in no index and is provided by no package.
    #[error(
        "unknown package `{name}`: it is in none of the base image's package indexes ({sources}){}",
        if suggestions.is_empty() { String::new() } else { format!("; did you mean {}?", suggestions.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")) }
    )]
    UnknownPackage {
        /// The requested name.
        name: String,
        /// Nearest names by edit distance / prefix.
        suggestions: Vec<String>,
        /// The suites that were searched.
        sources: String,
    },

    /// A requested package name is purely virtual and provided by several packages.
    #[error(
        "`{name}` is a virtual package provided by {}; request one of them explicitly",
        providers.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    )]
    VirtualPackage {
        /// The virtual name.
        name: String,
        /// Real packages providing it.
        providers: Vec<String>,
    },

    /// A pinned `name=version` does not exist.
    #[error(
        "package `{name}` has no version `{version}` in the base image's package indexes; available: {}{}",
        if available.is_empty() { "none".to_string() } else { available.join(", ") },
        installed.as_ref().map(|v| format!(" (installed in the base image: {v})")).unwrap_or_default()
    )]
    VersionNotFound {
        /// The package.
        name: String,
        /// The pinned version.
        version: String,
        /// The versions that exist, newest first.
        available: Vec<String>,
        /// The version installed in the base image, if any.
        installed: Option<String>,
    },

    /// A dependency cannot be satisfied by any available or installed package.
    #[error(
        "cannot install `{package}` {version}: it depends on `{dependency}`, which no available or installed version satisfies{}{}",
        if chain.is_empty() { String::new() } else { format!(" (pulled in by {})", chain.join(" <- ")) },
        if detail.is_empty() { String::new() } else { format!("; {detail}") }
    )]
    Unsatisfiable {
        /// The package whose dependency failed.
        package: String,
        /// Its version.
        version: String,
        /// The dependency (or-group) as written.
        dependency: String,
        /// Which requested package pulled it in, nearest first.
        chain: Vec<String>,
        /// What exists for the names in the group.
        detail: String,
    },

    /// The plan would need to remove or downgrade something, which a layer cannot do.
    #[error("cannot install {package}: {message}")]
    Conflict {
        /// The package being installed.
        package: String,
        /// What conflicts and why.
        message: String,
    },

    /// A .deb file is malformed or does not match its plan entry.
    #[error("invalid .deb {}: {message}", deb.display())]
    Deb {
        /// The .deb file.
        deb: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A .deb contains an entry that would write outside the layer.
    #[error("refusing to unpack {}: entry `{entry}` {reason}", deb.display())]
    UnsafeEntry {
        /// The .deb file.
        deb: PathBuf,
        /// The tar entry path.
        entry: String,
        /// Why it is unsafe.
        reason: String,
    },

    /// `unpack` was given an output directory that is not empty, or inconsistent arguments.
    #[error("cannot unpack into {}: {message}", out.display())]
    BadOutput {
        /// The output directory.
        out: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DebianError {
    /// Fill in the requested package names of a [`DebianError::NotDebianBased`] error.
    #[must_use]
    pub fn with_requested(self, requested: &[crate::Requested]) -> Self {
        match self {
            Self::NotDebianBased { rootfs, .. } => Self::NotDebianBased {
                rootfs,
                packages: requested.iter().map(ToString::to_string).collect(),
            },
            other => other,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
