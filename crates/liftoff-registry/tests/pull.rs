//! Pulls against a real `docker-registry` (see `common`).

mod common;

use std::fs;
use std::process::Command;

use common::{
    AMD64, Registry, RegistryOptions, assert_image, downloaded, fixture, pull_with_events, run,
};
use liftoff_registry::{
    BlobCache, DOCKER_MANIFEST, Event, ImageSource, OCI_MANIFEST, RegistryConfig, RegistryError,
    sha256,
};

fn config() -> RegistryConfig {
    // Default: no mirrors, no Docker config (never the developer's own credentials).
    RegistryConfig::default()
}

#[test]
fn pull_by_tag_keeps_the_manifest_byte_exact() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());

    let reference = format!("{}/test/app:v1", registry.host);
    let (result, events) = pull_with_events(&reference, AMD64, &config(), &cache);
    let pulled = result.unwrap();
    assert_image(&pulled, &fx.amd64, &cache);
    assert_eq!(pulled.manifest_media_type, OCI_MANIFEST);
    assert_eq!(pulled.index_digest, None);
    assert_eq!(
        pulled.source,
        ImageSource::Registry(reference.parse().unwrap())
    );
    assert!(events.contains(&Event::Connected {
        endpoint: registry.host.clone()
    }));
    let mut fetched = downloaded(&events);
    fetched.sort();
    let mut expected: Vec<String> = fx.amd64.layers.iter().map(|(d, _)| d.clone()).collect();
    expected.push(fx.amd64.config_digest.clone());
    expected.sort();
    assert_eq!(fetched, expected);
    // The manifest is cached under its digest too.
    assert_eq!(
        cache.read(&fx.amd64.manifest_digest).unwrap(),
        fx.amd64.manifest
    );
}

#[test]
fn pull_by_digest_and_pinned_digest_mismatch() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    registry.push(&fx.layout, "arm", "test/app", "arm", &[]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());

    let by_digest = format!("{}/test/app@{}", registry.host, fx.amd64.manifest_digest);
    let (result, _) = pull_with_events(&by_digest, AMD64, &config(), &cache);
    assert_image(&result.unwrap(), &fx.amd64, &cache);

    // A tag with a digest: the digest wins, the tag is informational.
    let tagged = format!(
        "{}/test/app:arm@{}",
        registry.host, fx.amd64.manifest_digest
    );
    let fresh = tempfile::tempdir().unwrap();
    let fresh_cache = BlobCache::new(fresh.path());
    let (result, _) = pull_with_events(&tagged, AMD64, &config(), &fresh_cache);
    assert_image(&result.unwrap(), &fx.amd64, &fresh_cache);

    // A digest the registry does not have.
    let unknown = format!("{}/test/app:v1@sha256:{}", registry.host, "0".repeat(64));
    let err = pull_with_events(&unknown, AMD64, &config(), &cache)
        .0
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestNotFound { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&registry.host), "{err}");

    // The registry serves other bytes for the pinned digest (its storage was tampered with,
    // same length so the registry does not notice): refused, and nothing is cached for it.
    let stored = registry.stored_blob(&fx.arm64.manifest_digest);
    let original = fs::read(&stored).unwrap();
    let tampered = String::from_utf8(original.clone())
        .unwrap()
        .replacen("\"schemaVersion\": 2", "\"schemaVersion\":\t2", 1)
        .into_bytes();
    assert_eq!(tampered.len(), original.len());
    assert_ne!(tampered, original);
    fs::write(&stored, &tampered).unwrap();
    let pinned = format!("{}/test/app@{}", registry.host, fx.arm64.manifest_digest);
    let err = pull_with_events(&pinned, ("linux", "arm64"), &config(), &cache)
        .0
        .unwrap_err();
    match &err {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &fx.arm64.manifest_digest);
            assert_eq!(actual, &sha256(&tampered));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&registry.host) && message.contains("test/app"),
        "{message}"
    );
    assert!(cache.read(&fx.arm64.manifest_digest).is_none());
    // By tag, the served bytes disagree with the registry's Docker-Content-Digest header.
    let by_tag = format!("{}/test/app:arm", registry.host);
    let err = pull_with_events(&by_tag, ("linux", "arm64"), &config(), &cache)
        .0
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[test]
fn tampered_layer_on_the_registry_is_refused() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    let (digest, bytes) = &fx.amd64.layers[1];
    let mut evil = bytes.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    fs::write(registry.stored_blob(digest), &evil).unwrap();

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let err = pull_with_events(
        &format!("{}/test/app:v1", registry.host),
        AMD64,
        &config(),
        &cache,
    )
    .0
    .unwrap_err();
    match &err {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, digest);
            assert_eq!(actual, &sha256(&evil));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert!(cache.path(digest).is_none());
    let leftovers: Vec<_> = fs::read_dir(cache_dir.path().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn platform_is_selected_from_an_index() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "multi", "test/multi", "latest", &["--all"]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let reference = format!("{}/test/multi", registry.host);

    let amd = pull_with_events(&reference, AMD64, &config(), &cache)
        .0
        .unwrap();
    assert_image(&amd, &fx.amd64, &cache);
    assert_eq!(amd.index_digest.as_deref(), Some(fx.index_digest.as_str()));
    assert_eq!(cache.read(&fx.index_digest).unwrap(), fx.index);

    let (arm, events) = pull_with_events(&reference, ("linux", "arm64"), &config(), &cache);
    let arm = arm.unwrap();
    assert_image(&arm, &fx.arm64, &cache);
    // The base layer is shared with amd64: not downloaded again.
    let fetched = downloaded(&events);
    assert!(!fetched.contains(&fx.arm64.layers[0].0), "{fetched:?}");
    assert!(fetched.contains(&fx.arm64.layers[1].0), "{fetched:?}");

    // Pinned to the index digest, selecting arm64/v8 explicitly.
    let pinned = format!("{}/test/multi@{}", registry.host, fx.index_digest);
    let arm = pull_with_events(&pinned, ("linux", "arm64/v8"), &config(), &cache)
        .0
        .unwrap();
    assert_eq!(arm.manifest_digest, fx.arm64.manifest_digest);

    let err = pull_with_events(&reference, ("linux", "s390x"), &config(), &cache)
        .0
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RegistryError::PlatformNotFound { .. }),
        "{message}"
    );
    assert!(
        message.contains("linux/s390x") && message.contains("linux/amd64, linux/arm64/v8"),
        "{message}"
    );
}

