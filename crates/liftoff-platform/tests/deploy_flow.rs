//! The documented deploy flow, driven as the CLI and the index controller do.

mod common;

use std::time::Duration;

use common::{Api, PAT, PROD_KEY, PROJECT, STG_KEY, USER, names, start, today};
use serde_json::json;

#[test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn full_deploy_flow_with_and_without_promotion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());

    // login: whoami with the PAT
    let (status, me) = api.get("/api/v2/whoami", Some(PAT));
    assert_eq!(status, 200);
    assert_eq!(me["userId"], USER);
    assert_eq!(me["dashboardUrl"], platform.url());
    assert!(me["email"].as_str().is_some_and(|e| e.contains('@')));

    // project client: PAT → env key + apiUrl
    let (status, env) = api.get(&format!("/api/v1/projects/{PROJECT}/prod"), Some(PAT));
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["apiKey"], PROD_KEY);
    assert_eq!(env["name"], "Hello world");
    assert_eq!(env["apiUrl"], platform.url());
    let project_id = env["projectId"].as_str().expect("projectId").to_owned();
    let (_, staging) = api.get(&format!("/api/v1/projects/{PROJECT}/staging"), Some(PAT));
    assert_eq!(staging["apiKey"], STG_KEY);

    // env vars with the env key
    let (status, vars) = api.get(
        &format!("/api/v1/projects/{PROJECT}/envvars"),
        Some(PROD_KEY),
    );
    assert_eq!(status, 200);
    assert_eq!(
        vars,
        json!({ "variables": { "DATABASE_URL": "postgres://db/prod" } })
    );

    // initialize twice on one day: .1 then .2, image tags per §2.6
    let first = api.initialize(PROD_KEY, "hash-1");
    let second = api.initialize(PROD_KEY, "hash-2");
    let day = today(0);
    assert_eq!(first["version"], format!("{day}.1"));
    assert_eq!(second["version"], format!("{day}.2"));
    assert_eq!(first["imageTag"], format!("trigger/{PROJECT}:{day}.1.prod"));
    assert_eq!(first["registryHost"], "registry.test.invalid");
    assert_eq!(first["externalBuildData"], serde_json::Value::Null);
    assert_eq!(first["contentHash"], "hash-1");
    let id1 = first["id"].as_str().expect("id").to_owned();
    let id2 = second["id"].as_str().expect("id").to_owned();
    assert!(id1.starts_with("deployment_") && id1.len() == 32, "{id1}");
    let short = first["shortCode"].as_str().expect("shortCode");
    assert_eq!(short.len(), 8);
    assert!(
        short
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    );

    // staging numbers independently and uses the stg slug
    let stg = api.initialize(STG_KEY, "hash-s");
    assert_eq!(stg["version"], format!("{day}.1"));
    assert_eq!(stg["imageTag"], format!("trigger/{PROJECT}:{day}.1.stg"));

    // GET before the worker: BUILDING, no worker key
    let (status, d) = api.get(&format!("/api/v1/deployments/{id1}"), Some(PROD_KEY));
    assert_eq!(status, 200);
    assert_eq!(d["status"], "BUILDING");
    assert!(d.get("worker").is_none());
    assert_eq!(d["imageReference"], serde_json::Value::Null);
    assert_eq!(d["errorData"], serde_json::Value::Null);

    // the index controller registers the worker: BUILDING → DEPLOYING
    let (status, worker) = api.register_worker(PROD_KEY, &id1, &["hello-world", "second-task"]);
    assert_eq!(status, 200, "{worker}");
    assert!(
        worker["id"]
            .as_str()
            .is_some_and(|w| w.starts_with("worker_"))
    );
    assert_eq!(worker["version"], first["version"]);
    assert_eq!(worker["contentHash"], "hash-123");
    // a second registration is refused (no longer BUILDING)
    let (status, again) = api.register_worker(PROD_KEY, &id1, &["hello-world"]);
    assert_eq!(
        (status, again),
        (500, json!({"error": "Failed to create background worker"}))
    );

    let (_, d) = api.get(&format!("/api/v1/deployments/{id1}"), Some(PROD_KEY));
    assert_eq!(d["status"], "DEPLOYING");
    assert_eq!(d["worker"]["id"], worker["id"]);
    assert_eq!(d["worker"]["version"], first["version"]);
    let tasks = d["worker"]["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["slug"], "hello-world");
    assert_eq!(tasks[0]["filePath"], "src/trigger/hello-world.ts");
    assert_eq!(tasks[0]["exportName"], "hello_world");
    assert!(
        tasks[0]["id"]
            .as_str()
            .is_some_and(|t| t.starts_with("task_"))
    );

    // finalize .1 with skipPromotion: DEPLOYED, current unchanged
    let image1 = format!(
        "registry.test.invalid/{}",
        first["imageTag"].as_str().expect("tag")
    );
    let stream = api.finalize(
        &id1,
        PROD_KEY,
        &json!({ "imageReference": image1, "selfHosted": true, "skipPromotion": true }),
        None,
    );
    assert_eq!(stream.status, 200);
    assert_eq!(stream.content_type, "text/event-stream");
    assert_eq!(names(&stream), ["complete"]);
    assert_eq!(stream.events[0].data, json!({ "id": id1 }));
    let state = platform.state().expect("state");
    assert_eq!(state.deployment(&id1).expect("d1").status, "DEPLOYED");
    assert_eq!(
        state
            .deployment(&id1)
            .expect("d1")
            .image_reference
            .as_deref(),
        Some(image1.as_str())
    );
    assert_eq!(state.current_version(PROJECT, "prod"), None);
    let workers = state.tasks_of(worker["id"].as_str().expect("worker id"));
    assert_eq!(workers.len(), 2);
    assert_eq!(workers[0].resource["queue"]["concurrencyLimit"], 5);
    assert_eq!(
        state
            .deployment(&id1)
            .expect("d1")
            .triggered_by_id
            .as_deref(),
        Some(USER)
    );
    assert_eq!(state.projects[0].id, project_id);

    // finalize is idempotent on DEPLOYED
    let again = api.finalize(
        &id1,
        PROD_KEY,
        &json!({ "imageReference": image1, "selfHosted": true }),
        None,
    );
    assert_eq!(names(&again), ["complete"]);
    assert_eq!(
        platform
            .state()
            .expect("state")
            .current_version(PROJECT, "prod"),
        None
    );

    // promote .1 by version
    let v1 = first["version"].as_str().expect("v1");
    let (status, promoted) = api.post_raw(
        &format!("/api/v1/deployments/{v1}/promote"),
        Some(PROD_KEY),
        None,
    );
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(
        promoted,
        json!({ "id": id1, "version": v1, "shortCode": first["shortCode"] })
    );
    assert_eq!(
        platform
            .state()
            .expect("state")
            .current_version(PROJECT, "prod"),
        Some(v1)
    );
    let (status, dup) = api.post_raw(
        &format!("/api/v1/deployments/{v1}/promote"),
        Some(PROD_KEY),
        None,
    );
    assert_eq!(
        (status, dup),
        (
            400,
            json!({"error": "Deployment is already the current deployment."})
        )
    );

    // .2: promote before DEPLOYED is refused, finalize without skipPromotion promotes
    let v2 = second["version"].as_str().expect("v2");
    let (status, refused) = api.post_raw(
        &format!("/api/v1/deployments/{v2}/promote"),
        Some(PROD_KEY),
        None,
    );
    assert_eq!(
        (status, refused),
        (
            400,
            json!({"error": "Deployment is not associated with a worker and cannot be promoted."})
        )
    );
    let (status, _) = api.register_worker(PROD_KEY, &id2, &["hello-world"]);
    assert_eq!(status, 200);
    let (status, refused) = api.post_raw(
        &format!("/api/v1/deployments/{v2}/promote"),
        Some(PROD_KEY),
        None,
    );
    assert_eq!(
        (status, refused),
        (
            400,
            json!({"error": "Deployment must be in the DEPLOYED state to be promoted."})
        )
    );
    let stream = api.finalize(
        &id2,
        PROD_KEY,
        &json!({ "imageReference": "img@sha256:00", "selfHosted": true }),
        None,
    );
    assert_eq!(names(&stream), ["complete"]);
    let state = platform.state().expect("state");
    assert_eq!(state.current_version(PROJECT, "prod"), Some(v2));
    assert_eq!(
        state
            .environment(PROJECT, "prod")
            .and_then(|e| e.current_deployment_id.as_deref()),
        Some(id2.as_str())
    );

    // promoting the older .1 now fails; unknown version is 404
    let (status, older) = api.post_raw(
        &format!("/api/v1/deployments/{v1}/promote"),
        Some(PROD_KEY),
        None,
    );
    assert_eq!(
        (status, older),
        (
            400,
            json!({"error": "Cannot promote a deployment that is older than the current deployment."})
        )
    );
    let (status, missing) = api.post_raw(
        "/api/v1/deployments/20000101.1/promote",
        Some(PROD_KEY),
        None,
    );
    assert_eq!(
        (status, missing),
        (404, json!({"error": "Deployment not found"}))
    );
    // versions are per environment: staging has no .2, and its own .1 is not DEPLOYED
    let (status, _) = api.post_raw(
        &format!("/api/v1/deployments/{v2}/promote"),
        Some(STG_KEY),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = api.post_raw(
        &format!("/api/v1/deployments/{v1}/promote"),
        Some(STG_KEY),
        None,
    );
    assert_eq!(status, 400);

    // staging's current is untouched by prod
    assert_eq!(
        platform
            .state()
            .expect("state")
            .current_version(PROJECT, "stg"),
        None
    );
    platform.stop();
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn finalize_preconditions_and_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());

    // finalize while BUILDING (no worker yet)
    let building = api.initialize(PROD_KEY, "h");
    let id = building["id"].as_str().expect("id");
    let stream = api.finalize(
        id,
        PROD_KEY,
        &json!({ "imageReference": "x", "selfHosted": true }),
        None,
    );
    assert_eq!(stream.status, 200);
    assert_eq!(names(&stream), ["error"]);
    assert_eq!(
        stream.events[0].data,
        json!({ "error": "Worker deployment does not have a worker" })
    );

    // fail after initialize: FAILED with errorData; a second fail is ignored
    let (status, body) = api.post(
        &format!("/api/v1/deployments/{id}/fail"),
        Some(PROD_KEY),
        &json!({ "error": { "name": "BuildError", "message": "Error building image" } }),
    );
    assert_eq!((status, body), (200, json!({ "id": id })));
    let (_, d) = api.get(&format!("/api/v1/deployments/{id}"), Some(PROD_KEY));
    assert_eq!(d["status"], "FAILED");
    assert_eq!(
        d["errorData"],
        json!({ "name": "BuildError", "message": "Error building image" })
    );
    let (status, _) = api.post(
        &format!("/api/v1/deployments/{id}/fail"),
        Some(PROD_KEY),
        &json!({ "error": { "name": "Other", "message": "second" } }),
    );
    assert_eq!(status, 200);
    let (_, d) = api.get(&format!("/api/v1/deployments/{id}"), Some(PROD_KEY));
    assert_eq!(d["errorData"]["name"], "BuildError");
    // the worker can no longer be registered
    let (status, _) = api.register_worker(PROD_KEY, id, &["t"]);
    assert_eq!(status, 500);

    // fail on an unknown deployment still answers {id}
    let (status, body) = api.post(
        "/api/v1/deployments/deployment_unknown/fail",
        Some(PROD_KEY),
        &json!({ "error": { "name": "E", "message": "m" } }),
    );
    assert_eq!((status, body), (200, json!({ "id": "deployment_unknown" })));

    // a failed deployment with a worker: finalize says not DEPLOYING
    let built = api.built(PROD_KEY, &["t"]);
    let bid = built["id"].as_str().expect("id");
    api.post(
        &format!("/api/v1/deployments/{bid}/fail"),
        Some(PROD_KEY),
        &json!({ "error": { "name": "DeploymentError", "message": "x", "stack": "at y", "stderr": "boom" } }),
    );
    let stream = api.finalize(
        bid,
        PROD_KEY,
        &json!({ "imageReference": "x", "selfHosted": true }),
        None,
    );
    assert_eq!(
        stream.events[0].data,
        json!({ "error": "Worker deployment is not in DEPLOYING status" })
    );
    let state = platform.state().expect("state");
    assert_eq!(
        state
            .deployment(bid)
            .and_then(|d| d.error_data.clone())
            .expect("error")["stderr"],
        "boom"
    );

    // a non-self-hosted finalize needs Depot build data this platform never has
    let built = api.built(PROD_KEY, &["t"]);
    let cid = built["id"].as_str().expect("id");
    let stream = api.finalize(cid, PROD_KEY, &json!({ "imageReference": "x" }), None);
    assert_eq!(
        stream.events[0].data,
        json!({ "error": "External build data is missing" })
    );
    assert_eq!(
        platform
            .state()
            .expect("state")
            .deployment(cid)
            .expect("d")
            .status,
        "DEPLOYING"
    );

    // finalize of an unknown deployment completes silently (upstream quirk)
    let stream = api.finalize(
        "deployment_nope",
        PROD_KEY,
        &json!({ "imageReference": "x", "selfHosted": true }),
        None,
    );
    assert_eq!(names(&stream), ["complete"]);

    // duplicate task ids fail the deployment
    let dup = api.initialize(PROD_KEY, "h");
    let did = dup["id"].as_str().expect("id");
    let (status, body) = api.register_worker(PROD_KEY, did, &["same", "same"]);
    assert_eq!(
        (status, body),
        (400, json!({"error": "Duplicate task id \"same\""}))
    );
    let (_, d) = api.get(&format!("/api/v1/deployments/{did}"), Some(PROD_KEY));
    assert_eq!(d["status"], "FAILED");
    platform.stop();
}

