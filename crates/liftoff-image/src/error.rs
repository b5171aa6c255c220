use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while writing or reading layers, configs and layouts.
///
/// Each variant names the file or value involved so the message can be acted on without a
/// backtrace.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The directory handed to [`crate::layer_from_dir`] is missing or not a directory.
    #[error("layer source {} is not a directory", .0.display())]
    NotADirectory(PathBuf),

    /// A file shrank or grew while it was being archived.
    #[error(
        "{} changed size while it was being archived ({expected} bytes expected); \
         don't modify the tree while a layer is being built",
        path.display()
    )]
    FileChanged { path: PathBuf, expected: u64 },

    /// An entry of [`crate::LayerOptions::exclude`] is not a valid glob.
    #[error("invalid exclude pattern {pattern:?}: {message}")]
    InvalidExclude { pattern: String, message: String },

    /// [`crate::LayerOptions::prefix`] is absolute, empty or contains `..`.
    #[error(
        "invalid layer prefix {0:?}: use a relative directory such as \"app/\" (no leading '/', no '..')"
    )]
    InvalidPrefix(String),

    /// A layer media type that is neither an OCI nor a Docker tar layer.
    #[error(
        "unsupported layer media type {0:?}: expected an OCI or Docker layer \
         (tar, tar+gzip or tar+zstd)"
    )]
    UnsupportedMediaType(String),

    /// The layer blob could not be decoded as a (compressed) tar archive.
    #[error("layer {} is not a readable tar archive: {source}", blob.display())]
    CorruptLayer {
        blob: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A layer entry would write outside the destination directory, or is otherwise unsafe.
    #[error("refusing layer entry {entry:?} in {}: {reason}", blob.display())]
    UnsafeEntry {
        blob: PathBuf,
        entry: String,
        reason: String,
    },

    /// The base image config (or a value given to the config builder) is unusable.
    #[error("invalid image config: {0}")]
    InvalidConfig(String),

    /// A string that should be `sha256:<64 lowercase hex digits>` is not.
    #[error("invalid digest {0:?}: expected \"sha256:\" followed by 64 lowercase hex digits")]
    InvalidDigest(String),

    /// A blob's content does not hash to the digest it was given under.
    #[error("blob {} does not match its digest {expected} (it hashes to {actual})", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// The manifest references a blob that was neither handed in nor already in the layout.
    #[error(
        "the manifest references blob {digest} ({size} bytes) but it is not in {} and was not \
         passed to write_oci_layout",
        layout.display()
    )]
    MissingBlob {
        layout: PathBuf,
        digest: String,
        size: u64,
    },

    /// A blob's size differs from the size recorded in its descriptor.
    #[error("blob {digest} is {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },

    /// An existing `index.json` in the layout could not be read.
    #[error("{} is not a valid OCI image index: {message}", path.display())]
    InvalidIndex { path: PathBuf, message: String },

    /// The tag given to [`crate::write_oci_layout`] is empty or has control characters.
    #[error("invalid tag {0:?}: it must be non-empty and have no whitespace or control characters")]
    InvalidTag(String),

    /// `SOURCE_DATE_EPOCH` is set but is not a whole, non-negative number of seconds.
    #[error("SOURCE_DATE_EPOCH={0:?} is not a non-negative integer number of seconds")]
    InvalidSourceDateEpoch(String),
}

impl ImageError {
    pub(crate) fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        ImageError::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Attach an action and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, ImageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T, ImageError> {
        self.map_err(|e| ImageError::io(action, path, e))
    }
}
