//! `oci:PATH[:TAG]` and `oci-archive:FILE[:TAG]` sources, and the blob cache on its own.

mod common;

use std::fs;
use std::process::Command;

use common::{AMD64, assert_image, fixture, run};
use liftoff_registry::{
    BlobCache, ImageSource, OCI_MANIFEST, RegistryError, read_oci_archive, read_oci_layout, sha256,
};

#[test]
fn reads_tagged_images_and_indexes_from_a_layout() {
    let fx = fixture();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());

    let v1 = read_oci_layout(&fx.layout, Some("v1"), AMD64, &cache).unwrap();
    assert_image(&v1, &fx.amd64, &cache);
    assert_eq!(v1.manifest_media_type, OCI_MANIFEST);
    assert_eq!(
        v1.source,
        ImageSource::OciLayout {
            path: fx.layout.clone(),
            tag: Some("v1".to_string())
        }
    );
    assert_eq!(
        v1.source.to_string(),
        format!("oci:{}:v1", fx.layout.display())
    );

    let arm = read_oci_layout(&fx.layout, Some("multi"), ("linux", "arm64"), &cache).unwrap();
    assert_image(&arm, &fx.arm64, &cache);
    assert_eq!(arm.index_digest.as_deref(), Some(fx.index_digest.as_str()));

    let err = read_oci_layout(&fx.layout, Some("multi"), ("windows", "amd64"), &cache).unwrap_err();
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64/v8"),
        "{err}"
    );
    let err = read_oci_layout(&fx.layout, Some("nope"), AMD64, &cache)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`nope`") && err.contains("v1, arm, multi"),
        "{err}"
    );
    let err = read_oci_layout(&fx.layout, None, AMD64, &cache)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 images") && err.contains("v1, arm, multi"),
        "{err}"
    );
    let err = read_oci_layout(fx.dir.path(), None, AMD64, &cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an OCI image layout"), "{err}");
}

#[test]
fn a_single_image_layout_needs_no_tag() {
    let fx = fixture();
    let index = fs::read_to_string(fx.layout.join("index.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&index).unwrap();
    let first = &json["manifests"][0];
    fs::write(
        fx.layout.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{first}]}}"#),
    )
    .unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    assert_image(
        &read_oci_layout(&fx.layout, None, AMD64, &cache).unwrap(),
        &fx.amd64,
        &cache,
    );
}

#[test]
fn corrupt_layout_blobs_are_refused() {
    let fx = fixture();
    let (digest, bytes) = &fx.amd64.layers[1];
    let path = fx
        .layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut evil = bytes.clone();
    evil[0] ^= 1;
    fs::write(&path, &evil).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());
    let err = read_oci_layout(&fx.layout, Some("v1"), AMD64, &cache).unwrap_err();
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

    fs::remove_file(&path).unwrap();
    let err = read_oci_layout(&fx.layout, Some("v1"), AMD64, &cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("blob {digest} is missing")), "{err}");
}

#[test]
fn reads_oci_archives() {
    let fx = fixture();
    let archive = fx.dir.path().join("image.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&fx.layout)
        .arg("."));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(cache_dir.path());

    let v1 = read_oci_archive(&archive, Some("v1"), AMD64, &cache).unwrap();
    assert_image(&v1, &fx.amd64, &cache);
    assert_eq!(
        v1.source.to_string(),
        format!("oci-archive:{}:v1", archive.display())
    );
    let arm = read_oci_archive(&archive, Some("multi"), ("linux", "arm64"), &cache).unwrap();
    assert_image(&arm, &fx.arm64, &cache);

    let gz = fx.dir.path().join("image.tar.gz");
    fs::write(&gz, run(Command::new("gzip").arg("-c").arg(&archive))).unwrap();
    let err = read_oci_archive(&gz, None, AMD64, &cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gzip") && err.contains("decompress"), "{err}");
}

#[test]
fn blob_cache_verifies_what_it_hands_out() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(dir.path().join("cache"));
    let digest = cache.put_bytes(b"hello").unwrap();
    assert_eq!(digest, sha256(b"hello"));
    let path = cache.path(&digest).unwrap();
    assert_eq!(
        path,
        dir.path()
            .join("cache/blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    );
    assert_eq!(cache.read(&digest).unwrap(), b"hello");

    let source = dir.path().join("file");
    fs::write(&source, b"from a file").unwrap();
    let file_digest = cache.put_file(&source).unwrap();
    assert_eq!(file_digest, sha256(b"from a file"));
    assert_eq!(
        fs::read(cache.path(&file_digest).unwrap()).unwrap(),
        b"from a file"
    );

    // Changed behind the cache's back: never handed out, deleted, and storable again.
    fs::write(&path, b"HELLO").unwrap();
    assert_eq!(cache.read(&digest), None);
    assert!(!path.exists());
    assert_eq!(cache.put_bytes(b"hello").unwrap(), digest);
    fs::write(&path, b"hel").unwrap();
    assert_eq!(cache.path(&digest), None);

    // Malformed or unknown digests are simply absent.
    assert_eq!(cache.path("sha256:1234"), None);
    assert_eq!(cache.path("md5:d41d8cd98f00b204e9800998ecf8427e"), None);
    assert_eq!(cache.path(&sha256(b"never stored")), None);
    // No temporary files are left behind.
    let names: Vec<String> = fs::read_dir(dir.path().join("cache/blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
}