#[test]
fn docker_schema2_manifests_are_kept_as_served() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    // skopeo converts to Docker media types (so this manifest is skopeo's serialisation).
    let mut command = Command::new("skopeo");
    command
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", fx.layout.display()))
        .arg(format!("docker://{}/test/docker:v1", registry.host));
    run(&mut command);
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/test/docker:v1", registry.host),
    ]));

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let pulled = pull_with_events(
        &format!("{}/test/docker:v1", registry.host),
        AMD64,
        &config(),
        &cache,
    )
    .0
    .unwrap();
    assert_eq!(pulled.manifest_media_type, DOCKER_MANIFEST);
    assert!(
        pulled.manifest_bytes == raw,
        "manifest bytes differ from what the registry serves"
    );
    assert_eq!(pulled.manifest_digest, sha256(&raw));
    assert_eq!(pulled.config_bytes, fx.amd64.config);
    assert!(
        pulled
            .layers
            .iter()
            .all(|l| l.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip")
    );
    for (digest, bytes) in &fx.amd64.layers {
        assert!(fs::read(cache.path(digest).unwrap()).unwrap() == *bytes);
    }
}

#[test]
fn second_pull_downloads_nothing() {
    require_tools!();
    let fx = fixture();
    let mut registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let by_tag = format!("{}/test/app:v1", registry.host);

    let (first, _) = pull_with_events(&by_tag, AMD64, &config(), &cache);
    first.unwrap();
    let first_requests = registry.liftoff_requests();
    let blob_gets = |requests: &[String]| {
        requests
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/blobs/"))
            .count()
    };
    assert_eq!(blob_gets(&first_requests), 4, "{first_requests:#?}"); // config + 3 layers

    // By tag: the tag must be resolved (a HEAD), but no blob and no manifest body is fetched.
    let (second, events) = pull_with_events(&by_tag, AMD64, &config(), &cache);
    assert_image(&second.unwrap(), &fx.amd64, &cache);
    let all = registry.liftoff_requests();
    let new = &all[first_requests.len()..];
    assert_eq!(blob_gets(new), 0, "{new:#?}");
    assert!(
        new.iter()
            .all(|r| !r.starts_with("GET /v2/test/app/manifests")),
        "{new:#?}"
    );
    assert!(
        new.iter()
            .any(|r| r.starts_with("HEAD /v2/test/app/manifests/v1")),
        "{new:#?}"
    );
    assert!(downloaded(&events).is_empty(), "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::BlobCached { .. }))
            .count(),
        4
    );

    // By digest: no request at all…
    let by_digest = format!("{}/test/app@{}", registry.host, fx.amd64.manifest_digest);
    let before = registry.liftoff_requests().len();
    let (third, events) = pull_with_events(&by_digest, AMD64, &config(), &cache);
    assert_image(&third.unwrap(), &fx.amd64, &cache);
    assert_eq!(registry.liftoff_requests().len(), before);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Connected { .. })),
        "{events:?}"
    );
    // …so it works with the registry gone.
    registry.stop();
    let (offline, _) = pull_with_events(&by_digest, AMD64, &config(), &cache);
    assert_image(&offline.unwrap(), &fx.amd64, &cache);
}

