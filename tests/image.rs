//! The daemonless image: built from every fixture against the local test registry
//! (the `node:21-bookworm-slim` stand-in, reached through liftoff's Docker Hub
//! mirror setting), validated with skopeo and umoci, and run: node inside the
//! unpacked rootfs imports every task file, and index.json lists the tasks.
//! Needs root (the sandbox) and `scripts/test-env/setup` (scripts/test runs it).

mod common;

use std::process::Command;

use common::image::{BASE, build, cache_dir, fails_to_build, mirrors_configured, run};
use common::{fixture, read_json, text};
use serde_json::Value;

/// skopeo and umoci accept the image; node in the unpacked rootfs imports every
/// task file; index.json has exactly the expected task ids.
fn image_runs(name: &str) {
    let project = fixture(name);
    let (dir, json) = build(&project, &cache_dir(), &[]);
    let layout = format!("oci:{}:latest", dir.join("image").display());
    let inspect: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &layout]))).unwrap();
    assert_eq!(inspect["Digest"], json["image"]["manifestDigest"]);

    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().join("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:latest", dir.join("image").display()),
        ])
        .arg(&bundle_dir));
    let rootfs = bundle_dir.join("rootfs");

    let manifest = read_json(&dir.join("build.json"));
    let imports: Vec<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("await import({:?});", f["out"].as_str().unwrap()))
        .collect();
    let script = format!(
        "{} console.log('imported', {});",
        imports.join(" "),
        imports.len()
    );
    let out = run(Command::new("env")
        .args([
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "HOME=/home/node",
            "/usr/sbin/chroot",
        ])
        .arg(&rootfs)
        .args([
            "/usr/bin/dumb-init",
            "node",
            "--input-type=module",
            "-e",
            &script,
        ]));
    assert!(
        out.contains(&format!("imported {}", imports.len())),
        "{out}"
    );

    let index = read_json(&rootfs.join("app/index.json"));
    let mut ids: Vec<&str> = index["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let expected = read_json(&project.join("expected.json"));
    let mut want: Vec<&str> = expected["tasks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    let config: Value = serde_json::from_str(&run(
        Command::new("skopeo").args(["inspect", "--config", "--raw", &layout])
    ))
    .unwrap();
    assert_eq!(config["config"]["User"], "node");
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(config["config"]["Entrypoint"][0], "dumb-init");
    assert_eq!(config["config"]["Cmd"], serde_json::json!([]));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hello_image_runs() {
    image_runs("hello");
}

#[test]
fn jsx_image_runs() {
    image_runs("jsx");
}

#[test]
fn cjs_deps_image_runs() {
    image_runs("cjs-deps");
}

#[test]
fn conditions_image_runs() {
    image_runs("conditions");
}

#[test]
fn externals_image_runs() {
    image_runs("externals");
}

