//! Request bodies are validated against the documented shapes.

mod common;

use common::{Api, PROD_KEY, start};
use serde_json::{Value, json};

fn issue_paths(body: &Value) -> Vec<String> {
    body["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| {
            i["path"]
                .as_array()
                .expect("path")
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn invalid_bodies_are_400_with_issues_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());

    // initialize
    let (status, body) = api.post("/api/v1/deployments", Some(PROD_KEY), &json!({}));
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Invalid body");
    assert_eq!(body["issues"][0]["code"], "invalid_type");
    assert_eq!(body["issues"][0]["message"], "Required");
    assert_eq!(issue_paths(&body), ["contentHash"]);
    let (status, body) = api.post(
        "/api/v1/deployments",
        Some(PROD_KEY),
        &json!({ "contentHash": 5, "selfHosted": "yes", "namespace": null }),
    );
    assert_eq!(status, 400);
    assert_eq!(
        issue_paths(&body),
        ["contentHash", "selfHosted", "namespace"]
    );
    let (status, body) = api.post_raw("/api/v1/deployments", Some(PROD_KEY), Some("{not json"));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("Invalid body"))
    );
    let (status, _) = api.post("/api/v1/deployments", Some(PROD_KEY), &json!([1, 2]));
    assert_eq!(status, 400);
    assert!(platform.state().expect("state").deployments.is_empty());

    // background workers
    let created = api.initialize(PROD_KEY, "h");
    let id = created["id"].as_str().expect("id");
    let path = format!("/api/v1/deployments/{id}/background-workers");
    let (status, body) = api.post(&path, Some(PROD_KEY), &json!({ "metadata": {} }));
    assert_eq!(status, 400);
    assert_eq!(
        issue_paths(&body),
        [
            "localOnly",
            "metadata.packageVersion",
            "metadata.contentHash",
            "metadata.tasks"
        ]
    );
    let (status, body) = api.post(
        &path,
        Some(PROD_KEY),
        &json!({
            "localOnly": true,
            "metadata": {
                "packageVersion": "3.3.17",
                "contentHash": "h",
                "tasks": [
                    { "id": "ok", "filePath": "a.ts", "exportName": "ok" },
                    { "id": 1, "filePath": "a.ts", "maxDuration": "long", "schedule": { "cron": "* *" } }
                ],
                "sourceFiles": [{ "filePath": "a.ts", "contents": "", "contentHash": "x", "taskIds": [3] }]
            }
        }),
    );
    assert_eq!(status, 400);
    assert_eq!(
        issue_paths(&body),
        [
            "metadata.tasks.1.id",
            "metadata.tasks.1.exportName",
            "metadata.tasks.1.maxDuration",
            "metadata.tasks.1.schedule.cron",
            "metadata.sourceFiles.0.taskIds.0"
        ]
    );
    assert_eq!(
        platform.state().expect("state").deployments[0].status,
        "BUILDING"
    );

    // fail
    let (status, body) = api.post(
        &format!("/api/v1/deployments/{id}/fail"),
        Some(PROD_KEY),
        &json!({ "error": { "name": "E" } }),
    );
    assert_eq!(
        (status, issue_paths(&body)),
        (400, vec!["error.message".to_owned()])
    );
    let (status, _) = api.post(
        &format!("/api/v1/deployments/{id}/fail"),
        Some(PROD_KEY),
        &json!({ "error": "boom" }),
    );
    assert_eq!(status, 400);
    assert_eq!(
        platform.state().expect("state").deployments[0].status,
        "BUILDING"
    );

    // finalize: 400 JSON before the stream
    let (status, body) = api.post(
        &format!("/api/v3/deployments/{id}/finalize"),
        Some(PROD_KEY),
        &json!({ "selfHosted": "true", "skipPromotion": 1 }),
    );
    assert_eq!(status, 400);
    assert_eq!(
        issue_paths(&body),
        ["imageReference", "selfHosted", "skipPromotion"]
    );

    // env var import
    let (status, body) = api.post(
        &format!("/api/v1/projects/{}/envvars/prod/import", common::PROJECT),
        Some(PROD_KEY),
        &json!({ "variables": { "A": 1 }, "override": "yes" }),
    );
    assert_eq!(
        (status, issue_paths(&body)),
        (400, vec!["variables.A".to_owned(), "override".to_owned()])
    );

    // token: 422 on a bad body
    let (status, body) = api.post("/api/v1/token", None, &json!({}));
    assert_eq!(
        (status, issue_paths(&body)),
        (422, vec!["authorizationCode".to_owned()])
    );
    platform.stop();
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let (status, body) = api.get("/api/v1/deployments", Some(PROD_KEY));
    assert_eq!(
        (status, body),
        (405, Value::String("Method Not Allowed".into()))
    );
    let (status, _) = api.post_raw("/api/v1/deployments/deployment_x", Some(PROD_KEY), None);
    assert_eq!(status, 405);
    let (status, _) = api.get("/api/v9/nothing", None);
    assert_eq!(status, 404);
    let (status, body) = api.get("/liftoff/health", None);
    assert_eq!((status, body), (200, json!({ "ok": true })));
    platform.stop();
}
