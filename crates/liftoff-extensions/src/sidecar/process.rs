//! The Node child process and its line protocol (see `sidecar/host.mjs`).

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::LogLevel;

/// The JavaScript host, shipped inside the binary.
const HOST_SCRIPT: &str = include_str!("../../sidecar/host.mjs");

/// How many stderr lines are kept for crash reports.
const STDERR_TAIL_LINES: usize = 40;
/// Longest stderr line kept, in bytes.
const STDERR_LINE_MAX: usize = 1000;

/// What the stdout reader hands to the caller.
#[derive(Debug)]
enum Event {
    /// A protocol message (after the prefix).
    Message(Value),
    /// Output that is not part of the protocol.
    Stray(String),
    /// stdout was closed: the process is gone (or closed its stdout).
    Closed,
}

/// Why a call did not produce a result.
#[derive(Debug)]
pub(super) enum CallError {
    /// The JavaScript side threw.
    Js {
        name: String,
        message: String,
        stack: Option<String>,
    },
    /// No reply within the timeout; the process was killed.
    Timeout(Duration),
    /// The process exited (or closed its pipes) while the call was pending.
    Exited {
        status: Option<ExitStatus>,
        stderr: Vec<String>,
    },
    /// The process was stopped earlier.
    Dead(String),
}

impl CallError {
    /// The thrown error's stack (which starts with `Name: message`), or name and message.
    pub(super) fn js_text(name: &str, message: &str, stack: Option<&str>) -> String {
        match stack {
            Some(stack) if stack.contains(message) => stack.to_string(),
            Some(stack) => format!("{name}: {message}\n{stack}"),
            None if name.is_empty() => message.to_string(),
            None => format!("{name}: {message}"),
        }
    }
}

/// A running `node` with the host script.
#[derive(Debug)]
pub(super) struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
    next_id: u64,
    /// Why the process is no longer usable.
    dead: Option<String>,
}

impl NodeProcess {
    /// Starts `node` (an absolute path) running the host script.
    pub(super) fn spawn(
        node: &Path,
        working_dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> std::io::Result<Self> {
        let prefix = protocol_prefix();
        let mut child = Command::new(node)
            .arg("--input-type=module")
            .arg("-e")
            .arg(HOST_SCRIPT)
            .arg(&prefix)
            .current_dir(working_dir)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
        let (tx, rx) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        thread::Builder::new()
            .name("liftoff-sidecar-stdout".into())
            .spawn(move || read_stdout(stdout, &prefix, &tx))?;
        let tail_writer = Arc::clone(&tail);
        let stderr_reader = thread::Builder::new()
            .name("liftoff-sidecar-stderr".into())
            .spawn(move || read_stderr(stderr, &tail_writer))?;
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            events: rx,
            stderr_tail: tail,
            stderr_reader: Some(stderr_reader),
            next_id: 1,
            dead: None,
        })
    }

    /// Sends one request and waits for its reply. Log notifications and stray
    /// output received meanwhile go to `logs`.
    pub(super) fn call(
        &mut self,
        method: &str,
        params: &Value,
        timeout: Duration,
        logs: &mut Vec<(LogLevel, String)>,
    ) -> Result<Value, CallError> {
        if let Some(reason) = &self.dead {
            return Err(CallError::Dead(reason.clone()));
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut line = json!({ "id": id, "method": method, "params": params }).to_string();
        line.push('\n');
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin is closed")),
        };
        if written.is_err() {
            return Err(self.exited());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Message(message)) => {
                    if let Some(reply) = Self::handle(&message, id, logs) {
                        return reply;
                    }
                }
                Ok(Event::Stray(text)) => logs.push((LogLevel::Log, text)),
                Ok(Event::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.exited());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.stop(format!("it was stopped after {method} timed out"));
                    return Err(CallError::Timeout(timeout));
                }
            }
        }
    }

    /// One protocol message: a log line (`None`), or the reply to `id`.
    fn handle(
        message: &Value,
        id: u64,
        logs: &mut Vec<(LogLevel, String)>,
    ) -> Option<Result<Value, CallError>> {
        if message.get("method").and_then(Value::as_str) == Some("log") {
            let params = message.get("params");
            let level = match params.and_then(|p| p.get("level")).and_then(Value::as_str) {
                Some("debug") => LogLevel::Debug,
                Some("warn") => LogLevel::Warn,
                _ => LogLevel::Log,
            };
            let text = params
                .and_then(|p| p.get("message"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            logs.push((level, text.to_string()));
            return None;
        }
        if message.get("id").and_then(Value::as_u64) != Some(id) {
            // A reply to an earlier call that was given up on cannot happen (the
            // process is stopped then); ignore anything else.
            return None;
        }
        if let Some(error) = message.get("error") {
            let text = |key: &str| error.get(key).and_then(Value::as_str).map(String::from);
            return Some(Err(CallError::Js {
                name: text("name").unwrap_or_else(|| "Error".into()),
                message: text("message").unwrap_or_default(),
                stack: text("stack"),
            }));
        }
        Some(Ok(message.get("result").cloned().unwrap_or(Value::Null)))
    }

    /// The process went away: its exit status and the end of its stderr.
    fn exited(&mut self) -> CallError {
        if let Some(reason) = &self.dead {
            return CallError::Dead(reason.clone());
        }
        // stdout closed; give the process a moment to exit, then make sure it has.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        if status.is_none() {
            let _ = self.child.kill();
            status = self.child.wait().ok();
        }
        // Let the stderr reader drain what is left (bounded: a grandchild may hold the pipe).
        if let Some(reader) = self.stderr_reader.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !reader.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        self.stdin = None;
        let code = status.map_or_else(|| "unknown status".to_string(), |s| s.to_string());
        self.dead = Some(format!("it exited unexpectedly ({code})"));
        CallError::Exited {
            status,
            stderr: self.stderr_tail(),
        }
    }

    /// The last lines the process wrote to stderr.
    pub(super) fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Kills the process; later calls fail with `reason`.
    pub(super) fn stop(&mut self, reason: String) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.dead.is_none() {
            self.dead = Some(reason);
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stop("it was shut down".into());
    }
}

