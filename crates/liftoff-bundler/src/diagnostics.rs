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
}

impl Diagnostic {
    pub(crate) fn note(severity: Severity, code: &str, message: String) -> Self {
        Self { severity, code: code.into(), rendered: message.clone(), message, location: None }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rendered.trim_end())
    }
}

pub(crate) fn from_rolldown(d: &BuildDiagnostic, cwd: &Path) -> Diagnostic {
    let opts = DiagnosticOptions { cwd: cwd.to_path_buf() };
    let diag = d.to_diagnostic_with(&opts);
    let location = diag.get_primary_location().map(|(file, line, col, _)| format!("{file}:{line}:{col}"));
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
    }
}

pub(crate) fn from_batch(batch: &BatchedBuildDiagnostic, cwd: &Path) -> Vec<Diagnostic> {
    batch.iter().map(|d| from_rolldown(d, cwd)).map(|mut d| {
        d.severity = Severity::Error;
        d
    }).collect()
}

/// rolldown only warns about a bare import it cannot resolve and leaves it
/// external; esbuild (and so upstream) fails. A missing module imported by the
/// project's own code is an error; inside `node_modules` (optional peer imports
/// guarded at runtime) it stays a warning.
pub(crate) fn is_fatal_warning(d: &BuildDiagnostic, diag: &Diagnostic, _cwd: &Path) -> bool {
    matches!(d.kind(), EventKind::UnresolvedImport)
        && !diag.location.as_deref().is_some_and(|l| l.contains("node_modules/"))
        && !diag.message.contains("node_modules/")
}
