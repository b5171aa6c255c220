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
    let image = if args.no_image {
        None
    } else {
        let registry = shared::registry_config(&args.registry, None, out)?;
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
