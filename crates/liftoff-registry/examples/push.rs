//! Pushes an image from an existing OCI layout, without building anything (for benchmarks and
//! debugging; `liftoff build --push` is the real entry point):
//!
//!   cargo run --release -p liftoff-registry --example push -- LAYOUT REF [--tag TAG]
//!       [--jobs N] [--chunk-size BYTES] [--mount-from REPO]... [--verbose]
//!
//! The registry settings come from the environment (`RegistryConfig::from_env`: Docker's
//! config.json and credential helpers, `LIFTOFF_REGISTRY_USERNAME`/`_PASSWORD`, mirrors, …);
//! loopback registries are reached over plain HTTP. Prints the same summary as
//! `liftoff build --push`; `--verbose` also prints each blob and each HTTP exchange.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line example reports on its standard streams"
)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use liftoff_registry::{BlobOutcome, PushEvent, PushOptions, Reference, RegistryConfig};

const USAGE: &str = "usage: push LAYOUT REF [--tag TAG] [--jobs N] [--chunk-size BYTES] [--mount-from REPO]... [--verbose]";

struct Args {
    layout: PathBuf,
    target: Reference,
    tag: Option<String>,
    jobs: usize,
    chunk_size: Option<u64>,
    mount_from: Vec<String>,
    verbose: bool,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut tag, mut jobs, mut chunk_size, mut mount_from, mut verbose) =
        (None, 4, None, Vec::new(), false);
    while let Some(arg) = raw.next() {
        let mut value = |name: &str| raw.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--tag" => tag = Some(value("--tag")?),
            "--jobs" => {
                jobs = value("--jobs")?
                    .parse()
                    .map_err(|e| format!("--jobs: {e}"))?;
            }
            "--chunk-size" => {
                chunk_size = Some(
                    value("--chunk-size")?
                        .parse()
                        .map_err(|e| format!("--chunk-size: {e}"))?,
                );
            }
            "--mount-from" => mount_from.push(value("--mount-from")?),
            "--verbose" | "-v" => verbose = true,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            _ => positional.push(arg),
        }
    }
    let [layout, target] = <[String; 2]>::try_from(positional).map_err(|_| USAGE.to_string())?;
    Ok(Args {
        layout: PathBuf::from(layout),
        target: target.parse().map_err(|e| format!("{e}"))?,
        tag,
        jobs,
        chunk_size,
        mount_from,
        verbose,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut config = match RegistryConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.verbose {
        config.http_log = Some(Arc::new(|line: &str| eprintln!("  http {line}")));
    }
    let verbose = args.verbose;
    let progress = move |event: &PushEvent| {
        if !verbose {
            return;
        }
        match event {
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
                eprintln!("  {digest}  {size:>12}  {how}");
            }
            PushEvent::ManifestPushed { digest } => eprintln!("  manifest {digest} pushed"),
            PushEvent::Verified { digest } => eprintln!("  verified {digest}"),
            _ => {}
        }
    };
    let options = PushOptions {
        jobs: args.jobs.max(1),
        chunk_size: args.chunk_size,
        mount_from: args.mount_from,
        ..PushOptions::new(&progress)
    };
    match liftoff_registry::push_layout(
        &args.layout,
        args.tag.as_deref(),
        &args.target,
        &config,
        &options,
    ) {
        Ok(image) => {
            println!(
                "Pushed {}@{} ({} uploaded, {} mounted, {} already there)",
                image.reference, image.digest, image.uploaded, image.mounted, image.skipped
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: pushing to {}: {e}", args.target);
            ExitCode::FAILURE
        }
    }
}
