//! Bundler diagnostics rendered for people, with a location when one is known.

use std::fmt;
use std::path::Path;

use rolldown_error::{BatchedBuildDiagnostic, BuildDiagnostic, DiagnosticOptions, EventKind};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// A message from the bundler: a rolldown diagnostic, or one of liftoff's own
/// notes (an external that could not be resolved, a native addon kept external).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// rolldown's event code (`UNRESOLVED_IMPORT`, `PARSE_ERROR`, …) or liftoff's own.
    pub code: String,
    /// One-line summary.
    pub message: String,
    /// `file:line:column`, relative to the working dir, when known.
    pub location: Option<String>,
    /// The full rendering (code frame included).
    pub rendered: String,
    /// The package the diagnostic is about, for liftoff's own notes.
    pub package: Option<String>,
}

impl Diagnostic {
    pub(crate) fn about_package(
        severity: Severity,
        code: &str,
        package: &str,
        message: String,
    ) -> Self {
        Self {
            severity,
            code: code.into(),
            rendered: message.clone(),
            message,
            location: None,
            package: Some(package.to_string()),
        }
    }

    /// `error`, `warning` or `note`.
    pub fn severity_str(&self) -> &'static str {
        match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rendered.trim_end())
    }
}

pub(crate) fn from_rolldown(d: &BuildDiagnostic, cwd: &Path) -> Diagnostic {
    let opts = DiagnosticOptions {
        cwd: cwd.to_path_buf(),
    };
    let diag = d.to_diagnostic_with(&opts);
    let location = diag
        .get_primary_location()
        .map(|(file, line, col, _)| format!("{file}:{line}:{col}"));
    let severity = match d.severity() {
        rolldown_error::Severity::Error => Severity::Error,
        _ => Severity::Warning,
    };
    Diagnostic {
        severity,
        code: d.kind().to_string(),
        message: d.to_message_with(&opts),
        location,
        rendered: diag.convert_to_string(false),
        package: None,
    }
}

pub(crate) fn from_batch(batch: &BatchedBuildDiagnostic, cwd: &Path) -> Vec<Diagnostic> {
    batch
        .iter()
        .map(|d| from_rolldown(d, cwd))
        .map(|mut d| {
            d.severity = Severity::Error;
            d
        })
        .collect()
}

/// rolldown only warns about a bare import it cannot resolve and leaves it
/// external; esbuild (and so upstream) fails. A missing module imported by the
/// project's own code is an error; inside `node_modules` (optional peer imports
/// guarded at runtime) it stays a warning.
pub(crate) fn is_fatal_warning(d: &BuildDiagnostic, diag: &Diagnostic) -> bool {
    matches!(d.kind(), EventKind::UnresolvedImport)
        && !diag
            .location
            .as_deref()
            .is_some_and(|l| l.contains("node_modules/"))
        && !diag.message.contains("node_modules/")
}

/// Turns an unresolved-import warning into the error liftoff reports, with what to do.
pub(crate) fn into_missing_module_error(mut diag: Diagnostic) -> Diagnostic {
    diag.severity = Severity::Error;
    diag.rendered = diag.rendered.replace(
        "Module not found, treating it as an external dependency",
        "Module not found.",
    );
    let specifier = diag.message.split('\'').nth(1).unwrap_or_default();
    let package = crate::externals::package_name(specifier);
    if !package.is_empty() {
        diag.rendered = format!(
            "{}\n  help: `{package}` is not installed where this file can import it. Add it to your package.json dependencies and run `npm install` (or your package manager's install).",
            diag.rendered.trim_end()
        );
        diag.package = Some(package.to_string());
    }
    diag
}
