//! A tiny token service for the registry's `auth.token` mode: it hands out JWTs signed (with
//! `openssl`) by a key whose certificate the registry trusts. Anonymous callers get pull access
//! (only `pull`, whatever they ask for) to `public/*`; `USER:PASSWORD` (Basic) or the refresh
//! token `REFRESH` get everything they ask for. A `scope` value may hold several scopes
//! separated by spaces (the `OAuth2` form does that). [`TokenService::set_lifetime`] makes
//! short-lived tokens.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::run;

pub const SERVICE: &str = "liftoff-test-registry";
pub const ISSUER: &str = "liftoff-test-issuer";
pub const REFRESH: &str = "refresh-token-123";
/// How long past its `exp` the registry still accepts a token (distribution's clock-skew
/// allowance, `token.Leeway`).
const REGISTRY_LEEWAY: u64 = 60;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub params: HashMap<String, Vec<String>>,
    pub authorization: Option<String>,
}

pub struct TokenService {
    pub realm: String,
    pub cert: std::path::PathBuf,
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// `(expires_in announced, seconds the registry accepts the token for)`.
    lifetime: Arc<(AtomicU64, AtomicU64)>,
}

impl TokenService {
    /// Tokens issued from now on announce `expires_in` seconds and are accepted by the registry
    /// for `valid_for` seconds (at least; the JWT's `exp` has a one-second resolution).
    pub fn set_lifetime(&self, expires_in: u64, valid_for: u64) {
        self.lifetime.0.store(expires_in, Ordering::SeqCst);
        self.lifetime.1.store(valid_for, Ordering::SeqCst);
    }
}

pub fn start(dir: &Path, user: &str, password: &str) -> TokenService {
    run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "token.key",
        "-out",
        "token.crt",
        "-subj",
        "/CN=liftoff token signer",
    ]));
    let der = run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-in",
        "token.crt",
        "-outform",
        "DER",
    ]));
    let x5c = STANDARD.encode(der);
    let key = dir.join("token.key");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let lifetime = Arc::new((AtomicU64::new(300), AtomicU64::new(600)));
    let policy = lifetime.clone();
    let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let request = read_request(&mut stream);
            log.lock().unwrap().push(request.clone());
            let authenticated = request.authorization.as_deref() == Some(basic.as_str())
                || request
                    .params
                    .get("refresh_token")
                    .is_some_and(|t| t == &[REFRESH]);
            let wrong_credentials = !authenticated
                && (request.authorization.is_some()
                    || request.params.contains_key("refresh_token"));
            let response = if wrong_credentials {
                let body = r#"{"details":"incorrect username or password"}"#;
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                let access: Vec<String> = request
                    .params
                    .get("scope")
                    .into_iter()
                    .flatten()
                    .flat_map(|value| value.split_whitespace())
                    .filter_map(|scope| {
                        let mut parts = scope.splitn(3, ':');
                        let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                        let granted: Vec<String> = actions
                            .split(',')
                            .filter(|a| {
                                authenticated || (name.starts_with("public/") && *a == "pull")
                            })
                            .map(|a| format!("\"{a}\""))
                            .collect();
                        (!granted.is_empty()).then(|| {
                            format!(
                                r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                                granted.join(",")
                            )
                        })
                    })
                    .collect();
                let (expires_in, valid_for) = (
                    policy.0.load(Ordering::SeqCst),
                    policy.1.load(Ordering::SeqCst),
                );
                let token = sign(&key, &x5c, &access.join(","), valid_for);
                let body = format!(r#"{{"token":"{token}","expires_in":{expires_in}}}"#);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    TokenService {
        realm,
        cert: dir.join("token.crt"),
        requests,
        lifetime,
    }
}

/// A JWT the registry accepts for `valid_for` seconds (plus less than one).
fn sign(key: &Path, x5c: &str, access: &str, valid_for: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = format!(r#"{{"typ":"JWT","alg":"RS256","x5c":["{x5c}"]}}"#);
    let claims = format!(
        r#"{{"iss":"{ISSUER}","sub":"tester","aud":"{SERVICE}","exp":{},"nbf":{},"iat":{},"jti":"{now}-{}","access":[{access}]}}"#,
        (now + valid_for + 1).saturating_sub(REGISTRY_LEEWAY),
        now - 60,
        now - 60,
        access.len()
    );
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(output.stdout))
}

fn read_request(stream: &mut std::net::TcpStream) -> Request {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (mut authorization, mut length) = (None, 0);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_string()),
            "content-length" => length = value.trim().parse().unwrap(),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let query = target
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query
        .split('&')
        .chain(String::from_utf8(body).unwrap().split('&'))
    {
        if let Some((k, v)) = pair.split_once('=') {
            params.entry(decode(k)).or_default().push(decode(v));
        }
    }
    Request {
        method,
        params,
        authorization,
    }
}

fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}