/// A per-process marker that starts every protocol line, so output from user
/// code can never be mistaken for a reply.
fn protocol_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "\u{1e}liftoff-{:x}-{:x}\u{1f}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

fn read_stdout(stdout: impl Read, prefix: &str, tx: &Sender<Event>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        // A stray write without a newline may precede a message on the same line.
        let events = match line.find(prefix) {
            Some(at) => {
                let before = &line[..at];
                let payload = &line[at + prefix.len()..];
                // A marked line that is not JSON can only come from user code: show it.
                let message = serde_json::from_str(payload)
                    .map_or_else(|_| Event::Stray(payload.to_string()), Event::Message);
                if before.is_empty() {
                    vec![message]
                } else {
                    vec![Event::Stray(before.to_string()), message]
                }
            }
            None => vec![Event::Stray(line.to_string())],
        };
        for event in events {
            if tx.send(event).is_err() {
                return;
            }
        }
    }
    let _ = tx.send(Event::Closed);
}

fn read_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = truncate(line.trim_end_matches(['\n', '\r']), STDERR_LINE_MAX);
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Finds the `node` executable: a path is used as given, a bare name is looked
/// up on `PATH` (from `env`, else liftoff's own).
pub(super) fn find_node(node: &Path, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if node.components().count() > 1 || node.is_absolute() {
        return is_executable(node).then(|| node.to_path_buf());
    }
    let path: OsString = env
        .get("PATH")
        .map(OsString::from)
        .or_else(|| std::env::var_os("PATH"))?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .find_map(|dir| {
            candidates(node)
                .into_iter()
                .map(|name| dir.join(name))
                .find(|p| is_executable(p))
        })
}

fn candidates(node: &Path) -> Vec<PathBuf> {
    let mut names = vec![node.to_path_buf()];
    if cfg!(windows) && node.extension().is_none() {
        names.push(node.with_extension("exe"));
        names.push(node.with_extension("cmd"));
    }
    names
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
