//! `liftoff build`: the dry-run pipeline plus the image, optionally pushed to a registry or
//! loaded into a local Docker engine, without any platform call. For CI pipelines that build in
//! one job and deploy in another, and for people who only want the daemonless image.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::BuildArgs;
use crate::commands::shared;
use crate::output::Output;

pub fn run(args: &BuildArgs, out: &Output) -> Result<()> {
    let target: Option<liftoff_registry::Reference> = match &args.image {
        Some(r) => Some(
            r.parse()
                .map_err(|e| anyhow!("--image {r}: {e} (expected registry/repository:tag)"))?,
        ),
        None => None,
    };
    if let Some(t) = &target
        && args.push
        && t.tag.is_none()
        && t.digest.is_none()
    {
        bail!("--image {t}: give a tag to push to (e.g. {t}:v1)");
    }
    if (args.push || args.load_image)
        && args
            .image_args
            .output
            .as_deref()
            .is_some_and(|o| o.starts_with("oci-archive:"))
    {
        bail!(
            "--push and --load-image read the image from an OCI layout: use --output oci:DIR or docker-archive:FILE (or leave --output out)"
        );
    }
    let registry = shared::registry_config(
        &args.registry,
        target.as_ref().map(|t| t.registry.as_str()),
        out,
    )?;
    let prepared = shared::prepare(&args.project, out)?;
    let image = shared::build_image(
        &args.image_args,
        &registry,
        &prepared.config,
        &prepared.outcome,
        args.image.as_deref(),
        None,
        out,
    )?;
    let layout = shared::image_layout(&args.image_args, &image, &prepared.outcome);

    let mut pushed = None;
    if args.push
        && let Some(target) = &target
    {
        let base = shared::base_image(&args.image_args, &prepared.config);
        let result = push(
            &layout,
            &image.tag,
            target,
            &registry,
            args.registry.jobs,
            &base,
            out,
        )?;
        out.success(format!(
            "Pushed {}@{} ({} uploaded, {} mounted, {} already there)",
            result.reference, result.digest, result.uploaded, result.mounted, result.skipped
        ));
        pushed = Some(result);
    }
    let mut loaded = None;
    if args.load_image
        && let Some(reference) = &args.image
    {
        load_into_docker(&layout, &image.tag, reference, out)?;
        out.success(format!("Loaded {reference} into the Docker engine"));
        loaded = Some(reference.clone());
    }

    report(
        out,
        args,
        &prepared,
        &image,
        pushed.as_ref(),
        loaded.as_deref(),
    );
    Ok(())
}

/// The result: `--json` document and the final line.
fn report(
    out: &Output,
    args: &BuildArgs,
    prepared: &shared::Prepared,
    image: &liftoff_builder::BuiltImage,
    pushed: Option<&liftoff_registry::PushedImage>,
    loaded: Option<&str>,
) {
    if out.json() {
        let mut doc = shared::build_json(prepared, Some(image));
        doc["imageReference"] = serde_json::json!(args.image);
        doc["pushed"] = match pushed {
            Some(p) => serde_json::json!({
                "reference": p.reference,
                "digest": p.digest,
                "uploaded": p.uploaded,
                "mounted": p.mounted,
                "skipped": p.skipped,
            }),
            None => serde_json::Value::Null,
        };
        doc["loaded"] = serde_json::json!(loaded);
        out.result(&doc);
    }
    match pushed {
        Some(p) => out.line(format!("{}@{}", p.reference, p.digest)),
        None => out.line(format!(
            "Built {} at {}",
            image.manifest_digest,
            image.output.display()
        )),
    }
}

/// Pushes the layout's image, with a progress line (or bar) per blob.
pub(crate) fn push(
    layout: &Path,
    tag: &str,
    target: &liftoff_registry::Reference,
    registry: &liftoff_registry::RegistryConfig,
    jobs: usize,
    base_image: &str,
    out: &Output,
) -> Result<liftoff_registry::PushedImage> {
    use liftoff_registry::{BlobOutcome, PushEvent};
    let step = out.step(&format!("Pushing {target}"));
    let transfers = out.transfers();
    let short = |d: &str| {
        d.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>()
    };
    let progress = |e: &PushEvent| match e {
        PushEvent::BlobStarted { digest, size } => transfers.start(digest, &short(digest), *size),
        PushEvent::BlobBytes { digest, sent, .. } => transfers.advance(digest, *sent),
        PushEvent::BlobDone {
            digest,
            size,
            outcome,
        } => {
            let how = match outcome {
                BlobOutcome::AlreadyPresent => "already present".to_string(),
                BlobOutcome::Mounted { from } => format!("mounted from {from}"),
                BlobOutcome::Uploaded => "uploaded".to_string(),
            };
            transfers.finish(
                digest,
                &format!(
                    "  {}  {:>10}  {how}",
                    short(digest),
                    shared::human_size(*size)
                ),
            );
        }
        PushEvent::ManifestPushed { digest } => out.info(format!("  manifest {digest} pushed")),
        PushEvent::Verified { digest } => {
            out.info(format!(
                "  verified {digest}: the manifest and every blob are in the registry"
            ));
        }
        _ => {}
    };
    let mut options = liftoff_registry::PushOptions::new(&progress);
    options.jobs = jobs.max(1);
    options.mount_from = vec![base_image.to_string()];
    let result = liftoff_registry::push_layout(layout, Some(tag), target, registry, &options)
        .with_context(|| format!("pushing the image to {target}"))?;
    step.done(&format!("Pushed and verified {}", result.digest));
    Ok(result)
}

/// `docker load` through the engine API (bollard), tagged `reference`.
pub(crate) fn load_into_docker(
    layout: &Path,
    tag: &str,
    reference: &str,
    out: &Output,
) -> Result<()> {
    use futures_util::StreamExt as _;
    let step = out.step(&format!("Loading {reference} into Docker"));
    let parent = layout
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let archive = tempfile::Builder::new()
        .prefix(".docker-load-")
        .tempfile_in(&parent)
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    liftoff_image::write_docker_archive(
        layout,
        Some(tag),
        &[reference.to_string()],
        archive.path(),
    )?;
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime for the Docker API")?;
    runtime.block_on(async {
        let docker = bollard::Docker::connect_with_defaults().map_err(|e| {
            anyhow!("cannot use the Docker engine at {host}: {e}. Set DOCKER_HOST or start Docker; or use --output docker-archive:FILE and `docker load -i FILE` where Docker runs")
        })?;
        docker.ping().await.map_err(|e| {
            anyhow!("no Docker engine answers at {host}: {e}. Start Docker (or set DOCKER_HOST), or use --output docker-archive:FILE and `docker load -i FILE` where Docker runs")
        })?;
        let file = std::fs::File::open(archive.path())
            .with_context(|| format!("reading {}", archive.path().display()))?;
        let chunks = futures_util::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 1 << 20];
            match std::io::Read::read(&mut file, &mut buf) {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((bytes::Bytes::from(buf), file))
                }
            }
        });
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut stream = docker.import_image_stream(options, chunks, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| anyhow!("the Docker engine at {host} refused the image: {e}"))?;
            if let Some(error) = info.error {
                bail!("the Docker engine at {host} could not load the image: {error}");
            }
            if let Some(s) = info.stream.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                out.debug(s);
            }
        }
        Ok(())
    })?;
    step.done(&format!("Loaded {reference}"));
    Ok(())
}
