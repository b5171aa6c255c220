//! The one error type of this crate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Location;

/// Everything that can go wrong while loading a `trigger.config.*` file,
/// discovering task files or reading an env file.
///
/// Every message names the file (and `line:column` where there is one), the
/// property involved, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `trigger.config.*` in the project directory and no `--config`.
    #[error(
        "Couldn't find your trigger.config.ts file in {}.\n\nMake sure you are in the directory of your Trigger.dev project, or specify the path to your config file using the `--config <path>` flag (liftoff looked for trigger.config.js, .ts, .mjs, .cjs, .mts and .cts).\n\nAlternatively, you can initialize a new project using `npx trigger.dev@latest init`.",
        dir.display()
    )]
    ConfigNotFound { dir: PathBuf },

    /// `--config <path>` names a file that does not exist.
    #[error(
        "The config file {} given with --config does not exist (a relative --config path is resolved against the project directory {}). Check the path.",
        path.display(),
        project_dir.display()
    )]
    ConfigFileMissing { path: PathBuf, project_dir: PathBuf },

    /// A file could not be read.
    #[error("Couldn't read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The config file name has an extension oxc can't parse.
    #[error(
        "{}: unsupported config file extension. Rename it to trigger.config.ts (or .js, .mjs, .cjs, .mts, .cts).",
        path.display()
    )]
    UnsupportedExtension { path: PathBuf },

    /// The config file does not parse.
    #[error("{}: syntax error: {message}\nFix the syntax error in the config file and try again.", at(path, *location))]
    Syntax {
        path: PathBuf,
        location: Option<Location>,
        message: String,
    },

    /// Neither a default export nor an exported `config` was found.
    #[error(
        "{}: couldn't find the config object. Export it as `export default defineConfig({{ ... }})` (also accepted: `export default {{ ... }}` and `export const config = defineConfig({{ ... }})`).",
        path.display()
    )]
    ConfigObjectNotFound { path: PathBuf },

    /// The export was found but is not (a wrapper around) an object literal.
    #[error(
        "{}: liftoff reads trigger.config without running it, so the config must be an object literal, but {reason}. Write `export default defineConfig({{ ... }})` with the options inline (top-level constants and process.env.NAME are fine).",
        at(path, Some(*location))
    )]
    ConfigNotStatic {
        path: PathBuf,
        location: Location,
        reason: String,
    },

    /// A property liftoff needs at build time can't be evaluated statically.
    #[error(
        "{}: `{property}` must be known without running code, but it is {reason}. liftoff reads trigger.config statically: use a literal, a top-level const in the same file, or process.env.NAME (optionally with `?? \"default\"`).",
        at(path, Some(*location))
    )]
    Unevaluable {
        path: PathBuf,
        location: Location,
        property: String,
        reason: String,
    },

    /// A property has the wrong type.
    #[error("{}: `{property}` must be {expected}, but it is {found}. Fix it in the config file.", at(path, *location))]
    InvalidValue {
        path: PathBuf,
        location: Option<Location>,
        property: String,
        expected: String,
        found: String,
    },

    /// `maxDuration` is missing or below 5 seconds (upstream's wording).
    #[error(
        "{}: The \"maxDuration\" trigger.config option is now required, and must be at least 5 seconds.{}",
        at(path, *location),
        found.as_ref().map(|f| format!(" (found: {f})")).unwrap_or_default()
    )]
    MaxDuration {
        path: PathBuf,
        location: Option<Location>,
        found: Option<String>,
    },

    /// `runtime` is not one liftoff supports.
    #[error("{}: Unsupported runtime \"{value}\" in trigger.config. Supported runtimes: node, bun.", at(path, Some(*location)))]
    UnsupportedRuntime {
        path: PathBuf,
        location: Location,
        value: String,
    },

    /// No project ref in the config and no `--project-ref`.
    #[error(
        "{}: no project ref. Set `project: \"proj_...\"` in the config (the ref is on your project's settings page in the Trigger.dev dashboard) or pass --project-ref <ref>.{hint}",
        path.display()
    )]
    MissingProject { path: PathBuf, hint: String },

    /// A directory listed in `dirs` does not exist.
    #[error(
        "The trigger directory \"{dir}\" from `{property}` in {} does not exist (looked for {}). Fix the entry in `{property}`; paths are relative to {}.",
        config_file.display(),
        resolved.display(),
        working_dir.display()
    )]
    DirNotFound {
        dir: String,
        property: String,
        resolved: PathBuf,
        config_file: PathBuf,
        working_dir: PathBuf,
    },

    /// Task discovery matched nothing.
    #[error("{}", no_trigger_files(working_dir, config_file, dirs, patterns))]
    NoTriggerFiles {
        working_dir: PathBuf,
        config_file: PathBuf,
        dirs: Vec<String>,
        patterns: Vec<String>,
    },

    /// A glob (from `dirs` or `ignorePatterns`) is invalid.
    #[error("Invalid glob pattern \"{pattern}\" (from `{property}` in {}): {message}. Fix the pattern in the config file.", config_file.display())]
    InvalidGlob {
        pattern: String,
        property: String,
        config_file: PathBuf,
        message: String,
    },
}

/// `path`, or `path:line:column` when the location is known.
fn at(path: &Path, location: Option<Location>) -> String {
    match location {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

fn no_trigger_files(
    working_dir: &Path,
    config_file: &Path,
    dirs: &[String],
    patterns: &[String],
) -> String {
    let mut s = format!("No trigger files found in {}.\n", working_dir.display());
    if dirs.is_empty() {
        s.push_str("\nThere are no trigger directories: `dirs` is empty, or it is not set and no directory named `trigger` exists.\n");
        let _ = write!(
            s,
            "\nCreate a `trigger` directory for your task files, or set `dirs` in {} to the directories that contain your tasks (for example `dirs: [\"./src/trigger\"]`).",
            config_file.display()
        );
        return s;
    }
    s.push_str("\nSearched these dirs:\n");
    for d in dirs {
        let _ = writeln!(s, "  - {d}");
    }
    s.push_str("\nwith these patterns:\n");
    for p in patterns {
        let _ = writeln!(s, "  - {p}");
    }
    let _ = write!(
        s,
        "\nTest and spec files (or whatever `ignorePatterns` lists) are skipped. Put your task files in one of these directories, or set `dirs` in {} to the directories that contain your tasks (for example `dirs: [\"./src/trigger\"]`).",
        config_file.display()
    );
    s
}
