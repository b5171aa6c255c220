//! A whole image: hand-written base config + base layer, two new layers, the final-stage
//! config of upstream's Containerfile, an OCI layout and an oci-archive, checked with
//! `skopeo` and `umoci` (both must be installed: `apt-get install -y skopeo umoci`).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::write;
use liftoff_image::{
    Blob, Compression, DOCKER_LAYER_GZIP, Descriptor, ImageConfigBuilder, ImageError,
    ImageManifest, LayerOptions, MEDIA_TYPE_LAYER_GZIP, ManifestRef, OciLayout, layer_from_dir,
    sha256_digest, write_oci_archive, write_oci_layout,
};
use serde_json::{Value, json};

const EPOCH: u64 = 1_700_000_000;
const RUN_CONTROLLER: &str =
    "/app/node_modules/trigger.dev/dist/esm/entryPoints/deploy-run-controller.mjs";

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed; these tests need it: apt-get install -y skopeo umoci")
    })
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn skopeo_json(args: &[&str]) -> Value {
    serde_json::from_slice(&run(Command::new(tool("skopeo")).args(args))).unwrap()
}

/// The final-stage ENV line of upstream's Containerfile (build args left empty).
const FINAL_ENV: &[(&str, &str)] = &[
    ("TRIGGER_PROJECT_ID", "proj_abc"),
    ("TRIGGER_DEPLOYMENT_ID", "dep_123"),
    ("TRIGGER_DEPLOYMENT_VERSION", "20250101.1"),
    ("TRIGGER_CONTENT_HASH", "c0ffee"),
    ("TRIGGER_PROJECT_REF", "proj_ref"),
    ("NODE_EXTRA_CA_CERTS", ""),
    ("NODE_ENV", "production"),
    ("NODE_OPTIONS", "--max_old_space_size=8192"),
];

struct Built {
    layout: PathBuf,
    manifest: ManifestRef,
    config: Value,
    layers: Vec<Descriptor>,
}

/// Base layer as if pulled from a registry (Docker media type, kept in a separate blob
/// cache), then the app layer and a whiteout layer written straight into the layout.
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn build(work: &Path, out: &Path, wh_compression: Compression) -> Built {
    // Base rootfs.
    let base = work.join("base");
    if !base.exists() {
        write(
            &base,
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n",
            0o644,
        );
        write(&base, "etc/group", b"root:x:0:\nnode:x:1000:\n", 0o644);
        write(&base, "etc/removed-later.txt", b"gone soon\n", 0o644);
        write(
            &base,
            "usr/bin/dumb-init",
            b"#!/bin/sh\nexec \"$@\"\n",
            0o755,
        );
        write(
            &base,
            "usr/local/bin/node",
            b"#!/bin/sh\necho node\n",
            0o755,
        );
        fs::create_dir_all(base.join("home/node")).unwrap();
        fs::create_dir_all(base.join("tmp")).unwrap();
        symlink("usr/bin", base.join("bin")).unwrap();
    }
    let cache = work.join("pull-cache");
    let base_layer = layer_from_dir(&base, &cache, &LayerOptions::default()).unwrap();
    let base_desc =
        Descriptor::for_base_layer(DOCKER_LAYER_GZIP, &base_layer.digest, base_layer.size).unwrap();
    assert_eq!(base_desc.media_type, MEDIA_TYPE_LAYER_GZIP);

    // Hand-written base image config (like node:21-bookworm-slim's).
    let base_config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-04-10T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_VERSION=21.7.3"],
            "Entrypoint": ["docker-entrypoint.sh"],
            "Cmd": ["node"],
            "Labels": null
        },
        "rootfs": {"type": "layers", "diff_ids": [base_layer.diff_id]},
        "history": [{"created": "2024-04-10T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD rootfs"}],
        "moby.buildkit.buildinfo.v1": "eyJ9"
    });

    // App (COPY --chown=node:node /app ./) and a layer deleting a base file.
    let app = work.join("app");
    if !app.exists() {
        write(&app, "index.json", b"{\"tasks\":[]}\n", 0o644);
        write(&app, "package.json", b"{\"type\":\"module\"}\n", 0o644);
        write(
            &app,
            "node_modules/trigger.dev/dist/esm/entryPoints/deploy-run-controller.mjs",
            b"console.log('run')\n",
            0o644,
        );
        write(&app, "node_modules/.bin/.keep", b"", 0o644);
    }
    let wh = work.join("whiteout");
    if !wh.exists() {
        write(&wh, "etc/.wh.removed-later.txt", b"", 0o644);
    }
    let layout = OciLayout::create(out).unwrap();
    let app_layer = layer_from_dir(
        &app,
        &layout.blobs_dir(),
        &LayerOptions {
            mtime: EPOCH,
            owner_override: Some((1000, 1000)),
            prefix: Some("app/".into()),
            ..LayerOptions::default()
        },
    )
    .unwrap();
    let wh_layer = layer_from_dir(
        &wh,
        &layout.blobs_dir(),
        &LayerOptions {
            mtime: EPOCH,
            compression: wh_compression,
            ..LayerOptions::default()
        },
    )
    .unwrap();

    let mut cfg = ImageConfigBuilder::from_base(base_config).unwrap();
    cfg.created(EPOCH)
        .user("node")
        .workdir("/app")
        .add_history("USER node")
        .add_history("WORKDIR /app");
    for (k, v) in FINAL_ENV {
        cfg.env(*k, *v);
    }
    cfg.add_history("ENV TRIGGER_PROJECT_ID=... NODE_OPTIONS=\"--max_old_space_size=8192\"")
        .add_layer(
            &app_layer.diff_id,
            "COPY --from=build --chown=node:node /app ./",
        )
        .add_layer(&wh_layer.diff_id, "RUN rm /etc/removed-later.txt")
        .entrypoint(Some(vec![
            "dumb-init".into(),
            "node".into(),
            RUN_CONTROLLER.into(),
        ]))
        .cmd(Some(vec![]))
        .add_history("ENTRYPOINT [\"dumb-init\" \"node\" \"...\"]")
        .add_history("CMD []")
        .oci_labels(Some("https://github.com/example/tasks"), Some("0123abc"));
    let config = cfg.build().unwrap();

    let layers = vec![base_desc, app_layer.descriptor(), wh_layer.descriptor()];
    let manifest = ImageManifest::new(config.descriptor(), layers.clone());
    let blobs = vec![
        Blob::from(&config),
        Blob::from(&base_layer),
        Blob::from(&app_layer),
        Blob::from(&wh_layer),
    ];
    let mref = write_oci_layout(out, &manifest, &blobs, "latest").unwrap();
    Built {
        layout: out.to_owned(),
        manifest: mref,
        config: serde_json::from_slice(&config.bytes).unwrap(),
        layers,
    }
}

