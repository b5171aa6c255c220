//! What a handler answers: JSON, text, or an SSE stream.

use serde_json::{Value, json};

use super::sse::SseStream;

/// A handler's answer. `Result<Reply, Reply>` lets handlers use `?` on
/// early exits (auth, validation, database errors).
pub enum Reply {
    Json(u16, Value),
    Text {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    Sse(Box<dyn FnOnce(&mut SseStream) + Send>),
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply::Json(200, body)
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Self {
        Reply::Json(status, json!({ "error": message }))
    }

    pub fn not_found() -> Self {
        Reply::Text {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            body: "Not Found".to_owned(),
        }
    }

    pub fn method_not_allowed() -> Self {
        Reply::Text {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            body: "Method Not Allowed".to_owned(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Reply::Text {
            status,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Reply::Json(status, _) | Reply::Text { status, .. } => *status,
            Reply::Sse(_) => 200,
        }
    }
}

impl From<rusqlite::Error> for Reply {
    fn from(_: rusqlite::Error) -> Self {
        Reply::error(500, "Internal server error")
    }
}

/// Either arm of a handler result is an answer.
pub fn flatten(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|reply| reply)
}