#[test]
fn tampered_cache_blob_is_detected_and_fetched_again() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let reference = format!("{}/test/app:v1", registry.host);
    pull_with_events(&reference, AMD64, &config(), &cache)
        .0
        .unwrap();

    // Same size, different content.
    let (tampered, bytes) = &fx.amd64.layers[2];
    let path = cache.path(tampered).unwrap();
    let mut evil = bytes.clone();
    evil[10] ^= 0x55;
    fs::write(&path, &evil).unwrap();
    // Truncated (as after a crash on a filesystem that reordered the writes).
    let (truncated, bytes) = &fx.amd64.layers[0];
    let truncated_path = cache.path(truncated).unwrap();
    fs::write(&truncated_path, &bytes[..bytes.len() / 2]).unwrap();

    assert!(
        cache.path(tampered).is_none(),
        "a tampered blob must not be handed out"
    );
    assert!(!path.exists(), "the tampered blob is deleted");

    let before = registry.liftoff_requests().len();
    let (result, events) = pull_with_events(&reference, AMD64, &config(), &cache);
    assert_image(&result.unwrap(), &fx.amd64, &cache);
    let mut fetched = downloaded(&events);
    fetched.sort();
    let mut expected = vec![tampered.clone(), truncated.clone()];
    expected.sort();
    assert_eq!(fetched, expected);
    let requests = registry.liftoff_requests();
    let blob_gets: Vec<_> = requests[before..]
        .iter()
        .filter(|r| r.contains("/blobs/"))
        .collect();
    assert_eq!(blob_gets.len(), 2, "{blob_gets:#?}");
}

#[test]
fn crash_leftovers_are_never_used() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let blobs = cache_dir.path().join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();

    // A download killed halfway: its temporary file holds a prefix of the blob, and (as if the
    // rename had been reordered before the data) the final name holds another prefix.
    let (digest, bytes) = &fx.amd64.layers[2];
    let hex = digest.strip_prefix("sha256:").unwrap();
    let temp = blobs.join(".tmp-crashed1");
    fs::write(&temp, &bytes[..bytes.len() / 3]).unwrap();
    fs::write(blobs.join(hex), &bytes[..bytes.len() / 2]).unwrap();
    // An old leftover is cleaned up; a recent one may belong to a running pull and stays.
    let stale = blobs.join(".tmp-crashed0");
    fs::write(&stale, b"partial").unwrap();
    run(Command::new("touch").args(["-d", "3 days ago"]).arg(&stale));

    assert!(cache.path(digest).is_none());
    let (result, events) = pull_with_events(
        &format!("{}/test/app:v1", registry.host),
        AMD64,
        &config(),
        &cache,
    );
    assert_image(&result.unwrap(), &fx.amd64, &cache);
    assert!(downloaded(&events).contains(digest));
    assert!(fs::read(blobs.join(hex)).unwrap() == *bytes);
    assert!(!stale.exists(), "stale temporary file removed");
    assert!(temp.exists(), "recent temporary file left alone");
}

#[test]
fn mirror_serves_docker_hub_references() {
    require_tools!();
    let fx = fixture();
    let mirror = Registry::start();
    mirror.push(&fx.layout, "v1", "library/node", "21-test", &[]);
    mirror.push(&fx.layout, "arm", "imbios/bun-node", "1.1", &[]);
    let config = RegistryConfig::from_vars(|name| {
        (name == "LIFTOFF_REGISTRY_MIRRORS")
            .then(|| format!("docker.io=http://{}", mirror.host).into())
    })
    .unwrap();
    assert_eq!(config.docker_config, None);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());

    let (result, events) = pull_with_events("node:21-test", AMD64, &config, &cache);
    let pulled = result.unwrap();
    assert_image(&pulled, &fx.amd64, &cache);
    assert_eq!(pulled.source.to_string(), "docker.io/library/node:21-test");
    let mirror_name = format!("mirror http://{} (for docker.io)", mirror.host);
    assert!(
        events.contains(&Event::Connected {
            endpoint: mirror_name.clone()
        }),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::EndpointFailed { .. })),
        "{events:?}"
    );
    let requests = mirror.liftoff_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /v2/library/node/manifests/21-test")),
        "{requests:#?}"
    );

    let pinned = format!("node:21-test@{}", fx.amd64.manifest_digest);
    assert_image(
        &pull_with_events(&pinned, AMD64, &config, &cache).0.unwrap(),
        &fx.amd64,
        &cache,
    );
    let user_image = pull_with_events("imbios/bun-node:1.1", ("linux", "arm64"), &config, &cache)
        .0
        .unwrap();
    assert_image(&user_image, &fx.arm64, &cache);
}

