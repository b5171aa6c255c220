//! Deterministic layer writing: digests, tar layout, headers.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{LONG_DIR, Seen, entries, is_root, layer_tar, net_raw_capability, sample_tree};
use liftoff_image::{
    Compression, LayerOptions, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD, layer_from_dir,
    sha256_digest, sha256_file,
};

fn gzip_opts() -> LayerOptions {
    LayerOptions {
        mtime: 1_700_000_000,
        ..LayerOptions::default()
    }
}

fn find<'a>(seen: &'a [Seen], path: &str) -> &'a Seen {
    seen.iter().find(|s| s.path == path).unwrap_or_else(|| {
        panic!(
            "no entry {path} in {:#?}",
            seen.iter().map(|s| &s.path).collect::<Vec<_>>()
        )
    })
}

#[test]
fn same_tree_same_digests_whatever_the_times() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let opts = gzip_opts();
    let first = layer_from_dir(&src, &tmp.path().join("blobs1"), &opts).unwrap();

    // The blob is content-addressed and its digests are right.
    assert_eq!(first.media_type, MEDIA_TYPE_LAYER_GZIP);
    assert_eq!(
        first.path,
        tmp.path()
            .join("blobs1/sha256")
            .join(first.digest.strip_prefix("sha256:").unwrap())
    );
    assert_eq!(
        sha256_file(&first.path).unwrap(),
        (first.digest.clone(), first.size)
    );
    let tar = layer_tar(&first.path);
    assert_eq!(sha256_digest(&tar), first.diff_id);
    assert_eq!(tar.len() as u64, first.uncompressed_size);
    assert_eq!(
        fs::metadata(&first.path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // No temporary files left behind.
    assert_eq!(
        fs::read_dir(tmp.path().join("blobs1/sha256"))
            .unwrap()
            .count(),
        1
    );

    // Same tree again.
    let second = layer_from_dir(&src, &tmp.path().join("blobs2"), &opts).unwrap();
    assert_eq!(second.digest, first.digest);
    assert_eq!(second.diff_id, first.diff_id);

    // Reading every file (atime) changes nothing.
    for rel in ["a/b.txt", "a-c", "z/sub/deep.txt", "a/ping"] {
        let mut buf = Vec::new();
        fs::File::open(src.join(rel))
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
    }
    let after_read = layer_from_dir(&src, &tmp.path().join("blobs3"), &opts).unwrap();
    assert_eq!(after_read.digest, first.digest);

    // Touching mtimes (files and directories) changes nothing: mtime is fixed.
    let later = SystemTime::now() + Duration::from_hours(1);
    for rel in ["a/b.txt", "z/sub/deep.txt"] {
        fs::File::options()
            .write(true)
            .open(src.join(rel))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    fs::write(src.join("a/tmp"), b"x").unwrap();
    fs::remove_file(src.join("a/tmp")).unwrap(); // bumps a/'s mtime and ctime
    let after_touch = layer_from_dir(&src, &tmp.path().join("blobs4"), &opts).unwrap();
    assert_eq!(after_touch.digest, first.digest);
    assert_eq!(after_touch.diff_id, first.diff_id);

    // Writing into the same blob dir again is fine (the rename replaces identical bytes).
    let again = layer_from_dir(&src, &tmp.path().join("blobs1"), &opts).unwrap();
    assert_eq!(again, first);

    // A content change does change the digest; a different mtime option too.
    fs::write(src.join("a/b.txt"), b"changed\n").unwrap();
    let changed = layer_from_dir(&src, &tmp.path().join("blobs5"), &opts).unwrap();
    assert_ne!(changed.diff_id, first.diff_id);
    let other_epoch = LayerOptions { mtime: 0, ..opts };
    let epoch0 = layer_from_dir(&src, &tmp.path().join("blobs5"), &other_epoch).unwrap();
    assert_ne!(epoch0.diff_id, changed.diff_id);
}

#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
#[test]
fn tar_layout_and_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let has_cap = sample_tree(&src);
    let has_dev = is_root()
        && rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join("dev-null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .is_ok();
    let layer = layer_from_dir(&src, &tmp.path().join("blobs"), &gzip_opts()).unwrap();

    // Gzip header: no name, mtime 0, OS byte 255.
    let raw = fs::read(&layer.path).unwrap();
    assert_eq!(
        &raw[..4],
        &[0x1f, 0x8b, 8, 0],
        "gzip magic, deflate, no flags (no name)"
    );
    assert_eq!(&raw[4..8], &[0, 0, 0, 0], "gzip mtime 0");
    assert_eq!(raw[9], 255, "gzip OS byte");

    let seen = entries(&layer_tar(&layer.path));
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();

    // Depth first, names sorted bytewise within each directory, parents first, no root.
    let mut expected = vec![
        "a/",
        "a/b.txt",
        "a/exec.sh",
        "a/ping",
        "a/setuid",
        "a-c",
        "abs-link",
    ];
    let deep: Vec<String> = {
        let mut v = vec!["deep/".to_owned()];
        let parts: Vec<&str> = LONG_DIR.split('/').collect();
        for i in 2..=parts.len() {
            v.push(format!("{}/", parts[..i].join("/")));
        }
        v.push(format!("{LONG_DIR}/file-with-a-long-name.txt"));
        v
    };
    expected.extend(deep.iter().map(String::as_str));
    if has_dev {
        expected.push("dev-null");
    }
    expected.extend([
        "empty/",
        "fifo",
        "z/",
        "z/.wh.gone",
        "z/hard-b",
        "z/long-link",
        "z/rel-link",
        "z/sub/",
        "z/sub/deep.txt",
    ]);
    assert_eq!(paths, expected);

    for s in &seen {
        assert_eq!(s.mtime, 1_700_000_000, "{}", s.path);
        assert!(
            s.uname.is_empty() && s.gname.is_empty(),
            "no owner names: {}",
            s.path
        );
        for (key, _) in &s.pax {
            assert!(
                key.starts_with("SCHILY.xattr."),
                "unexpected pax record {key} on {}",
                s.path
            );
            assert!(!key.contains("atime") && !key.contains("ctime"));
        }
    }
    let me = fs::metadata(&src).unwrap();
    let b = find(&seen, "a/b.txt");
    assert_eq!((b.uid, b.gid), (u64::from(me.uid()), u64::from(me.gid())));
    assert_eq!(b.kind, b'0');
    assert_eq!(b.size, 13);
    assert_eq!(find(&seen, "a-c").mode, 0o600);
    assert_eq!(find(&seen, "a/setuid").mode, 0o4755);
    assert_eq!(find(&seen, "empty/").mode, 0o1777);
    assert_eq!(find(&seen, "empty/").kind, b'5');
    assert_eq!(
        find(&seen, "z/.wh.gone").kind,
        b'0',
        "whiteouts are plain files"
    );

    let hard = find(&seen, "z/hard-b");
    assert_eq!(hard.kind, b'1');
    assert_eq!(hard.link.as_deref(), Some("a/b.txt"));
    assert_eq!(hard.size, 0);
    let rel = find(&seen, "z/rel-link");
    assert_eq!((rel.kind, rel.link.as_deref()), (b'2', Some("../a/b.txt")));
    assert_eq!(find(&seen, "abs-link").link.as_deref(), Some("/etc/passwd"));
    let long = find(&seen, "z/long-link");
    assert!(long.link.as_ref().unwrap().len() > 100);
    assert!(long.link.as_ref().unwrap().starts_with(LONG_DIR));
    assert_eq!(find(&seen, "fifo").kind, b'6');
    if has_dev {
        let dev = find(&seen, "dev-null");
        assert_eq!((dev.kind, dev.dev), (b'3', (1, 3)));
    }
    let ping = find(&seen, "a/ping");
    if has_cap {
        assert_eq!(
            ping.pax,
            vec![(
                "SCHILY.xattr.security.capability".to_owned(),
                net_raw_capability()
            )]
        );
    }
    assert!(find(&seen, "a/b.txt").pax.is_empty());
}

#[test]
fn owner_override_prefix_and_exclude() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    fs::create_dir_all(src.join("node_modules/.cache/x")).unwrap();
    fs::write(src.join("node_modules/.cache/x/big"), b"cache").unwrap();
    fs::write(src.join("node_modules/keep.js"), b"1").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
    let opts = LayerOptions {
        owner_override: Some((1000, 1000)),
        prefix: Some("app".into()),
        exclude: vec![
            "node_modules/.cache".into(),
            "z/sub/*".into(),
            "./deep".into(),
        ],
        mtime: 0,
        ..LayerOptions::default()
    };
    let layer = layer_from_dir(&src, &tmp.path().join("blobs"), &opts).unwrap();
    let seen = entries(&layer_tar(&layer.path));
    assert_eq!(seen[0].path, "app/");
    assert_eq!(
        seen[0].mode, 0o750,
        "the prefix dir takes the source dir's mode"
    );
    for s in &seen {
        assert!(s.path.starts_with("app/"), "{}", s.path);
        assert_eq!((s.uid, s.gid), (1000, 1000), "{}", s.path);
        assert_eq!(s.mtime, 0);
    }
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert!(paths.contains(&"app/node_modules/keep.js"));
    assert!(
        paths.contains(&"app/z/sub/"),
        "dir kept, its contents excluded"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.contains(".cache") || p.contains("deep")),
        "{paths:?}"
    );
    assert_eq!(
        find(&seen, "app/z/hard-b").link.as_deref(),
        Some("app/a/b.txt")
    );

    // Bad options are refused with a clear error.
    let bad = LayerOptions {
        prefix: Some("../x".into()),
        ..LayerOptions::default()
    };
    let err = layer_from_dir(&src, &tmp.path().join("blobs"), &bad).unwrap_err();
    assert!(err.to_string().contains("invalid layer prefix"), "{err}");
    let bad = LayerOptions {
        exclude: vec!["a/[".into()],
        ..LayerOptions::default()
    };
    assert!(layer_from_dir(&src, &tmp.path().join("blobs"), &bad).is_err());
    let err = layer_from_dir(
        &src.join("a/b.txt"),
        &tmp.path().join("blobs"),
        &LayerOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn zstd_layers_share_the_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let gz = layer_from_dir(&src, &tmp.path().join("blobs"), &gzip_opts()).unwrap();
    let zopts = LayerOptions {
        compression: Compression::Zstd,
        ..gzip_opts()
    };
    let zs = layer_from_dir(&src, &tmp.path().join("blobs"), &zopts).unwrap();
    assert_eq!(zs.media_type, MEDIA_TYPE_LAYER_ZSTD);
    assert_eq!(&fs::read(&zs.path).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(zs.diff_id, gz.diff_id, "same tar, different compression");
    assert_ne!(zs.digest, gz.digest);
    assert_eq!(sha256_digest(&layer_tar(&zs.path)), zs.diff_id);
    let again = layer_from_dir(&src, &tmp.path().join("blobs2"), &zopts).unwrap();
    assert_eq!(again.digest, zs.digest);
}

#[test]
fn empty_directory_makes_an_empty_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("empty");
    fs::create_dir(&src).unwrap();
    let layer = layer_from_dir(&src, tmp.path(), &LayerOptions::default()).unwrap();
    let tar = layer_tar(&layer.path);
    assert_eq!(tar.len(), 1024, "just the end-of-archive blocks");
    assert!(tar.iter().all(|b| *b == 0));
    assert!(Path::new(&layer.path).exists());
}

/// Pinned digests of a fixed tree: they change only if the tar encoding or the compressor
/// output changes (e.g. another flate2 backend gets selected, or zlib-rs/libzstd are
/// upgraded in Cargo.lock), which would change every layer digest users see.
#[test]
fn golden_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    common::write(&src, "app/index.js", b"console.log('hello')\n", 0o644);
    common::write(
        &src,
        "app/run.sh",
        &b"#!/bin/sh\nexec node index.js\n".repeat(200),
        0o755,
    );
    std::os::unix::fs::symlink("app/index.js", src.join("main.js")).unwrap();
    for dir in [&src, &src.join("app")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let opts = LayerOptions {
        mtime: 1_700_000_000,
        owner_override: Some((0, 0)),
        ..LayerOptions::default()
    };
    let gz = layer_from_dir(&src, tmp.path(), &opts).unwrap();
    let zopts = LayerOptions {
        compression: Compression::Zstd,
        ..opts
    };
    let zs = layer_from_dir(&src, tmp.path(), &zopts).unwrap();
    assert_eq!(
        (gz.diff_id.as_str(), gz.digest.as_str(), zs.digest.as_str()),
        (
            "sha256:9e1dcfa78e7b2f7d7166578f301587444ed1b69329268f1abdffaf72e4696e1b",
            "sha256:093b6fcda09775d8768749923e369f8aba022327483aafb2cc096fb299dccf40",
            "sha256:4b4b1ceb11749f102cdc25b3bc1e331c023e05183d957ea8864f5ff4042c4e8d",
        )
    );
}