#[test]
fn version_numbering_rolls_over_and_building_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());

    let a = api.initialize(PROD_KEY, "h");
    assert_eq!(a["version"], format!("{}.1", today(0)));
    // latest is taken in any status: a failed .1 still makes the next .2
    let (status, _) = api.post(
        &format!("/api/v1/deployments/{}/fail", a["id"].as_str().expect("id")),
        Some(PROD_KEY),
        &json!({ "error": { "name": "E", "message": "m" } }),
    );
    assert_eq!(status, 200);
    assert_eq!(
        api.initialize(PROD_KEY, "h")["version"],
        format!("{}.2", today(0))
    );

    // the next UTC day starts again at .1; the earlier BUILDING one times out (8 min)
    platform.advance_clock(Duration::from_hours(24));
    let next = api.initialize(PROD_KEY, "h");
    assert_eq!(next["version"], format!("{}.1", today(1)));
    let state = platform.state().expect("state");
    assert_eq!(state.deployments[1].status, "TIMED_OUT");
    assert_eq!(
        state.deployments[1].error_data,
        Some(json!({"name": "TimeoutError", "message": "Building timed out"}))
    );
    assert_eq!(state.deployments[2].status, "BUILDING");

    // a shorter timeout applies on the next request; DEPLOYING is not timed out
    let built = api.built(PROD_KEY, &["t"]);
    platform.set_deploy_timeout(Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(20));
    let (_, d) = api.get(
        &format!("/api/v1/deployments/{}", next["id"].as_str().expect("id")),
        Some(PROD_KEY),
    );
    assert_eq!(d["status"], "TIMED_OUT");
    let (_, d) = api.get(
        &format!("/api/v1/deployments/{}", built["id"].as_str().expect("id")),
        Some(PROD_KEY),
    );
    assert_eq!(d["status"], "DEPLOYING");
    platform.stop();
}