#[test]
fn mirror_failure_falls_back_to_the_registry() {
    require_tools!();
    let fx = fixture();
    let registry = Registry::start();
    registry.push(&fx.layout, "v1", "test/app", "v1", &[]);
    let dead = format!("http://127.0.0.1:{}", common::dead_port());
    let config = RegistryConfig {
        mirrors: vec![(registry.host.clone(), dead.clone())],
        ..RegistryConfig::default()
    };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let (result, events) = pull_with_events(
        &format!("{}/test/app:v1", registry.host),
        AMD64,
        &config,
        &cache,
    );
    assert_image(&result.unwrap(), &fx.amd64, &cache);
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::EndpointFailed { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [format!("mirror {dead} (for {})", registry.host)]);
    assert!(events.contains(&Event::Connected {
        endpoint: registry.host.clone()
    }));
}

#[test]
fn mirror_and_registry_both_failing_give_a_combined_error() {
    require_tools!();
    let fx = fixture();
    let mirror = Registry::start();
    mirror.push(&fx.layout, "v1", "test/app", "v1", &[]);
    // The mirror is up but lacks the tag; the registry itself is down.
    let down = format!("127.0.0.1:{}", common::dead_port());
    let config = RegistryConfig {
        mirrors: vec![(down.clone(), format!("http://{}", mirror.host))],
        ..RegistryConfig::default()
    };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let reference = format!("{down}/test/app:missing");
    let err = pull_with_events(&reference, AMD64, &config, &cache)
        .0
        .unwrap_err();
    let message = err.to_string();
    let RegistryError::AllEndpointsFailed { attempts, .. } = &err else {
        panic!("expected a combined error, got {message}");
    };
    assert_eq!(attempts.len(), 2, "{message}");
    assert!(
        matches!(attempts[0].1, RegistryError::ManifestNotFound { .. }),
        "{message}"
    );
    assert!(
        matches!(attempts[1].1, RegistryError::Transport { .. }),
        "{message}"
    );
    assert!(message.contains(&reference), "{message}");
    assert!(
        message.contains(&format!("mirror http://{}", mirror.host)),
        "{message}"
    );
    assert!(
        message.contains(&format!("\n  - could not reach {down}")),
        "{message}"
    );
}

#[test]
fn registry_down_without_mirrors_is_a_clear_error() {
    let down = format!("127.0.0.1:{}", common::dead_port());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let err = pull_with_events(&format!("{down}/a/b:c"), AMD64, &config(), &cache)
        .0
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, RegistryError::Transport { .. }), "{message}");
    assert!(
        message.starts_with(&format!("could not reach {down}")),
        "{message}"
    );
    // Both schemes were tried for a loopback registry.
    assert!(
        message.contains(&format!("https://{down}/v2/"))
            && message.contains(&format!("http://{down}/v2/")),
        "{message}"
    );
}

#[test]
fn registries_are_reached_over_tls_with_an_extra_ca() {
    require_tools!();
    let fx = fixture();
    let pki = common::pki();
    let registry = Registry::start_with(RegistryOptions {
        tls: Some((pki.chain.clone(), pki.key.clone())),
        ..RegistryOptions::default()
    });
    registry.push(
        &fx.layout,
        "v1",
        "test/tls",
        "v1",
        &[&format!("--dest-cert-dir={}", pki.skopeo_certs.display())],
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let reference = format!("{}/test/tls:v1", registry.host);

    // Without the CA: HTTPS fails verification, plain HTTP is not what the server speaks.
    let err = pull_with_events(&reference, AMD64, &config(), &cache)
        .0
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&registry.host) && message.contains("https://"),
        "{message}"
    );

    let config = RegistryConfig {
        extra_ca_certs: vec![pki.ca.clone()],
        ..RegistryConfig::default()
    };
    assert_image(
        &pull_with_events(&reference, AMD64, &config, &cache)
            .0
            .unwrap(),
        &fx.amd64,
        &cache,
    );

    let not_pem = RegistryConfig {
        extra_ca_certs: vec![pki.not_pem.clone()],
        ..RegistryConfig::default()
    };
    let err = pull_with_events(&reference, AMD64, &not_pem, &cache)
        .0
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.ext") && err.contains("PEM"), "{err}");
}
