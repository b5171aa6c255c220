//! Authentication failures and the device-login flow.

mod common;

use std::time::Duration;

use common::{Api, OTHER_KEY, OTHER_PROJECT, PAT, PROD_KEY, PROJECT, STG_KEY, start};
use serde_json::json;

const BAD_PAT: &str = "Invalid or Missing Access Token";
const BAD_KEY: &str = "Invalid or Missing API key";

#[test]
fn pat_routes_reject_missing_wrong_and_env_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let project_path = format!("/api/v1/projects/{PROJECT}/prod");
    for token in [
        None,
        Some("tr_pat_wrongwrongwrongwrongwrongwrongwrongwrong"),
        Some(PROD_KEY),
        Some("garbage"),
    ] {
        for path in ["/api/v2/whoami", project_path.as_str()] {
            let (status, body) = api.get(path, token);
            assert_eq!(
                (status, body),
                (401, json!({ "error": BAD_PAT })),
                "{path} with {token:?}"
            );
        }
    }
    // env param, project and environment checks
    let (status, body) = api.get(&format!("/api/v1/projects/{PROJECT}/preview"), Some(PAT));
    assert_eq!((status, body), (400, json!({ "error": "Invalid Params" })));
    let (status, body) = api.get("/api/v1/projects/proj_doesnotexistatall/prod", Some(PAT));
    assert_eq!(
        (status, body),
        (404, json!({ "error": "Project not found" }))
    );
    let (status, body) = api.get(&format!("/api/v1/projects/{PROJECT}/dev"), Some(PAT));
    assert_eq!(
        (status, body),
        (
            404,
            json!({ "error": "Environment \"dev\" not found or is unsupported for this project." })
        )
    );
    let (status, body) = api.get(
        &format!("/api/v1/projects/{OTHER_PROJECT}/staging"),
        Some(PAT),
    );
    assert_eq!(status, 404, "{body}");
    platform.stop();
}

#[test]
fn env_key_routes_reject_missing_wrong_and_pats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let created = api.initialize(PROD_KEY, "h");
    let id = created["id"].as_str().expect("id");

    for token in [
        None,
        Some(PAT),
        Some("tr_prod_notarealkeynotareal"),
        Some("pk_prod_AbCdEfGhIjKlMnOpQrSt"),
    ] {
        let (status, body) = api.post("/api/v1/deployments", token, &json!({ "contentHash": "h" }));
        assert_eq!(
            (status, body),
            (401, json!({ "error": BAD_KEY })),
            "{token:?}"
        );
        let (status, body) = api.get(&format!("/api/v1/deployments/{id}"), token);
        assert_eq!((status, body), (401, json!({ "error": BAD_KEY })));
        let (status, _) = api.register_worker(token.unwrap_or(""), id, &["t"]);
        assert_eq!(status, 401);
        let (status, _) = api.post(
            &format!("/api/v1/deployments/{id}/fail"),
            token,
            &json!({ "error": { "name": "E", "message": "m" } }),
        );
        assert_eq!(status, 401);
        let (status, _) = api.post_raw("/api/v1/deployments/20250101.1/promote", token, None);
        assert_eq!(status, 401);
        let (status, _) = api.get(&format!("/api/v1/projects/{PROJECT}/envvars"), token);
        assert_eq!(status, 401);
        // finalize answers 401 JSON before any stream
        let (status, body) = api.post(
            &format!("/api/v3/deployments/{id}/finalize"),
            token,
            &json!({ "imageReference": "x", "selfHosted": true }),
        );
        assert_eq!((status, body), (401, json!({ "error": BAD_KEY })));
    }
    // a deployment is only visible with its own environment's key
    let (status, body) = api.get(&format!("/api/v1/deployments/{id}"), Some(STG_KEY));
    assert_eq!(
        (status, body),
        (404, json!({ "error": "Deployment not found" }))
    );
    let (status, _) = api.get(&format!("/api/v1/deployments/{id}"), Some(OTHER_KEY));
    assert_eq!(status, 404);
    // env vars of another project
    let (status, body) = api.get(
        &format!("/api/v1/projects/{PROJECT}/envvars"),
        Some(OTHER_KEY),
    );
    assert_eq!(
        (status, body),
        (404, json!({ "error": "Project not found" }))
    );
    // nothing changed
    assert_eq!(platform.state().expect("state").deployments.len(), 1);
    platform.stop();
}

