//! `strip_build`: the `trigger-config-strip` esbuild plugin, as a text splice.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::ast::ast::{Declaration, ObjectPropertyKind, PropertyKind, Statement};
use oxc::span::{GetSpan, Span};

use crate::ConfigError;
use crate::location::LineIndex;
use crate::module::{self, Module, key_is};

/// Returns `source` with the config object's `build` property value replaced
/// by `{}` (a shorthand, method or getter `build` becomes `build: {}`), and a
/// top-level `export const resolveEnvVars = …` / `export function resolveEnvVars`
/// neutralised to `undefined`, as upstream's `trigger-config-strip` plugin does.
///
/// Everything else is kept byte-for-byte. When there is nothing to change the
/// source is returned unchanged. The config object is found the same way
/// [`crate::load`] finds it (default export, else `config` export, through
/// identifiers and one-argument wrapper calls).
pub fn strip_build(path: &Path, source: &str) -> Result<String, ConfigError> {
    let allocator = Allocator::default();
    let program = module::parse(&allocator, path, source)?;
    let module = Module::new(&program, source);
    let lines = LineIndex::new(source);

    let start = module
        .config_export()
        .map_err(|(span, reason)| not_static(path, &lines, span, reason))?
        .ok_or_else(|| ConfigError::ConfigObjectNotFound {
            path: path.to_path_buf(),
        })?;
    let object = module
        .config_object(start, false)
        .map_err(|(span, reason)| not_static(path, &lines, span, reason))?;

    let mut edits: Vec<(Span, String)> = Vec::new();
    for prop in &object.properties {
        let ObjectPropertyKind::ObjectProperty(p) = prop else {
            continue;
        };
        if !key_is(&p.key, p.computed, "build") {
            continue;
        }
        if p.shorthand || p.method || p.kind != PropertyKind::Init {
            edits.push((p.span, "build: {}".to_string()));
        } else {
            edits.push((p.value.span(), "{}".to_string()));
        }
    }

    for stmt in &program.body {
        let Statement::ExportDeclaration(e) = stmt else {
            continue;
        };
        match &e.declaration {
            Declaration::VariableDeclaration(d) => {
                for decl in &d.declarations {
                    if decl
                        .id
                        .get_identifier_name()
                        .is_some_and(|n| n == "resolveEnvVars")
                        && let Some(init) = &decl.init
                    {
                        edits.push((init.span(), "undefined".to_string()));
                    }
                }
            }
            Declaration::FunctionDeclaration(f)
                if f.id.as_ref().is_some_and(|id| id.name == "resolveEnvVars") =>
            {
                // `var`, not `const`: the function was hoisted, so earlier references must not hit a TDZ.
                edits.push((e.span, "export var resolveEnvVars = undefined;".to_string()));
            }
            _ => {}
        }
    }

    if edits.is_empty() {
        return Ok(source.to_string());
    }
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = source.to_string();
    let mut last_start = u32::MAX;
    for (span, text) in edits {
        // Overlapping edits can't happen for valid input; skip rather than corrupt the text.
        if span.end > last_start {
            continue;
        }
        let (Ok(start), Ok(end)) = (usize::try_from(span.start), usize::try_from(span.end)) else {
            continue;
        };
        if start <= end
            && end <= out.len()
            && out.is_char_boundary(start)
            && out.is_char_boundary(end)
        {
            out.replace_range(start..end, &text);
            last_start = span.start;
        }
    }
    Ok(out)
}

fn not_static(path: &Path, lines: &LineIndex<'_>, span: Span, reason: String) -> ConfigError {
    ConfigError::ConfigNotStatic {
        path: path.to_path_buf(),
        location: lines.location(span.start),
        reason,
    }
}
