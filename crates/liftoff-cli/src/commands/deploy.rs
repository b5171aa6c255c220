//! `liftoff deploy`.

use anyhow::{Context as _, Result, anyhow, bail};
use liftoff_deploy::{
    DeployOutputs, Deployer, FinalizeDeploymentRequest, ImportEnvVarsRequest,
    InitializeDeploymentRequest, StepError,
};

use crate::DeployArgs;
use crate::commands::{account, build, shared};
use crate::output::Output;

pub fn run(args: &DeployArgs, out: &Output) -> Result<()> {
    if args.build_platform != "linux/amd64" {
        bail!(
            "--build-platform {}: liftoff builds linux/amd64 images only (upstream's default)",
            args.build_platform
        );
    }
    if !args.dry_run {
        return deploy(args, out);
    }
    let prepared = shared::prepare(&args.project, out)?;
    if pushes(args) {
        let slug = match args.project.env {
            crate::DeployEnv::Prod => "prod",
            crate::DeployEnv::Staging => "stg",
        };
        let tag = format!(
            "{}/{}:<version>.{slug}",
            args.namespace.as_deref().unwrap_or("trigger"),
            prepared.outcome.manifest.config.project
        );
        out.warn(format!(
            "a dry run pushes nothing; a deploy would push {} (use `liftoff build --image REF --push` to push now)",
            self_hosted_image_ref(None, args.registry.as_deref(), &tag)
        ));
    }
    let image = if args.no_image {
        None
    } else {
        let registry = shared::registry_config(&args.registry_args, None, out)?;
        Some(shared::build_image(
            &args.image,
            &registry,
            &prepared.config,
            &prepared.outcome,
            None,
            None,
            out,
        )?)
    };
    if out.json() {
        out.result(&shared::build_json(&prepared, image.as_ref()));
    }
    out.line(format!(
        "Dry run complete. View the built project at {}",
        prepared.outcome.dir.display()
    ));
    Ok(())
}

