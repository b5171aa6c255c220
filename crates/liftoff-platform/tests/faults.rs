//! Injected faults, as client tests use them.

mod common;

use std::time::{Duration, Instant};

use common::{Api, PAT, PROD_KEY, PROJECT, names, start};
use liftoff_platform::Fault;
use serde_json::{Value, json};

#[test]
fn fail_next_request_fires_once_on_the_matching_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    platform.set_fault(Fault::FailNextRequest {
        path_contains: "/api/v1/deployments".into(),
        status: 503,
        body: r#"{"error":"Service unavailable"}"#.into(),
    });
    // another path is not affected
    let (status, _) = api.get("/api/v2/whoami", Some(PAT));
    assert_eq!(status, 200);
    let (status, body) = api.post(
        "/api/v1/deployments",
        Some(PROD_KEY),
        &json!({ "contentHash": "h" }),
    );
    assert_eq!(
        (status, body),
        (503, json!({ "error": "Service unavailable" }))
    );
    assert!(
        platform.state().expect("state").deployments.is_empty(),
        "nothing created"
    );
    assert_eq!(platform.pending_fault(), Fault::None);
    let (status, _) = api.post(
        "/api/v1/deployments",
        Some(PROD_KEY),
        &json!({ "contentHash": "h" }),
    );
    assert_eq!(status, 200);

    // a non-JSON body is sent as text
    platform.set_fault(Fault::FailNextRequest {
        path_contains: "whoami".into(),
        status: 502,
        body: "bad gateway".into(),
    });
    let (status, body) = api.get("/api/v2/whoami", Some(PAT));
    assert_eq!((status, body), (502, Value::String("bad gateway".into())));
    platform.stop();
}

#[test]
fn fail_requests_counts_for_retry_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    platform.set_fault(Fault::FailRequests {
        path_contains: "/envvars".into(),
        status: 500,
        body: r#"{"error":"Internal server error"}"#.into(),
        times: 3,
    });
    let path = format!("/api/v1/projects/{PROJECT}/envvars");
    let statuses: Vec<u16> = (0..4).map(|_| api.get(&path, Some(PROD_KEY)).0).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    let log: Vec<u16> = platform
        .requests()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.status)
        .collect();
    assert_eq!(log, [500, 500, 500, 200]);
    platform.stop();
}

#[test]
fn finalize_error_event_leaves_the_deployment_deploying() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let built = api.built(PROD_KEY, &["t"]);
    let id = built["id"].as_str().expect("id");
    platform.set_fault(Fault::FinalizeError {
        message: "Error pushing image".into(),
    });
    let body = json!({ "imageReference": "x", "selfHosted": true });
    let stream = api.finalize(id, PROD_KEY, &body, None);
    assert_eq!(stream.status, 200);
    assert_eq!(names(&stream), ["error"]);
    assert_eq!(
        stream.events[0].data,
        json!({ "error": "Error pushing image" })
    );
    assert_eq!(
        platform
            .state()
            .expect("state")
            .deployment(id)
            .expect("d")
            .status,
        "DEPLOYING"
    );
    // the fault fired once: a retry completes
    let stream = api.finalize(id, PROD_KEY, &body, None);
    assert_eq!(names(&stream), ["complete"]);
    platform.stop();
}

#[test]
fn finalize_logs_and_pings_then_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let built = api.built(PROD_KEY, &["t"]);
    let id = built["id"].as_str().expect("id");
    platform.set_fault(Fault::FinalizeLogs {
        pings: 2,
        lines: vec!["Pushing layer 1/2".into(), "Pushing layer 2/2".into()],
    });
    let stream = api.finalize(
        id,
        PROD_KEY,
        &json!({ "imageReference": "x", "selfHosted": true }),
        None,
    );
    assert_eq!(names(&stream), ["ping", "ping", "log", "log", "complete"]);
    assert_eq!(stream.events[0].data, json!({}));
    assert_eq!(
        stream.events[2].data,
        json!({ "message": "Pushing layer 1/2" })
    );
    let state = platform.state().expect("state");
    assert_eq!(state.deployment(id).expect("d").status, "DEPLOYED");
    assert_eq!(
        state.current_version(PROJECT, "prod"),
        built["version"].as_str()
    );
    platform.stop();
}

#[test]
fn finalize_disconnect_ends_without_a_terminal_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let built = api.built(PROD_KEY, &["t"]);
    let id = built["id"].as_str().expect("id");
    platform.set_fault(Fault::FinalizeDisconnect);
    let stream = api.finalize(
        id,
        PROD_KEY,
        &json!({ "imageReference": "x", "selfHosted": true }),
        None,
    );
    assert_eq!(stream.status, 200);
    assert!(stream.events.is_empty());
    assert!(!stream.timed_out);
    assert_eq!(
        platform
            .state()
            .expect("state")
            .deployment(id)
            .expect("d")
            .status,
        "DEPLOYING"
    );
    platform.stop();
}

#[test]
fn finalize_hang_times_out_the_client_and_stop_releases_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let built = api.built(PROD_KEY, &["t"]);
    let id = built["id"].as_str().expect("id");
    platform.set_fault(Fault::FinalizeHang);
    let started = Instant::now();
    let stream = api.finalize(
        id,
        PROD_KEY,
        &json!({ "imageReference": "x", "selfHosted": true }),
        Some(Duration::from_millis(500)),
    );
    assert_eq!(stream.status, 200);
    assert!(stream.timed_out, "{stream:?}");
    assert!(stream.events.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    // the server stays usable while a stream hangs
    let (status, d) = api.get(&format!("/api/v1/deployments/{id}"), Some(PROD_KEY));
    assert_eq!((status, d["status"].as_str()), (200, Some("DEPLOYING")));
    let stopping = Instant::now();
    platform.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "stop ends the hanging stream"
    );
}