#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
#[test]
fn full_image_validates_with_skopeo_and_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let built = build(tmp.path(), &tmp.path().join("oci"), Compression::Gzip);
    let image = format!("oci:{}:latest", built.layout.display());

    // The layout's own files.
    assert_eq!(
        fs::read_to_string(built.layout.join("oci-layout")).unwrap(),
        "{\"imageLayoutVersion\":\"1.0.0\"}"
    );
    let index: Value =
        serde_json::from_slice(&fs::read(built.layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"],
        built.manifest.digest.as_str()
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert_eq!(sha256_digest(&built.manifest.bytes), built.manifest.digest);

    // skopeo: raw manifest byte for byte, digest, layers, config.
    let raw = run(Command::new(tool("skopeo")).args(["inspect", "--raw", &image]));
    assert_eq!(raw, built.manifest.bytes);
    let info = skopeo_json(&["inspect", &image]);
    assert_eq!(info["Digest"], built.manifest.digest.as_str());
    let layer_digests: Vec<&str> = built.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(info["Layers"], json!(layer_digests));
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        info["Labels"]["org.opencontainers.image.revision"],
        "0123abc"
    );
    // `--config` alone re-serialises through Go structs (dropping `"Cmd": []` and unknown
    // fields); `--raw` gives the blob as stored.
    let config_bytes =
        run(Command::new(tool("skopeo")).args(["inspect", "--config", "--raw", &image]));
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(config, built.config);
    let c = &config["config"];
    assert_eq!(c["User"], "node");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(
        c["Entrypoint"],
        json!(["dumb-init", "node", RUN_CONTROLLER])
    );
    assert_eq!(c["Cmd"], json!([]));
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        "NODE_VERSION=21.7.3".to_owned(),
    ];
    env.extend(FINAL_ENV.iter().map(|(k, v)| format!("{k}={v}")));
    assert_eq!(c["Env"], json!(env));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] != true).count(),
        3
    );
    assert_eq!(
        config["moby.buildkit.buildinfo.v1"], "eyJ9",
        "unknown base fields kept"
    );

    // umoci: unpack the image into a runtime bundle and look at the rootfs.
    let bundle = tmp.path().join("bundle");
    run(Command::new(tool("umoci"))
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", built.layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("app/index.json")).unwrap(),
        "{\"tasks\":[]}\n"
    );
    assert!(rootfs.join("app").join(&RUN_CONTROLLER[5..]).is_file());
    assert_eq!(
        fs::read_link(rootfs.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert!(rootfs.join("etc/passwd").is_file());
    assert!(
        !rootfs.join("etc/removed-later.txt").exists(),
        "the whiteout removed it"
    );
    assert!(!rootfs.join("etc/.wh.removed-later.txt").exists());
    if common::is_root() {
        let app = fs::metadata(rootfs.join("app")).unwrap();
        assert_eq!((app.uid(), app.gid()), (1000, 1000));
        assert_eq!(
            fs::metadata(rootfs.join("app/package.json")).unwrap().uid(),
            1000
        );
    }
    let runtime: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let process = &runtime["process"];
    assert_eq!(
        process["args"],
        json!(["dumb-init", "node", RUN_CONTROLLER])
    );
    assert_eq!(process["cwd"], "/app");
    assert_eq!(
        process["user"]["uid"], 1000,
        "USER node resolved through /etc/passwd"
    );
    assert!(
        process["env"]
            .as_array()
            .unwrap()
            .contains(&json!("NODE_OPTIONS=--max_old_space_size=8192"))
    );

    // oci-archive: deterministic, and skopeo reads it.
    let archive = tmp.path().join("image.oci.tar");
    write_oci_archive(&built.layout, &archive).unwrap();
    let info = skopeo_json(&["inspect", &format!("oci-archive:{}", archive.display())]);
    assert_eq!(info["Digest"], built.manifest.digest.as_str());
    let archive2 = tmp.path().join("image2.oci.tar");
    write_oci_archive(&built.layout, &archive2).unwrap();
    assert_eq!(fs::read(&archive).unwrap(), fs::read(&archive2).unwrap());
}

#[test]
fn image_is_reproducible_and_retaggable() {
    let tmp = tempfile::tempdir().unwrap();
    let a = build(
        &tmp.path().join("w"),
        &tmp.path().join("a"),
        Compression::Gzip,
    );
    // Same inputs (rebuilt trees read again), another layout: identical manifest.
    let b = build(
        &tmp.path().join("w"),
        &tmp.path().join("b"),
        Compression::Gzip,
    );
    assert_eq!(a.manifest, b.manifest);
    let ar_a = tmp.path().join("a.tar");
    let ar_b = tmp.path().join("b.tar");
    write_oci_archive(&a.layout, &ar_a).unwrap();
    write_oci_archive(&b.layout, &ar_b).unwrap();
    assert_eq!(fs::read(&ar_a).unwrap(), fs::read(&ar_b).unwrap());

    // Re-writing the same tag replaces the index entry; another tag adds one.
    let layout = OciLayout::create(&a.layout).unwrap();
    let manifest: ImageManifest = serde_json::from_slice(&a.manifest.bytes).unwrap();
    assert_eq!(
        manifest.to_bytes(),
        a.manifest.bytes,
        "manifest bytes are stable"
    );
    layout.write_manifest(&manifest, "latest").unwrap();
    layout.write_manifest(&manifest, "v1").unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(a.layout.join("index.json")).unwrap()).unwrap();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(tags, ["latest", "v1"]);

    // Missing blobs, wrong sizes and wrong digests are caught.
    let mut missing = manifest.clone();
    missing.layers.push(Descriptor::new(
        MEDIA_TYPE_LAYER_GZIP,
        &sha256_digest(b"nope"),
        4,
    ));
    let err = layout.write_manifest(&missing, "x").unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    let mut wrong_size = manifest.clone();
    wrong_size.layers[0].size += 1;
    let err = layout.write_manifest(&wrong_size, "x").unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
    let bogus = Blob::Bytes {
        digest: sha256_digest(b"a"),
        bytes: b"b".to_vec(),
    };
    assert!(matches!(
        layout.put_blob(&bogus),
        Err(ImageError::DigestMismatch { .. })
    ));
    let err = write_oci_layout(&tmp.path().join("c"), &manifest, &[], "bad tag").unwrap_err();
    assert!(matches!(err, ImageError::InvalidTag(_)), "{err}");
}

