//! `login`, `whoami`, `list-profiles`, `logout` and `promote`: the platform commands that do not
//! build anything. Profiles live where upstream keeps them (`<config>/trigger/default.json`), so
//! an existing `trigger.dev login` just works; `TRIGGER_ACCESS_TOKEN` + `TRIGGER_API_URL` override
//! them for CI.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use anyhow::{Context as _, Result, anyhow, bail};
use liftoff_deploy::{ApiClient, ApiClientOptions, Profile, Profiles, Secret};

use crate::output::Output;
use crate::{CommonArgs, PromoteArgs};

/// Upstream's default API URL.
pub const DEFAULT_API_URL: &str = "https://api.trigger.dev";

/// An authenticated platform user.
pub struct Session {
    pub client: ApiClient,
    pub api_url: String,
    pub user_id: String,
    pub dashboard_url: String,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Upstream's `login({embedded: true})`: `TRIGGER_ACCESS_TOKEN` (a `tr_pat_` token, with
/// `TRIGGER_API_URL`), else the stored profile; then `whoami`.
pub fn session(common: &CommonArgs, out: &Output) -> Result<Session> {
    let profiles = Profiles::load_default()?;
    let default_api = common.api_url.as_deref().unwrap_or(DEFAULT_API_URL);
    let auth = liftoff_deploy::resolve_auth(&profiles, &common.profile, default_api, &env_var)?
        .ok_or_else(|| {
            anyhow!(
                "You must login first. Use the `login` CLI command.\n\nNo TRIGGER_ACCESS_TOKEN and no token in the \"{}\" profile ({}): run `liftoff login` (or `trigger.dev login`), or set TRIGGER_ACCESS_TOKEN in CI",
                common.profile,
                profiles.path().display()
            )
        })?;
    let client = ApiClient::new(
        &auth.api_url,
        Some(auth.access_token.clone()),
        ApiClientOptions::default(),
    )?;
    let me = client.whoami().map_err(|e| {
        anyhow!(
            "You must login first. Use the `login` CLI command.\n\n{e} (checking the token against {})",
            auth.api_url
        )
    })?;
    out.debug(format!("logged in as {} at {}", me.email, auth.api_url));
    Ok(Session {
        client,
        api_url: auth.api_url,
        user_id: me.user_id,
        dashboard_url: me.dashboard_url,
    })
}

pub fn login(common: &CommonArgs, out: &Output) -> Result<()> {
    let api_url = common
        .api_url
        .clone()
        .unwrap_or_else(|| DEFAULT_API_URL.to_string());
    let mut profiles = Profiles::load_default()?;
    let token = if let Some(token) = env_var("TRIGGER_ACCESS_TOKEN") {
        let token = Secret::new(token);
        if !token.is_personal_access_token() {
            bail!(
                "Your TRIGGER_ACCESS_TOKEN is not a Personal Access Token, they start with 'tr_pat_'. You can generate one here: https://cloud.trigger.dev/account/tokens"
            );
        }
        token
    } else {
        if !std::io::stdin().is_terminal() {
            bail!(
                "liftoff login needs a terminal for the browser login; in CI set TRIGGER_ACCESS_TOKEN (a tr_pat_ token) instead"
            );
        }
        let client = ApiClient::new(&api_url, None, ApiClientOptions::default())?;
        let code = client.create_authorization_code()?;
        out.log(format!(
            "Please visit the following URL to login:\n{}",
            code.url
        ));
        let step = out.step("Waiting for you to login");
        let token = client.wait_for_token(
            &code.authorization_code,
            std::time::Duration::from_secs(1),
            600,
            |_| {},
        )?;
        step.done(&format!("Logged in with token {}", token.obfuscated_token));
        token.token
    };
    let client = ApiClient::new(&api_url, Some(token.clone()), ApiClientOptions::default())?;
    let me = client
        .whoami()
        .with_context(|| format!("checking the token against {api_url}"))?;
    profiles.set(
        &common.profile,
        &Profile {
            access_token: Some(token),
            api_url: Some(api_url.clone()),
        },
    );
    profiles.save()?;
    if out.json() {
        out.result(&serde_json::json!({
            "profile": common.profile, "apiUrl": api_url, "userId": me.user_id, "email": me.email,
        }));
    }
    out.success(format!(
        "Logged in successfully as {} [{}]",
        me.email, common.profile
    ));
    Ok(())
}

pub fn whoami(common: &CommonArgs, out: &Output) -> Result<()> {
    // Upstream's whoami reads the stored profile only.
    let profiles = Profiles::load_default()?;
    let profile = profiles.get(&common.profile).unwrap_or_default();
    let (Some(token), api_url) = (profile.access_token, profile.api_url) else {
        bail!(
            "You must login first. Use `liftoff login --profile {}` to login.",
            common.profile
        );
    };
    let api_url = api_url
        .or_else(|| common.api_url.clone())
        .unwrap_or_else(|| DEFAULT_API_URL.to_string());
    let client = ApiClient::new(&api_url, Some(token), ApiClientOptions::default())?;
    let me = client.whoami().map_err(|e| anyhow!("Whoami failed: {e}"))?;
    if out.json() {
        out.result(&serde_json::json!({
            "profile": common.profile, "userId": me.user_id, "email": me.email, "apiUrl": api_url,
        }));
    } else {
        out.line(format!(
            "Account details [{}]\nUser ID: {}\nEmail: {}\nURL: {api_url}",
            common.profile, me.user_id, me.email
        ));
    }
    Ok(())
}

pub fn list_profiles(out: &Output) -> Result<()> {
    let profiles = Profiles::load_default()?;
    let list = profiles.list();
    if out.json() {
        out.result(&serde_json::json!(
            list.iter()
                .map(|(name, p)| serde_json::json!({ "name": name, "apiUrl": p.api_url }))
                .collect::<Vec<_>>()
        ));
        return Ok(());
    }
    if list.is_empty() {
        out.line("No profiles found");
        return Ok(());
    }
    let mut text = String::from("Profiles:");
    for (name, p) in list {
        let _ = write!(
            text,
            "\n{name} - {}",
            p.api_url.as_deref().unwrap_or(DEFAULT_API_URL)
        );
    }
    out.line(text);
    Ok(())
}

pub fn logout(common: &CommonArgs, out: &Output) -> Result<()> {
    let mut profiles = Profiles::load_default()?;
    let had_token = profiles
        .get(&common.profile)
        .is_some_and(|p| p.access_token.is_some());
    if had_token {
        profiles.remove(&common.profile);
        profiles.save()?;
        out.line(format!("Logged out of Trigger.dev [{}]", common.profile));
    } else {
        out.line(format!("You are already logged out [{}]", common.profile));
    }
    Ok(())
}

pub fn promote(args: &PromoteArgs, out: &Output) -> Result<()> {
    let Some(version) = &args.version else {
        bail!("You must provide a version to promote like so: `liftoff promote 20250208.1`");
    };
    out.log(format!("Promoting version {version}"));
    let session = session(&args.common, out)?;
    let project_dir = std::fs::canonicalize(&args.path)
        .with_context(|| format!("the project path {} does not exist", args.path.display()))?;
    let project_ref = if let Some(r) = &args.project_ref {
        r.clone()
    } else {
        let config = liftoff_config::load(&liftoff_config::LoadOptions {
            project_dir: project_dir.clone(),
            config_file: args.config.clone(),
            project_ref: None,
            env: std::env::vars().collect(),
        })?;
        config.project.clone()
    };
    let env = args.env.as_str();
    let project = session
        .client
        .project_env(&project_ref, env)
        .with_context(|| {
            format!("Failed to initialize {env} environment. Using project ref {project_ref}")
        })?;
    let client = session.client.for_environment(&project, None)?;
    let promoted = client.promote(version)?;
    if out.json() {
        out.result(&serde_json::json!({
            "version": promoted.version, "shortCode": promoted.short_code, "id": promoted.id,
        }));
    }
    out.success(format!("Promoted version {version}"));
    Ok(())
}
