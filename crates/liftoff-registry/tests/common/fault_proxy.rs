//! A tiny HTTP proxy in front of a registry that answers chosen requests itself (a 503 with
//! `Retry-After`, a 405 to chunked uploads, …) and forwards the rest. Each connection carries
//! one request (`Connection: close` is forced), so no response parsing is needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Decides, per request (`method`, `path with query`), whether to answer it with `Some(status
/// line and headers)` instead of forwarding it; [`DROP`] closes the connection without an answer.
pub type Rule = Box<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// A [`Rule`] answer: close the connection without answering.
pub const DROP: &str = "DROP";

pub struct FaultProxy {
    /// `127.0.0.1:<port>`: use it as the registry.
    pub host: String,
    /// `METHOD path -> injected <status>` or `METHOD path -> forwarded`, in arrival order.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, rule: Rule) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (upstream, shared_log, rule) = (upstream.to_string(), log.clone(), Arc::new(rule));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (upstream, log, rule) = (upstream.clone(), shared_log.clone(), rule.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &upstream, &log, &rule);
                });
            }
        });
        Self { host, log }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    log: &Mutex<Vec<String>>,
    rule: &Rule,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut head = request_line.clone();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim_end().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;

    let mut client = client;
    if let Some(answer) = rule(&method, &path) {
        if answer == DROP {
            log.lock()
                .unwrap()
                .push(format!("{method} {path} -> injected drop"));
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        let status = answer.split_whitespace().nth(1).unwrap_or("?").to_string();
        log.lock()
            .unwrap()
            .push(format!("{method} {path} -> injected {status}"));
        let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}"#;
        // A `HEAD` answer announces the body's length but carries none.
        let sent = if method == "HEAD" { "" } else { body };
        write!(
            client,
            "{answer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sent}",
            body.len()
        )?;
        client.flush()?;
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    log.lock()
        .unwrap()
        .push(format!("{method} {path} -> forwarded"));
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(head.as_bytes())?;
    server.write_all(&body)?;
    std::io::copy(&mut server, &mut client)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