#[test]
fn device_login_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());

    let (status, created) = api.post_raw("/api/v1/authorization-code", None, None);
    assert_eq!(status, 200);
    let code = created["authorizationCode"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_eq!(code.len(), 64);
    assert_eq!(
        created["url"],
        format!("{}/account/authorization-code/{code}", platform.url())
    );

    // pending
    let (status, body) = api.post("/api/v1/token", None, &json!({ "authorizationCode": code }));
    assert_eq!((status, body), (200, json!({ "token": null })));

    let token = platform.approve_login(&code).expect("approve");
    assert!(token.starts_with("tr_pat_") && token.len() == 47);
    assert!(platform.approve_login(&code).is_err(), "approve twice");

    let (status, body) = api.post("/api/v1/token", None, &json!({ "authorizationCode": code }));
    assert_eq!(status, 200);
    assert_eq!(body["token"]["token"], token);
    let obfuscated = body["token"]["obfuscatedToken"]
        .as_str()
        .expect("obfuscated");
    assert!(
        obfuscated.starts_with(&token[..11]) && obfuscated.ends_with(&token[token.len() - 4..])
    );
    assert_eq!(obfuscated.chars().filter(|c| *c == '\u{2022}').count(), 18);

    // the token works; the code is now used
    let (status, me) = api.get("/api/v2/whoami", Some(&token));
    assert_eq!((status, me["userId"].as_str()), (200, Some(common::USER)));
    let (status, body) = api.post("/api/v1/token", None, &json!({ "authorizationCode": code }));
    assert_eq!(status, 400);
    assert!(body["error"].is_string());

    // unknown codes
    let (status, _) = api.post(
        "/api/v1/token",
        None,
        &json!({ "authorizationCode": "nope" }),
    );
    assert_eq!(status, 400);
    assert!(platform.approve_login("nope").is_err());

    // expiry after ten minutes
    let (_, created) = api.post_raw("/api/v1/authorization-code", None, None);
    let late = created["authorizationCode"]
        .as_str()
        .expect("code")
        .to_owned();
    platform.advance_clock(Duration::from_mins(11));
    let (status, body) = api.post("/api/v1/token", None, &json!({ "authorizationCode": late }));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("Authorization code expired"))
    );
    assert!(matches!(
        platform.approve_login(&late),
        Err(liftoff_platform::PlatformError::AuthorizationCodeExpired)
    ));

    // the state shows PATs obfuscated only
    let state = serde_json::to_string(&platform.state().expect("state")).expect("json");
    assert!(!state.contains(&token) && !state.contains(PAT) && !state.contains(PROD_KEY));
    platform.stop();
}

#[test]
fn login_page_approves_on_post() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = start(dir.path());
    let api = Api::new(&platform.url());
    let (_, created) = api.post_raw("/api/v1/authorization-code", None, None);
    let code = created["authorizationCode"].as_str().expect("code");
    let page = format!("/account/authorization-code/{code}");
    let (status, html) = api.get(&page, None);
    assert_eq!(status, 200);
    assert!(
        html.as_str()
            .is_some_and(|h| h.contains("<form method=\"post\">"))
    );
    // GET does not approve
    let (_, body) = api.post("/api/v1/token", None, &json!({ "authorizationCode": code }));
    assert_eq!(body["token"], serde_json::Value::Null);
    let (status, _) = api.post_raw(&page, None, None);
    assert_eq!(status, 200);
    let (_, body) = api.post("/api/v1/token", None, &json!({ "authorizationCode": code }));
    assert!(
        body["token"]["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("tr_pat_"))
    );
    // the code never appears in the request log
    assert!(platform.requests().iter().all(|r| !r.path.contains(code)));
    platform.stop();
}
