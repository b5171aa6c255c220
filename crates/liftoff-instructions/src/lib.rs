//! The Containerfile instructions that Trigger.dev build extensions put in `image.instructions`,
//! parsed into steps liftoff executes itself (no Docker, no Dockerfile frontend).
//!
//! Supported, with Docker's semantics: `RUN` (shell and exec form), `ENV` (`K=V …` and the
//! legacy `K V` form), `ARG`, `WORKDIR`, `USER`, `COPY` (`--chown`, `--chmod`, `--from=<image>`,
//! `--link`), `ADD` (`--checksum`, `--chown`, `--chmod`, URLs and local files). Everything else
//! (`FROM`, `HEALTHCHECK`, `ONBUILD`, heredocs, `RUN --mount` …) is an error naming the extension
//! and the line, never silently skipped.
//!
//! Parsing keeps words raw: variables are expanded when the step runs ([`expand`], [`words`]),
//! against the environment at that point, as Docker does.

mod expand;

pub use expand::{expand, words};

/// Where an instruction came from (for messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The extension that contributed it, e.g. `PythonExtension`.
    pub origin: String,
    /// One `image.instructions` entry; may hold several lines.
    pub text: String,
}

/// A parsed instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub origin: String,
    /// The logical line, continuations joined, as written.
    pub line: String,
    pub instruction: Instruction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Command),
    /// Raw `(name, value)` pairs; values still to be expanded.
    Env(Vec<(String, String)>),
    /// `(name, raw default)`.
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Copy(Transfer),
    Add(Transfer),
}

impl Instruction {
    /// The Dockerfile keyword.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Run(_) => "RUN",
            Self::Env(_) => "ENV",
            Self::Arg(_) => "ARG",
            Self::Workdir(_) => "WORKDIR",
            Self::User(_) => "USER",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run with `/bin/sh -c`.
    Shell(String),
    Exec(Vec<String>),
}

