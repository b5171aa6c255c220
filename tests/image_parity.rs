//! Image parity with `docker build`: one test per scenario of `scripts/parity-image`, which builds
//! the scenario's image with liftoff and the same dry-run Containerfile with a private dockerd,
//! then compares the /usr, /opt and /app trees (paths + types) and the image config (`Env`, `User`,
//! `WorkingDir`, `Entrypoint`, `Cmd`) outside the script's allow-list.
//!
//! Slow (2–6 minutes each of docker builds on vfs; root, dockerd, network for apt/npm/PyPI), so
//! they are `#[ignore]`d in the default run: `cargo test --test image_parity -- --ignored
//! --nocapture`. They run one at a time (a lock), each with its own dockerd and scratch dir under
//! /var/tmp/liftoff-parity/<scenario>.
// The comparison report is the point of running them: shown with --nocapture.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn parity(scenario: &str) {
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/parity-image"))
        .arg(scenario)
        .current_dir(root)
        .env("LIFTOFF_BIN", env!("CARGO_BIN_EXE_liftoff"))
        .output()
        .expect("run scripts/parity-image");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/parity-image {scenario} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    println!("{stdout}{stderr}");
}

#[test]
#[ignore = "slow: docker builds (run with --ignored)"]
fn parity_python() {
    parity("python");
}

#[test]
#[ignore = "slow: docker builds (run with --ignored)"]
fn parity_ffmpeg() {
    parity("ffmpeg");
}

#[test]
#[ignore = "slow: docker builds (run with --ignored)"]
fn parity_audiowaveform() {
    parity("audiowaveform");
}

#[test]
#[ignore = "slow: docker builds (run with --ignored)"]
fn parity_puppeteer_local() {
    parity("puppeteer-local");
}
