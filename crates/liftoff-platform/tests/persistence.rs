//! The database file outlives the server: stop, start again, state kept.

mod common;

use common::{Api, PROD_KEY, PROJECT, names, today};
use liftoff_platform::Platform;
use serde_json::json;

#[test]
fn restart_on_the_same_database_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("platform.sqlite");

    let platform = Platform::start(common::config(&db)).expect("start");
    assert_eq!(platform.db(), db.as_path());
    let api = Api::new(&platform.url());
    let first = api.built(PROD_KEY, &["hello-world"]);
    let id = first["id"].as_str().expect("id").to_owned();
    let stream = api.finalize(
        &id,
        PROD_KEY,
        &json!({ "imageReference": "img:1", "selfHosted": true }),
        None,
    );
    assert_eq!(names(&stream), ["complete"]);
    let (_, imported) = api.post(
        &format!("/api/v1/projects/{PROJECT}/envvars/prod/import"),
        Some(PROD_KEY),
        &json!({ "variables": { "KEPT": "yes" }, "override": true }),
    );
    assert_eq!(imported, json!({ "success": true }));
    let (_, code) = api.post_raw("/api/v1/authorization-code", None, None);
    let token = platform
        .approve_login(code["authorizationCode"].as_str().expect("code"))
        .expect("approve");
    let before = platform.state().expect("state");
    let (status, over_http) = api.get("/liftoff/state", None);
    assert_eq!(status, 200);
    assert_eq!(over_http, serde_json::to_value(&before).expect("json"));
    platform.stop();

    // same file, same seed: nothing duplicated, nothing lost
    let platform = Platform::start(common::config(&db)).expect("restart");
    let api = Api::new(&platform.url());
    let after = platform.state().expect("state");
    assert_eq!(after, before);
    assert_eq!(after.projects.len(), 2);
    assert_eq!(after.users[0].personal_access_tokens.len(), 2);
    assert_eq!(
        after.current_version(PROJECT, "prod"),
        first["version"].as_str()
    );
    assert_eq!(
        after.environment(PROJECT, "prod").expect("env").env_vars["KEPT"],
        "yes"
    );

    // the device-login PAT still works, the deployment is still readable
    let (status, _) = api.get("/api/v2/whoami", Some(&token));
    assert_eq!(status, 200);
    let (_, d) = api.get(&format!("/api/v1/deployments/{id}"), Some(PROD_KEY));
    assert_eq!(d["status"], "DEPLOYED");
    assert_eq!(d["imageReference"], "img:1");
    assert_eq!(d["worker"]["tasks"][0]["slug"], "hello-world");

    // numbering continues
    let next = api.initialize(PROD_KEY, "h");
    assert_eq!(next["version"], format!("{}.2", today(0)));
    platform.stop();
}

#[test]
fn a_changed_seed_adds_rows_and_keeps_existing_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("platform.sqlite");
    Platform::start(common::config(&db)).expect("start").stop();

    let mut config = common::config(&db);
    config.seed.projects[0].env_vars =
        vec![("prod".into(), "DATABASE_URL".into(), "changed".into())];
    config.seed.projects.push(liftoff_platform::SeedProject {
        ref_: "proj_newnewnewnewnewnewne".into(),
        name: "New".into(),
        env_api_keys: vec![("staging".into(), "tr_stg_NewNewNewNewNewNewNe".into())],
        env_vars: vec![],
    });
    let platform = Platform::start(config).expect("restart");
    let state = platform.state().expect("state");
    assert_eq!(state.projects.len(), 3);
    assert_eq!(
        state.environment(PROJECT, "prod").expect("env").env_vars["DATABASE_URL"],
        "postgres://db/prod"
    );
    let api = Api::new(&platform.url());
    let (status, _) = api.get(
        "/api/v1/projects/proj_newnewnewnewnewnewne/envvars",
        Some("tr_stg_NewNewNewNewNewNewNe"),
    );
    assert_eq!(status, 200);
    platform.stop();
}

#[test]
fn bad_seeds_and_bad_binds_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config(&dir.path().join("a.sqlite"));
    config.seed.personal_access_token = "not-a-pat".into();
    assert!(matches!(
        Platform::start(config),
        Err(liftoff_platform::PlatformError::InvalidSeed(_))
    ));
    let mut config = common::config(&dir.path().join("b.sqlite"));
    config.seed.projects[0]
        .env_api_keys
        .push(("preview".into(), "tr_prev_x".into()));
    assert!(Platform::start(config).is_err());

    let running = common::start(dir.path());
    let mut config = common::config(&dir.path().join("c.sqlite"));
    config.bind = running.addr();
    assert!(matches!(
        Platform::start(config),
        Err(liftoff_platform::PlatformError::Bind { .. })
    ));
    let config = common::config(&dir.path().join("missing-dir").join("d.sqlite"));
    assert!(matches!(
        Platform::start(config),
        Err(liftoff_platform::PlatformError::OpenDatabase { .. })
    ));
    running.stop();
}
