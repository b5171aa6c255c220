//! `liftoff deploy`.

use anyhow::{Result, bail};

use crate::DeployArgs;
use crate::commands::shared;
use crate::output::Output;

pub fn run(args: &DeployArgs, out: &Output) -> Result<()> {
    if !args.dry_run {
        bail!(
            "deploying to the platform is not available in this build of liftoff yet; run with --dry-run to build the project and inspect the result, or `liftoff build --image REF --push` to build and push the image"
        );
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