#[test]
fn namespace_and_registry_host_from_the_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config(&dir.path().join("p.sqlite"));
    config.registry_host = None;
    config.namespace = "myuser".to_owned();
    let platform = liftoff_platform::Platform::start(config).expect("start");
    let api = Api::new(&platform.url());

    let (status, plain) = api.post(
        "/api/v1/deployments",
        Some(PROD_KEY),
        &json!({ "contentHash": "h" }),
    );
    assert_eq!(status, 200);
    assert!(
        plain.get("registryHost").is_none(),
        "omitted when unset: {plain}"
    );
    assert!(
        plain["imageTag"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("myuser/{PROJECT}:")))
    );

    let (_, custom) = api.post(
        "/api/v1/deployments",
        Some(PROD_KEY),
        &json!({ "contentHash": "h", "registryHost": "localhost:5000", "namespace": "team", "selfHosted": true }),
    );
    assert_eq!(custom["registryHost"], "localhost:5000");
    assert!(
        custom["imageTag"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("team/{PROJECT}:")))
    );
    let state = platform.state().expect("state");
    assert!(state.deployments[1].self_hosted);
    assert!(!state.deployments[0].self_hosted);
    platform.stop();
}

#[test]
fn concurrent_initializes_get_distinct_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let url = platform.url();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                Api::new(&url).initialize(PROD_KEY, "h")["version"]
                    .as_str()
                    .expect("version")
                    .to_owned()
            })
        })
        .collect();
    let mut versions: Vec<u32> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .map(|v| {
            v.rsplit('.')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("n")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    platform.stop();
}

#[test]
fn env_var_import_with_env_key_and_pat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());

    let path = format!("/api/v1/projects/{PROJECT}/envvars/prod/import");
    let (status, body) = api.post(
        &path,
        Some(PROD_KEY),
        &json!({ "variables": { "API_TOKEN": "abc", "DATABASE_URL": "postgres://new" }, "override": true }),
    );
    assert_eq!((status, body), (200, json!({ "success": true })));
    // without override existing keys stay
    let (status, _) = api.post(
        &path,
        Some(PROD_KEY),
        &json!({ "variables": { "API_TOKEN": "ignored", "NEW_ONE": "1" } }),
    );
    assert_eq!(status, 200);
    let (_, vars) = api.get(
        &format!("/api/v1/projects/{PROJECT}/envvars"),
        Some(PROD_KEY),
    );
    assert_eq!(
        vars["variables"],
        json!({ "API_TOKEN": "abc", "DATABASE_URL": "postgres://new", "NEW_ONE": "1" })
    );
    // `staging` slug maps to stg; a PAT may import too
    let (status, _) = api.post(
        &format!("/api/v1/projects/{PROJECT}/envvars/staging/import"),
        Some(PAT),
        &json!({ "variables": { "S": "1" }, "override": true }),
    );
    assert_eq!(status, 200);
    let state = platform.state().expect("state");
    assert_eq!(
        state.environment(PROJECT, "stg").expect("stg").env_vars["S"],
        "1"
    );
    // an env key for another environment cannot import here
    let (status, body) = api.post(
        &format!("/api/v1/projects/{PROJECT}/envvars/staging/import"),
        Some(PROD_KEY),
        &json!({ "variables": { "S": "2" } }),
    );
    assert_eq!(
        (status, body),
        (404, json!({ "error": "Environment not found" }))
    );
    // reserved names are variable errors
    let (status, body) = api.post(
        &path,
        Some(PROD_KEY),
        &json!({ "variables": { "TRIGGER_SECRET_KEY": "x", "": "y" } }),
    );
    assert_eq!(status, 400);
    assert_eq!(body["variableErrors"].as_array().map(Vec::len), Some(2));
    platform.stop();
}