fn layer_digests(json: &Value) -> Vec<(String, String)> {
    json["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn two_clean_builds_give_the_same_digest_and_a_code_change_only_the_code_layer() {
    // A private copy of hello, so the task file can change.
    let project = common::TempProject::new("hello");
    let src = fixture("hello");
    for f in [
        "package.json",
        "trigger.config.ts",
        "tsconfig.json",
        "trigger/hello.ts",
        "trigger/schema.ts",
        "trigger/lib/format.ts",
    ] {
        project.write(f, &std::fs::read_to_string(src.join(f)).unwrap());
    }
    let (cache_a, cache_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir_a, a) = build(project.path(), cache_a.path(), &[]);
    let (dir_b, b) = build(project.path(), cache_b.path(), &[]);
    assert_eq!(
        a["image"]["manifestDigest"], b["image"]["manifestDigest"],
        "two clean builds differ"
    );
    assert!(
        !a["image"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["cached"] == true && l["name"] != "base")
    );

    let hello = project.path().join("trigger/hello.ts");
    let changed = std::fs::read_to_string(&hello).unwrap() + "\nexport const ONE_MORE_LINE = 1;\n";
    std::fs::write(&hello, changed).unwrap();
    let (dir_c, c) = build(project.path(), cache_a.path(), &[]);
    let (before, after) = (layer_digests(&a), layer_digests(&c));
    assert_eq!(before.len(), after.len());
    let differing: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| x.0.as_str())
        .collect();
    assert_eq!(
        differing,
        ["app"],
        "a one-line task change must change only the code layer"
    );
    for d in [dir_a, dir_b, dir_c] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn unknown_apt_package_is_a_clear_error() {
    let project = common::TempProject::new("extensions-core");
    project
        .write("package.json", r#"{ "name": "apt-bad", "type": "module" }"#)
        .write("trigger/ok.ts", "import { task } from \"@trigger.dev/sdk/v3\";\nexport const ok = task({ id: \"ok\", run: async () => 1 });\n")
        .write(
            "trigger.config.ts",
            "import { aptGet } from \"@trigger.dev/build/extensions/core\";\nexport default { project: \"proj_apt\", maxDuration: 60, dirs: [\"trigger\"], build: { extensions: [aptGet({ packages: [\"ffmpg\"] })] } };\n",
        );
    let stderr = fails_to_build(project.path());
    assert!(stderr.contains("ffmpg"), "{stderr}");
    assert!(
        stderr.contains("ffmpeg"),
        "should suggest the nearest name: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `aptGet({ packages: ["ffmpeg"] })`: ffmpeg runs in the unpacked image, and the
/// package set liftoff installed is the one `apt-get -s` picks against the same
/// base dpkg status.
#[test]
fn apt_packages_install_like_apt_and_run() {
    let project = common::TempProject::new("extensions-core");
    project
        .write("package.json", r#"{ "name": "apt-ffmpeg", "type": "module" }"#)
        .write("trigger/ok.ts", "import { task } from \"@trigger.dev/sdk/v3\";\nexport const ok = task({ id: \"ok\", run: async () => 1 });\n")
        .write(
            "trigger.config.ts",
            "import { ffmpeg } from \"@trigger.dev/build/extensions/core\";\nexport default { project: \"proj_ffmpeg\", maxDuration: 60, dirs: [\"trigger\"], build: { extensions: [ffmpeg()] } };\n",
        );
    let (dir, json) = build(project.path(), &cache_dir(), &[]);

    // The base image's own dpkg status: the top-most base layer that has one.
    let base_layers: Vec<&str> = json["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"] == "base")
        .map(|l| l["digest"].as_str().unwrap().trim_start_matches("sha256:"))
        .collect();
    let status = base_layers
        .iter()
        .rev()
        .map(|hex| {
            cache_dir()
                .join("layers")
                .join(hex)
                .join("var/lib/dpkg/status")
        })
        .find(|p| p.is_file())
        .expect("a base layer with var/lib/dpkg/status");
    if std::fs::read_dir("/var/lib/apt/lists").map_or(0, std::iter::Iterator::count) < 3 {
        run(Command::new("apt-get").args(["update", "-qq"]));
    }
    let sim = run(Command::new("apt-get")
        .args(["-s", "-o"])
        .arg(format!("Dir::State::status={}", status.display()))
        .args([
            "-o",
            "APT::Install-Recommends=false",
            "install",
            "busybox",
            "ca-certificates",
            "dumb-init",
            "git",
            "openssl",
            "ffmpeg",
        ]));
    let mut apt: Vec<String> = sim
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    apt.sort();
    let mut ours: Vec<String> = json["image"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().split('=').next().unwrap().to_string())
        .collect();
    ours.sort();
    assert_eq!(ours, apt, "liftoff's package set differs from apt-get -s");
    assert!(ours.iter().any(|p| p == "ffmpeg"));

    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().join("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:latest", dir.join("image").display()),
        ])
        .arg(&bundle_dir));
    // The deploy env ffmpeg() records for the platform (synced at deploy) names the binaries.
    let layers = json["plan"]["layers"].as_array().unwrap();
    let ffmpeg_layer = layers.iter().find(|l| l["id"] == "ffmpeg").unwrap();
    assert_eq!(
        ffmpeg_layer["deployEnv"],
        serde_json::json!(["FFMPEG_PATH", "FFPROBE_PATH"])
    );
    for (var, bin) in [
        ("FFMPEG_PATH", "/usr/bin/ffmpeg"),
        ("FFPROBE_PATH", "/usr/bin/ffprobe"),
    ] {
        let out = run(Command::new("env")
            .args(["-i", "PATH=/usr/local/bin:/usr/bin:/bin"])
            .arg(format!("{var}={bin}"))
            .arg("/usr/sbin/chroot")
            .arg(bundle_dir.join("rootfs"))
            .args([
                "/bin/sh",
                "-c",
                &format!("exec \"${var}\" -hide_banner -version"),
            ]));
        let name = bin.rsplit('/').next().unwrap();
        assert!(out.starts_with(&format!("{name} version")), "{out}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A task file that throws when imported fails the build at indexing, naming the
/// file and showing the error.
#[test]
fn an_import_error_fails_indexing_with_the_file() {
    let project = common::TempProject::new("hello");
    project
        .write("package.json", r#"{ "name": "index-bad", "type": "module" }"#)
        .write("trigger.config.ts", "export default { project: \"proj_idx\", maxDuration: 60, dirs: [\"trigger\"] };\n")
        .write("trigger/ok.ts", "import { task } from \"@trigger.dev/sdk/v3\";\nexport const ok = task({ id: \"ok\", run: async () => 1 });\n")
        .write("trigger/broken.ts", "if (!process.env.LIFTOFF_NEVER_SET) throw new Error(\"broken at import time\");\nexport const x = 1;\n");
    let stderr = fails_to_build(project.path());
    assert!(stderr.contains("indexing the tasks failed"), "{stderr}");
    assert!(stderr.contains("broken"), "should name the file: {stderr}");
    assert!(
        stderr.contains("broken at import time"),
        "should show the error: {stderr}"
    );
}

/// A build killed with SIGKILL in the middle of its cached steps leaves nothing
/// a later build would use half-written: the rebuild with the same cache succeeds
/// and gives the digest of a clean build.
#[test]
fn sigkill_mid_build_never_poisons_the_cache() {
    mirrors_configured();
    let project = fixture("hello");
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_liftoff"))
        .args(["deploy", "--dry-run"])
        .arg(&project)
        .args(["--base-image", BASE, "--cache-dir"])
        .arg(cache.path())
        .args(["--log-level", "none"])
        .spawn()
        .unwrap();
    // Kill once the packages step has started writing (its staging dir exists).
    let started = std::time::Instant::now();
    let staging = cache.path().join("steps/packages");
    while started.elapsed() < std::time::Duration::from_mins(1) {
        let busy = std::fs::read_dir(&staging).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        });
        if busy || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();

    let (dir_a, rebuilt) = build(&project, cache.path(), &[]);
    let clean = tempfile::tempdir().unwrap();
    let (dir_b, fresh) = build(&project, clean.path(), &[]);
    assert_eq!(
        rebuilt["image"]["manifestDigest"],
        fresh["image"]["manifestDigest"]
    );
    for d in [dir_a, dir_b] {
        std::fs::remove_dir_all(d).unwrap();
    }
    // Killed builds may leave their build dir behind; they are never reused.
}

/// Where neither root overlay mounts nor user namespaces work (here: inside a user
/// namespace whose `user.max_user_namespaces` is 0), the image build stops before
/// any download with an error that says what is missing and how to fix it.
#[test]
fn sandbox_unavailable_is_a_clear_error() {
    mirrors_configured();
    let project = fixture("hello");
    let cache = tempfile::tempdir().unwrap();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} deploy --dry-run {} --base-image {BASE} --cache-dir {}",
        env!("CARGO_BIN_EXE_liftoff"),
        project.display(),
        cache.path().display()
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot run build steps on this machine"),
        "{stderr}"
    );
    assert!(
        stderr.contains("run liftoff as root")
            && stderr.contains("user namespaces")
            && stderr.contains("macOS"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !cache.path().join("blobs").exists(),
        "nothing is downloaded before the sandbox check"
    );
}