/// The operands of `COPY` and `ADD` (raw words: expanded at execution).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transfer {
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=<image reference>`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `--checksum=sha256:<hex>` (ADD only).
    pub checksum: Option<String>,
}

/// Why an instruction cannot be used. Names the extension and the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: image instruction `{line}`: {message}")]
pub struct InstructionError {
    pub origin: String,
    pub line: String,
    pub message: String,
}

const SUPPORTED: &str = "liftoff runs RUN, ENV, ARG, WORKDIR, USER, COPY and ADD";

/// Parses every source into steps, in order. The first unsupported or malformed line is an error.
///
/// # Errors
/// An instruction outside the supported subset, a heredoc, an unknown flag or missing operands.
pub fn parse(sources: &[Source]) -> Result<Vec<Step>, InstructionError> {
    let mut steps = Vec::new();
    for source in sources {
        for line in logical_lines(&source.text) {
            let err = |message: String| InstructionError {
                origin: source.origin.clone(),
                line: shorten(&line),
                message,
            };
            let instruction = parse_line(&line).map_err(err)?;
            steps.push(Step {
                origin: source.origin.clone(),
                line: line.clone(),
                instruction,
            });
        }
    }
    Ok(steps)
}

fn shorten(line: &str) -> String {
    const MAX: usize = 160;
    if line.chars().count() <= MAX {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Joins `\`-continued lines and drops blank lines and comment lines (also inside continuations,
/// as Docker does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        if trimmed.is_empty() {
            // A blank line inside a continuation is skipped too.
            continue;
        }
        let (body, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (raw.trim_end(), false),
        };
        let piece = match &mut current {
            Some(acc) => {
                acc.push_str(body);
                acc
            }
            None => current.insert(body.trim_start().to_string()),
        };
        let _ = piece;
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current.take().filter(|l| !l.trim().is_empty()));
    out
}

fn parse_line(line: &str) -> Result<Instruction, String> {
    let (keyword, rest) = match line.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (line, ""),
    };
    let upper = keyword.to_ascii_uppercase();
    match upper.as_str() {
        "RUN" => parse_run(rest),
        "ENV" => parse_env(rest).map(Instruction::Env),
        "ARG" => parse_arg(rest).map(Instruction::Arg),
        "WORKDIR" => non_empty(rest, "WORKDIR needs a path").map(Instruction::Workdir),
        "USER" => non_empty(rest, "USER needs a user name or id").map(Instruction::User),
        "COPY" => parse_transfer(rest, false).map(Instruction::Copy),
        "ADD" => parse_transfer(rest, true).map(Instruction::Add),
        "FROM" => Err(format!(
            "FROM starts a new stage, which extensions cannot do; {SUPPORTED} in upstream's base stage"
        )),
        "HEALTHCHECK" | "ONBUILD" | "EXPOSE" | "VOLUME" | "STOPSIGNAL" | "SHELL" | "LABEL"
        | "MAINTAINER" | "CMD" | "ENTRYPOINT" => Err(format!(
            "{upper} is not supported: {SUPPORTED}. Set it another way or drop it from the extension"
        )),
        _ => Err(format!("unknown instruction {keyword:?}: {SUPPORTED}")),
    }
}

fn non_empty(rest: &str, message: &str) -> Result<String, String> {
    if rest.is_empty() {
        Err(message.to_string())
    } else {
        Ok(rest.to_string())
    }
}

fn has_heredoc(rest: &str) -> bool {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while let Some(pos) = rest[i..].find("<<") {
        let at = i + pos;
        let mut j = at + 2;
        if bytes.get(j) == Some(&b'<') {
            // `<<<` is a here-string, not a heredoc.
            i = j + 1;
            continue;
        }
        if bytes.get(j) == Some(&b'-') {
            j += 1;
        }
        while bytes.get(j) == Some(&b' ') {
            j += 1;
        }
        if bytes.get(j) == Some(&b'"') || bytes.get(j) == Some(&b'\'') {
            j += 1;
        }
        if bytes
            .get(j)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return true;
        }
        i = at + 2;
    }
    false
}

/// Splits leading `--flag[=value]` words off.
fn flags(rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut out = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let word = &after[..end];
        match word.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((word.to_string(), None)),
        }
        rest = after[end..].trim_start();
    }
    (out, rest)
}

fn parse_run(rest: &str) -> Result<Instruction, String> {
    let (flags, command) = flags(rest);
    if let Some((name, _)) = flags.first() {
        return Err(format!(
            "RUN --{name} is not supported (it needs BuildKit); use a plain RUN"
        ));
    }
    if command.is_empty() {
        return Err("RUN needs a command".into());
    }
    if has_heredoc(command) {
        return Err("heredocs (<<EOF) are not supported; use a single-line command or a script file copied with COPY".into());
    }
    if command.starts_with('[')
        && let Ok(argv) = serde_json::from_str::<Vec<String>>(command)
    {
        if argv.is_empty() {
            return Err("RUN [] has no command".into());
        }
        return Ok(Instruction::Run(Command::Exec(argv)));
    }
    Ok(Instruction::Run(Command::Shell(command.to_string())))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_env(rest: &str) -> Result<Vec<(String, String)>, String> {
    if rest.is_empty() {
        return Err("ENV needs NAME=value".into());
    }
    let first = words(rest).into_iter().next().unwrap_or_default();
    if !first.contains('=') {
        // Legacy `ENV NAME value with spaces`.
        let value = rest[first.len()..].trim_start();
        if !valid_name(&first) {
            return Err(format!("{first:?} is not a valid variable name"));
        }
        return Ok(vec![(first, value.to_string())]);
    }
    let mut out = Vec::new();
    for word in words(rest) {
        let Some((name, value)) = word.split_once('=') else {
            return Err(format!(
                "{word:?} is not NAME=value (mixing the two ENV forms is not allowed)"
            ));
        };
        if !valid_name(name) {
            return Err(format!("{name:?} is not a valid variable name"));
        }
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

fn parse_arg(rest: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let list = words(rest);
    if list.is_empty() {
        return Err("ARG needs a name".into());
    }
    list.into_iter()
        .map(|w| {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (w, None),
            };
            if valid_name(&name) {
                Ok((name, default))
            } else {
                Err(format!("{name:?} is not a valid build argument name"))
            }
        })
        .collect()
}

fn parse_transfer(rest: &str, add: bool) -> Result<Transfer, String> {
    let keyword = if add { "ADD" } else { "COPY" };
    let (flags, operands) = flags(rest);
    if has_heredoc(operands) {
        return Err("heredocs (<<EOF) are not supported".into());
    }
    let mut t = Transfer::default();
    for (name, value) in flags {
        let need = |v: Option<String>| {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{keyword} --{name} needs a value"))
        };
        match name.as_str() {
            "chown" => t.chown = Some(need(value)?),
            "chmod" => t.chmod = Some(need(value)?),
            "from" if !add => t.from = Some(need(value)?),
            "checksum" if add => {
                let v = need(value)?;
                let hex = v.strip_prefix("sha256:").ok_or_else(|| {
                    format!("ADD --checksum={v}: only sha256:<64 hex digits> is supported")
                })?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "ADD --checksum={v}: expected sha256: and 64 hex digits"
                    ));
                }
                t.checksum = Some(format!("sha256:{}", hex.to_ascii_lowercase()));
            }
            "link" => {}
            other => return Err(format!("{keyword} --{other} is not supported")),
        }
    }
    let mut list: Vec<String> = if operands.starts_with('[') {
        serde_json::from_str(operands)
            .map_err(|e| format!("{keyword} [..] is not a JSON array of strings: {e}"))?
    } else {
        words(operands)
    };
    if list.len() < 2 {
        return Err(format!(
            "{keyword} needs at least one source and a destination"
        ));
    }
    t.dest = list.pop().unwrap_or_default();
    t.sources = list;
    for s in &t.sources {
        if s.starts_with("git@")
            || (s.contains("://")
                && std::path::Path::new(s)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("git")))
        {
            return Err(format!(
                "{keyword} of a git repository ({s}) is not supported"
            ));
        }
        if !add && (s.starts_with("http://") || s.starts_with("https://")) {
            return Err(format!(
                "COPY cannot fetch URLs ({s}); use ADD --checksum=sha256:…"
            ));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
