//! The synchronous HTTP server: a few threads pulling requests from `tiny_http`.

pub mod reply;
pub mod sse;
pub mod validate;

use std::io::Read;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tiny_http::{Header, Method, Server};

use crate::fault::RequestFault;
use crate::routes;
use crate::shared::{RequestRecord, Shared, lock};
use reply::Reply;
use sse::SseStream;

const THREADS: usize = 8;
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// A request, read whole.
pub struct Req {
    pub method: Method,
    /// Without the query string.
    pub path: String,
    /// The `Authorization: Bearer …` token.
    pub bearer: Option<String>,
    pub body: Vec<u8>,
}

pub fn spawn_workers(server: &Arc<Server>, shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..THREADS)
        .filter_map(|i| {
            let server = Arc::clone(server);
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("liftoff-platform-{i}"))
                .spawn(move || worker_loop(&server, &shared))
                .ok()
        })
        .collect()
}

fn worker_loop(server: &Server, shared: &Arc<Shared>) {
    while !shared.is_shutting_down() {
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) {
            serve(request, shared);
        }
    }
}

fn bearer(request: &tiny_http::Request) -> Option<String> {
    let header = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))?;
    let value = header.value.as_str().trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The path as recorded: authorization codes are secrets until used.
fn redact(path: &str) -> String {
    match path.strip_prefix("/account/authorization-code/") {
        Some(_) => "/account/authorization-code/<redacted>".to_owned(),
        None => path.to_owned(),
    }
}

fn serve(mut request: tiny_http::Request, shared: &Arc<Shared>) {
    let started = Instant::now();
    let mut body = Vec::new();
    let read_ok = request
        .as_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .is_ok();
    let url = request.url().to_owned();
    let path = url.split(['?', '#']).next().unwrap_or("/").to_owned();
    let req = Req {
        method: request.method().clone(),
        path,
        bearer: bearer(&request),
        body,
    };
    let injected = lock(&shared.fault).take_for_request(&req.path);
    let reply = if let Some(RequestFault::Respond { status, body }) = injected {
        match serde_json::from_str::<Value>(&body) {
            Ok(json) => Reply::Json(status, json),
            Err(_) => Reply::Text {
                status,
                content_type: "text/plain; charset=utf-8",
                body,
            },
        }
    } else if read_ok {
        routes::handle(shared, &req)
    } else {
        Reply::error(400, "Could not read the request body")
    };
    // Recorded before the answer goes out, so a client that got its answer
    // finds the request in `Platform::requests` (streams: when they start).
    shared.record(RequestRecord {
        method: req.method.as_str().to_owned(),
        path: redact(&req.path),
        status: reply.status(),
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    send(request, reply);
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn send(request: tiny_http::Request, reply: Reply) {
    let (status, content_type, body) = match reply {
        Reply::Sse(run) => {
            let mut stream = SseStream::start(request.into_writer());
            run(&mut stream);
            stream.finish();
            return;
        }
        Reply::Json(status, value) => {
            (status, "application/json; charset=utf-8", value.to_string())
        }
        Reply::Text {
            status,
            content_type,
            body,
        } => (status, content_type, body),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Some(h) = header("Content-Type", content_type) {
        response.add_header(h);
    }
    // The client may be gone; nothing to do about it.
    let _ = request.respond(response);
}
