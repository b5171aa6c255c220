//! `POST /api/v3/deployments/{id}/finalize`: the SSE stream (§2.3).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::guard;
use crate::db::{EnvRow, FinalizeOutcome, PromoteBy, PromoteError};
use crate::fault::FinalizeFault;
use crate::http::Req;
use crate::http::reply::Reply;
use crate::http::sse::SseStream;
use crate::http::validate::{Checker, parse_json};
use crate::shared::{Shared, lock};

/// Longest a `FinalizeHang` stream is held open when the platform keeps running.
const HANG_LIMIT: Duration = Duration::from_mins(10);

struct Body {
    image_reference: String,
    self_hosted: bool,
    skip_promotion: bool,
}

fn body(req: &Req) -> Result<Body, Reply> {
    let value = parse_json(&req.body, 400)?;
    let mut check = Checker::default();
    let mut out = None;
    if let Some(obj) = check.object(Some(&value), &[]) {
        let image_reference = check.string(obj, "imageReference", &[]);
        let self_hosted = check.opt_boolean(obj, "selfHosted", &[]);
        check.opt_boolean(obj, "skipRegistryProxy", &[]);
        let skip_promotion = check.opt_boolean(obj, "skipPromotion", &[]);
        out = image_reference.map(|image_reference| Body {
            image_reference,
            self_hosted: self_hosted.unwrap_or(false),
            skip_promotion: skip_promotion.unwrap_or(false),
        });
    }
    check.finish()?;
    out.ok_or_else(|| Reply::error(400, "Invalid body"))
}

pub fn finalize(shared: &Arc<Shared>, req: &Req, id: &str) -> Result<Reply, Reply> {
    let env = guard::environment(shared, req)?;
    let body = body(req)?;
    shared.sweep_timeouts()?;
    let shared = Arc::clone(shared);
    let id = id.to_owned();
    Ok(Reply::Sse(Box::new(move |stream: &mut SseStream| {
        run(&shared, &env, &id, &body, stream);
    })))
}

fn run(shared: &Shared, env: &EnvRow, id: &str, body: &Body, stream: &mut SseStream) {
    let fault = lock(&shared.fault).take_for_finalize();
    match fault {
        Some(FinalizeFault::Error(message)) => {
            stream.event("error", &json!({ "error": message }));
            return;
        }
        Some(FinalizeFault::Disconnect) => return,
        Some(FinalizeFault::Hang) => {
            let started = std::time::Instant::now();
            while !shared.is_shutting_down() && started.elapsed() < HANG_LIMIT {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Some(FinalizeFault::Logs { pings, lines }) => {
            for _ in 0..pings {
                stream.event("ping", &json!({}));
            }
            for line in lines {
                stream.event("log", &json!({ "message": line }));
            }
        }
        None => {}
    }
    match outcome(shared, env, id, body) {
        Ok(()) => stream.event("complete", &json!({ "id": id })),
        Err(message) => stream.event("error", &json!({ "error": message })),
    }
}

/// v2 → v1 finalize, then promotion unless skipped. `Err` is the message
/// of the `error` event.
fn outcome(shared: &Shared, env: &EnvRow, id: &str, body: &Body) -> Result<(), Value> {
    let internal = |_| Value::from("Internal server error");
    let finalized = lock(&shared.store)
        .finalize_deployment(
            env,
            id,
            &body.image_reference,
            !body.self_hosted,
            shared.now(),
        )
        .map_err(internal)?
        .map_err(Value::from)?;
    if finalized != FinalizeOutcome::Deployed || body.skip_promotion {
        return Ok(());
    }
    // As upstream: a promotion failure surfaces after the deployment is DEPLOYED.
    match lock(&shared.store).promote(env, PromoteBy::Id, id, shared.now()) {
        Ok(_) | Err(PromoteError::NotFound) => Ok(()),
        Err(PromoteError::Rejected(message)) => Err(Value::from(message)),
        Err(PromoteError::Sql(e)) => Err(internal(e)),
    }
}