/// `@trigger.dev/*` dependencies and the installed `trigger.dev` must be one version: in CI (no
/// terminal, or `CI` set) a mismatch fails with upstream's message; on a terminal it warns.
fn version_guard(project_dir: &std::path::Path, out: &Output) -> Result<()> {
    use std::io::IsTerminal as _;
    let Some(check) = liftoff_deploy::version_guard::check_project(project_dir) else {
        return Ok(());
    };
    if check.is_ok() {
        return Ok(());
    }
    let in_ci = std::env::var_os("CI").is_some() || !std::io::stdout().is_terminal();
    if in_ci {
        out.error("Deploy failed");
        bail!("{}", check.ci_error_message().trim_end());
    }
    out.warn(format!(
        "version mismatch: trigger.dev {} vs {}; use matching versions or --skip-update-check",
        check.cli_version,
        check
            .mismatches
            .iter()
            .map(|d| format!("{}@{}", d.name, d.version))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// What a successful deploy produced.
struct Deployed {
    digest: String,
    tasks: usize,
}

/// The whole deploy: login, project environment, the platform's env vars, bundle, initialize,
/// then (reporting any failure to the platform) env sync, image, background worker, push,
/// finalize; the version is promoted unless `--skip-promotion`.
#[allow(clippy::too_many_lines)] // one straight-line flow, as upstream's _deployCommand
fn deploy(args: &DeployArgs, out: &Output) -> Result<()> {
    out.log(if args.skip_promotion {
        "Deploying project (without promotion)"
    } else {
        "Deploying project"
    });
    let loaded = shared::load(&args.project, out)?;
    if !args.skip_update_check {
        version_guard(&loaded.project_dir, out)?;
    }
    let session = account::session(&args.common, out)?;
    let project_ref = loaded.config.project.clone();
    let env = args.project.env.as_str();
    let project = session.client.project_env(&project_ref, env).map_err(|e| {
        anyhow!(
            "Failed to initialize {env} environment: {e}. Using project ref {project_ref} with the \"{}\" profile, which points to {}",
            args.common.profile,
            session.api_url
        )
    })?;
    let client = session.client.for_environment(&project, None)?;
    // As upstream: a failure to read the env vars is not fatal.
    let server_env = client
        .env_vars(&project_ref)
        .map(|v| v.variables)
        .unwrap_or_default();
    let prepared = shared::bundle(&args.project, loaded, server_env, out)?;
    let manifest = &prepared.outcome.manifest;

    let deployer = Deployer::new(&client);
    let init = deployer
        .initialize(&InitializeDeploymentRequest {
            content_hash: manifest.content_hash.clone(),
            user_id: Some(session.user_id.clone()),
            registry_host: args.registry.clone(),
            // liftoff builds and pushes the image itself: always upstream's self-hosted path.
            self_hosted: Some(true),
            namespace: args.namespace.clone(),
        })
        .map_err(|e| anyhow!("Failed to start deployment: {e}"))?;
    let registry_host = init
        .registry_host
        .clone()
        .or_else(|| args.registry.clone())
        .unwrap_or_else(|| DEFAULT_REGISTRY_HOST.to_string());
    let image_ref = self_hosted_image_ref(Some(&registry_host), None, &init.image_tag);
    let deployment_url = liftoff_deploy::github::deployment_url(
        &session.dashboard_url,
        &project_ref,
        &init.short_code,
    );
    out.log(format!("Building version {}", init.version));

    let result = deployer.run_after_initialize(&init.id, || -> Result<Deployed, StepError> {
        if let Some(vars) = manifest
            .deploy
            .sync
            .as_ref()
            .and_then(|s| s.env.as_ref())
            .filter(|v| !v.is_empty())
        {
            let n = vars.len();
            let noun = if n == 1 { "var" } else { "vars" };
            if args.skip_sync_env_vars {
                out.warn("Skipping syncing env vars. The environment variables in your project have changed, but the --skip-sync-env-vars flag was provided.");
            } else {
                client
                    .import_env_vars(
                        &project_ref,
                        env,
                        &ImportEnvVarsRequest {
                            variables: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                            override_existing: Some(true),
                        },
                    )
                    .map_err(|_| StepError::sync_env_vars(n))?;
                out.success(format!("Successfully synced {n} env {noun} with the server"));
            }
        }
        let registry = shared::registry_config(&args.registry_args, Some(&registry_host), out)
            .map_err(|e| StepError::build(format!("Error building image: {e:#}")))?;
        let deployment = liftoff_builder::DeploymentArgs {
            project_id: project.project_id.clone(),
            deployment_id: init.id.clone(),
            version: init.version.clone(),
            project_ref: project_ref.clone(),
        };
        let image = shared::build_image(
            &args.image,
            &registry,
            &prepared.config,
            &prepared.outcome,
            Some(&image_ref),
            Some(&deployment),
            out,
        )
        .map_err(|e| StepError::build(format!("Error building image: {e:#}")))?;
        // The indexer ran in the build; register its worker as upstream's index controller does.
        let build_json: serde_json::Value =
            serde_json::from_str(&manifest.to_build_json()).unwrap_or_default();
        let worker = liftoff_deploy::worker::background_worker_request(&build_json, &image.index)
            .map_err(|e| StepError::build(format!("Error indexing tasks: {e}")))?;
        client
            .create_background_worker(&init.id, &worker)
            .map_err(|e| StepError::build(format!("Error registering the worker: {}", e.upstream_message())))?;
        let layout = shared::image_layout(&args.image, &image, &prepared.outcome);
        let base = shared::base_image(&args.image, &prepared.config);
        let target: liftoff_registry::Reference = image_ref
            .parse()
            .map_err(|e| StepError::build(format!("Error pushing image: {image_ref}: {e}")))?;
        let pushed = build::push(
            &layout,
            &image.tag,
            &target,
            &registry,
            args.registry_args.jobs,
            &base,
            out,
        )
        .map_err(|e| StepError::build(format!("Error pushing image: {e:#}")))?;
        if args.load_image {
            build::load_into_docker(&layout, &image.tag, &image_ref, out)
                .map_err(|e| StepError::build(format!("Error loading image: {e:#}")))?;
        }
        let with_worker = deployer.deployment_with_worker(&init.id)?;
        out.log(format!("Deploying version {}", init.version));
        deployer
            .finalize(
                &init.id,
                &FinalizeDeploymentRequest {
                    image_reference: format!("{image_ref}@{}", pushed.digest),
                    self_hosted: Some(true),
                    skip_registry_proxy: None,
                    skip_promotion: Some(args.skip_promotion),
                },
                |line| out.info(format!("Deploying version {}: {line}", init.version)),
            )
            .map_err(|e| StepError::finalize(e.upstream_message()))?;
        Ok(Deployed {
            digest: pushed.digest,
            tasks: with_worker.worker.map_or(0, |w| w.tasks.len()),
        })
    });
    let done = match result {
        Ok(d) => d,
        Err(e) => {
            out.error("Failed to deploy project");
            let status = e
                .report
                .server_status
                .map_or_else(|| "unknown".to_string(), |s| format!("{s:?}"));
            bail!(
                "{}: {}. The deployment {} ({deployment_url}) is {}{}",
                e.report.prefix(),
                e.error,
                init.version,
                if e.report.reported {
                    "marked failed on the platform".to_string()
                } else {
                    format!("left as the platform reports it ({status})")
                },
                e.report
                    .problem
                    .as_ref()
                    .map(|p| format!("; reporting the failure failed too: {p}"))
                    .unwrap_or_default()
            );
        }
    };
    out.success(format!("Successfully deployed version {}", init.version));
    let noun = if done.tasks == 1 { "task" } else { "tasks" };
    out.log(format!(
        "Version {} deployed with {} detected {noun}",
        init.version, done.tasks
    ));
    out.log(format!("Image: {image_ref}@{}", done.digest));
    if args.skip_promotion {
        out.log(format!(
            "Not promoted (--skip-promotion): run `liftoff promote {}` to make it current",
            init.version
        ));
    }
    let outputs = DeployOutputs {
        version: init.version.clone(),
        short_code: init.short_code.clone(),
        deployment_url: deployment_url.clone(),
        test_url: liftoff_deploy::github::test_url(&session.dashboard_url, &project_ref, env),
        needs_promotion: args.skip_promotion,
        image_reference: image_ref.clone(),
        image_digest: Some(done.digest.clone()),
    };
    let github_output = std::env::var_os("GITHUB_OUTPUT").map(std::path::PathBuf::from);
    let github_env = std::env::var_os("GITHUB_ENV").map(std::path::PathBuf::from);
    liftoff_deploy::write_github_outputs(&outputs, github_output.as_deref(), github_env.as_deref())
        .context("writing the GitHub Actions outputs")?;
    if out.json() {
        out.result(&serde_json::json!({
            "deploymentId": init.id,
            "version": init.version,
            "shortCode": init.short_code,
            "deploymentUrl": deployment_url,
            "imageReference": image_ref,
            "imageDigest": done.digest,
            "tasks": done.tasks,
            "promoted": !args.skip_promotion,
            "buildDir": prepared.outcome.dir.display().to_string(),
        }));
    }
    Ok(())
}

/// Where a self-hosted deploy's image goes, as upstream names it: the platform's `imageTag`
/// (`<namespace>/<project ref>:<version>.<env slug>`) under the platform's registry host, else
/// `--registry`, else upstream's default host.
pub fn self_hosted_image_ref(
    server_registry_host: Option<&str>,
    flag_registry: Option<&str>,
    image_tag: &str,
) -> String {
    let host = server_registry_host
        .or(flag_registry)
        .unwrap_or(DEFAULT_REGISTRY_HOST);
    format!("{}/{image_tag}", host.trim_end_matches('/'))
}

/// Upstream's default registry host when neither the platform nor `--registry` names one.
pub const DEFAULT_REGISTRY_HOST: &str = "registry.trigger.dev";

/// Whether a deploy pushes: `--push`, or any `--registry` (upstream skips localhost registries
/// unless `--push` is also given, #3257; liftoff pushes).
pub fn pushes(args: &DeployArgs) -> bool {
    args.push || args.registry.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_reference_naming() {
        assert_eq!(
            self_hosted_image_ref(
                Some("ghcr.example"),
                Some("other"),
                "trigger/proj_x:20250101.1.prod"
            ),
            "ghcr.example/trigger/proj_x:20250101.1.prod"
        );
        assert_eq!(
            self_hosted_image_ref(None, Some("localhost:5000/"), "ns/proj_x:1.stg"),
            "localhost:5000/ns/proj_x:1.stg"
        );
        assert_eq!(
            self_hosted_image_ref(None, None, "trigger/proj_x:1.prod"),
            "registry.trigger.dev/trigger/proj_x:1.prod"
        );
    }
}
