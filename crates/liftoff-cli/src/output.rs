//! The one place liftoff writes to the terminal.
//!
//! Human messages go to stderr (so stdout stays clean for `--json` and pipes),
//! filtered by the log level; the final JSON document of a command goes to
//! stdout. Spinners are drawn only on a terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Upstream's log levels (`--log-level`, `TRIGGER_LOG_LEVEL`), most verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Default)]
pub enum LogLevel {
    Debug,
    Info,
    #[default]
    Log,
    Warn,
    Error,
    None,
}

/// The output layer handed to every command.
#[derive(Debug, Clone)]
pub struct Output {
    level: LogLevel,
    json: bool,
    color: bool,
    interactive: bool,
}

impl Output {
    pub fn new(level: LogLevel, json: bool) -> Self {
        let stderr = std::io::stderr();
        let tty = stderr.is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        Self {
            level,
            json,
            color,
            interactive: tty && !json && std::env::var_os("CI").is_none(),
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Whether messages at `level` are shown.
    pub fn level_enabled(&self, level: LogLevel) -> bool {
        level >= self.level && self.level != LogLevel::None
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn emit(&self, at: LogLevel, line: &str) {
        if at >= self.level && self.level != LogLevel::None {
            eprintln!("{line}");
        }
    }

    pub fn debug(&self, msg: impl AsRef<str>) {
        self.emit(LogLevel::Debug, &self.paint("2", msg.as_ref()));
    }

    pub fn info(&self, msg: impl AsRef<str>) {
        self.emit(LogLevel::Info, msg.as_ref());
    }

    /// A normal progress message (upstream's `log` level).
    pub fn log(&self, msg: impl AsRef<str>) {
        self.emit(LogLevel::Log, msg.as_ref());
    }

    pub fn success(&self, msg: impl AsRef<str>) {
        self.emit(
            LogLevel::Log,
            &format!("{} {}", self.paint("32", "✔"), msg.as_ref()),
        );
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        self.emit(
            LogLevel::Warn,
            &format!("{} {}", self.paint("33", "warning:"), msg.as_ref()),
        );
    }

    pub fn note(&self, msg: impl AsRef<str>) {
        self.emit(
            LogLevel::Info,
            &format!("{} {}", self.paint("36", "note:"), msg.as_ref()),
        );
    }

    /// Errors are always shown, whatever the level.
    pub fn error(&self, msg: impl AsRef<str>) {
        eprintln!("{} {}", self.paint("1;31", "error:"), msg.as_ref());
    }

    /// The machine-readable result of a command (stdout).
    pub fn result(&self, value: &serde_json::Value) {
        if let Ok(text) = serde_json::to_string_pretty(value) {
            println!("{text}");
        }
    }

    /// A plain line on stdout (the final human result of a command).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }

    /// Starts a spinner for long work; on a non-terminal it prints the message once.
    pub fn step(&self, msg: &str) -> Step {
        if self.interactive && self.level <= LogLevel::Log {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(msg.to_string());
            bar.enable_steady_tick(Duration::from_millis(90));
            Step {
                bar: Some(bar),
                out: self.clone(),
            }
        } else {
            self.log(msg);
            Step {
                bar: None,
                out: self.clone(),
            }
        }
    }
}

/// A running step; finish it with [`Step::done`]. Dropping it clears the spinner.
pub struct Step {
    bar: Option<ProgressBar>,
    out: Output,
}

impl Step {
    pub fn done(self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.out.success(msg);
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Per-item byte progress for transfers (blob uploads): a bar per item with bytes and rate on a
/// terminal, one line per finished item otherwise. Shareable across threads.
pub struct Transfers {
    out: Output,
    multi: Option<indicatif::MultiProgress>,
    bars: std::sync::Mutex<std::collections::HashMap<String, ProgressBar>>,
}

impl Output {
    /// Starts a transfer display.
    pub fn transfers(&self) -> Transfers {
        let multi =
            (self.interactive && self.level <= LogLevel::Log).then(indicatif::MultiProgress::new);
        Transfers {
            out: self.clone(),
            multi,
            bars: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl Transfers {
    fn bars(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, ProgressBar>> {
        self.bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An item of `size` bytes starts (`label` is shown, e.g. a short digest).
    pub fn start(&self, id: &str, label: &str, size: u64) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        self.bars().insert(id.to_string(), bar);
    }

    /// `sent` bytes of the item are done.
    pub fn advance(&self, id: &str, sent: u64) {
        if let Some(bar) = self.bars().get(id) {
            bar.set_position(sent);
        }
    }

    /// The item is finished; `line` says how (shown as a line when there is no terminal).
    pub fn finish(&self, id: &str, line: &str) {
        if let Some(bar) = self.bars().remove(id) {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                let _ = multi.println(line);
            }
        } else {
            self.out.log(line);
        }
    }
}
