use std::path::PathBuf;

/// Why an extension could not be set up or run. Every variant names the extension.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    #[error("{extension}: unknown option `{option}` (known options: {known}){location}")]
    UnknownOption {
        extension: String,
        option: String,
        known: String,
        location: String,
    },
    #[error("{extension}: option `{option}` must be {expected}, but it is {found}{location}")]
    WrongType {
        extension: String,
        option: String,
        expected: String,
        found: String,
        location: String,
    },
    #[error("{extension}: option `{option}` is required{location}")]
    MissingOption {
        extension: String,
        option: String,
        location: String,
    },
    #[error("{extension} failed in {phase}: {message}")]
    Failed {
        extension: String,
        phase: &'static str,
        message: String,
    },
    #[error("{extension}: could not {action} {path}: {source}")]
    Io {
        extension: String,
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("built-in extension data file {file} is invalid: {message}")]
    DataFile { file: String, message: String },
    #[error("{0}")]
    Sidecar(String),
}

impl ExtensionError {
    pub(crate) fn failed(extension: &str, phase: &'static str, message: impl Into<String>) -> Self {
        Self::Failed {
            extension: extension.to_string(),
            phase,
            message: message.into(),
        }
    }
}
