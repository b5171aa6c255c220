//! Image parity with `docker build`: one test per scenario of `scripts/parity-image`, which builds
//! the scenario's image with liftoff and the same dry-run Containerfile with a private dockerd,
//! then compares the /usr, /opt and /app trees (paths + types) and the image config (`Env`, `User`,
//! `WorkingDir`, `Entrypoint`, `Cmd`) outside the script's allow-list.
//!
//! Slow (a few minutes each; root, dockerd, network for apt/npm/PyPI): they run only with
//! `LIFTOFF_PARITY=1`, else they print a skip line and pass. They run one at a time (a lock), each
//! with its own dockerd and scratch dir under /var/tmp/liftoff-parity/<scenario>.
//! `LIFTOFF_PARITY=1 cargo test --test image_parity -- --nocapture`

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn parity(scenario: &str) {
    if std::env::var("LIFTOFF_PARITY").as_deref() != Ok("1") {
        println!("skipped: image parity `{scenario}` (set LIFTOFF_PARITY=1 to run it)");
        return;
    }
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
fn parity_python() {
    parity("python");
}

#[test]
fn parity_ffmpeg() {
    parity("ffmpeg");
}

#[test]
fn parity_audiowaveform() {
    parity("audiowaveform");
}

#[test]
fn parity_puppeteer_local() {
    parity("puppeteer-local");
}