/// A zstd layer: skopeo copies the image (reading and verifying every blob) and inspects
/// it. (umoci 0.4.7, Debian 12's, cannot unpack zstd layers at all.)
#[test]
fn zstd_layer_image_copies_with_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let built = build(tmp.path(), &tmp.path().join("oci"), Compression::Zstd);
    assert_eq!(
        built.layers[2].media_type,
        liftoff_image::MEDIA_TYPE_LAYER_ZSTD
    );
    let src = format!("oci:{}:latest", built.layout.display());
    let dst = format!("oci:{}:copied", tmp.path().join("copy").display());
    run(Command::new(tool("skopeo")).args(["copy", "--quiet", &src, &dst]));
    let info = skopeo_json(&["inspect", &dst]);
    assert_eq!(
        info["Digest"],
        built.manifest.digest.as_str(),
        "copied byte for byte"
    );
    let archive = tmp.path().join("z.oci.tar");
    write_oci_archive(&built.layout, &archive).unwrap();
    let dst2 = format!("oci:{}:fromarchive", tmp.path().join("copy2").display());
    run(Command::new(tool("skopeo")).args([
        "copy",
        "--quiet",
        &format!("oci-archive:{}", archive.display()),
        &dst2,
    ]));
    assert_eq!(
        skopeo_json(&["inspect", &dst2])["Digest"],
        built.manifest.digest.as_str()
    );
}