/// 20 deployed versions promoted all at once: every promote either wins or is refused as older
/// (or already current), and the database ends with exactly one `current` row per environment,
/// pointing at the newest version (asserted in SQL).
#[test]
fn twenty_concurrent_promotes_leave_one_consistent_current() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let url = platform.url();
    let api = Api::new(&url);
    let mut versions = Vec::new();
    for _ in 0..20 {
        let created = api.built(PROD_KEY, &["task-a"]);
        let id = created["id"].as_str().expect("id").to_owned();
        let stream = api.finalize(
            &id,
            PROD_KEY,
            &json!({ "imageReference": format!("r/x@sha256:{id}"), "selfHosted": true, "skipPromotion": true }),
            None,
        );
        assert_eq!(names(&stream), ["complete"], "{:?}", stream.events);
        versions.push(created["version"].as_str().expect("version").to_owned());
    }
    let handles: Vec<_> = versions
        .iter()
        .map(|v| {
            let (url, v) = (url.clone(), v.clone());
            std::thread::spawn(move || {
                Api::new(&url).post_raw(
                    &format!("/api/v1/deployments/{v}/promote"),
                    Some(PROD_KEY),
                    None,
                )
            })
        })
        .collect();
    let mut won = 0;
    for h in handles {
        let (status, body) = h.join().expect("thread");
        match status {
            200 => won += 1,
            400 => {
                let e = body["error"].as_str().unwrap_or_default();
                assert!(
                    e.contains("older than the current") || e.contains("already the current"),
                    "{body}"
                );
            }
            other => panic!("promote answered {other}: {body}"),
        }
    }
    assert!(won >= 1);
    let newest = versions
        .iter()
        .max_by_key(|v| v.rsplit('.').next().and_then(|n| n.parse::<u32>().ok()))
        .expect("versions")
        .clone();
    let state = platform.state().expect("state");
    assert_eq!(
        state.current_version(PROJECT, "prod"),
        Some(newest.as_str())
    );
    let db = platform.db().to_path_buf();
    platform.stop();

    let conn = rusqlite::Connection::open(db).expect("open the database");
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM promotions WHERE label = 'current'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(rows, 1, "exactly one current deployment");
    let (current, status): (String, String) = conn
        .query_row(
            "SELECT d.version, d.status FROM promotions p JOIN deployments d ON d.id = p.deployment_id
             WHERE p.label = 'current'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("current row");
    assert_eq!(current, newest);
    assert_eq!(status, "DEPLOYED");
    let deployed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM deployments WHERE status = 'DEPLOYED'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(deployed, 20);
}
