//! Extracting layers: round trip, and refusing entries that would escape.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{is_root, net_raw_capability, sample_tree};
use liftoff_image::{
    Compression, DOCKER_LAYER_GZIP, ImageError, LayerOptions, MEDIA_TYPE_LAYER_TAR, layer_from_dir,
    unpack_layer,
};
use tar::{EntryType, Header};

const MTIME: u64 = 1_234_567_890;
const MTIME_I64: i64 = 1_234_567_890;

/// Compare two trees: kinds, modes, owners, contents, link targets, hard-link groups.
fn assert_same_tree(a: &Path, b: &Path, rel: &Path) {
    let mut names_a: Vec<_> = fs::read_dir(a.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut names_b: Vec<_> = fs::read_dir(b.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b, "entries of {}", rel.display());
    for name in names_a {
        let r = rel.join(&name);
        let (pa, pb) = (a.join(&r), b.join(&r));
        let (ma, mb) = (
            fs::symlink_metadata(&pa).unwrap(),
            fs::symlink_metadata(&pb).unwrap(),
        );
        assert_eq!(ma.file_type(), mb.file_type(), "{}", r.display());
        assert_eq!(
            (ma.uid(), ma.gid()),
            (mb.uid(), mb.gid()),
            "{}",
            r.display()
        );
        assert_eq!(mb.mtime(), MTIME_I64, "{}", r.display());
        if !ma.file_type().is_symlink() {
            assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "{}", r.display());
        }
        if ma.is_file() {
            assert_eq!(
                fs::read(&pa).unwrap(),
                fs::read(&pb).unwrap(),
                "{}",
                r.display()
            );
            assert_eq!(ma.nlink(), mb.nlink(), "{}", r.display());
        } else if ma.file_type().is_symlink() {
            assert_eq!(fs::read_link(&pa).unwrap(), fs::read_link(&pb).unwrap());
        } else if ma.is_dir() {
            assert_same_tree(a, b, &r);
        }
    }
}

#[test]
fn round_trip_gzip_and_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let has_cap = sample_tree(&src);
    if is_root() {
        std::os::unix::fs::lchown(src.join("a/b.txt"), Some(1000), Some(1001)).unwrap();
        std::os::unix::fs::lchown(src.join("z/rel-link"), Some(7), Some(8)).unwrap();
        fs::create_dir(src.join("dev")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join("dev/null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
    }
    for compression in [Compression::Gzip, Compression::Zstd] {
        let opts = LayerOptions {
            compression,
            mtime: MTIME,
            ..LayerOptions::default()
        };
        let layer = layer_from_dir(&src, &tmp.path().join("blobs"), &opts).unwrap();
        let dest = tmp.path().join(format!("out-{compression:?}"));
        unpack_layer(&layer.path, &layer.media_type, &dest).unwrap();

        // Devices are skipped on extraction; everything else comes back the same.
        if is_root() {
            assert!(!dest.join("dev/null").exists());
            fs::remove_file(src.join("dev/null")).unwrap();
        }
        assert_same_tree(&src, &dest, Path::new(""));
        if is_root() {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                src.join("dev/null"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                rustix::fs::makedev(1, 3),
            )
            .unwrap();
            assert_eq!(fs::metadata(dest.join("a/b.txt")).unwrap().uid(), 1000);
            assert_eq!(
                fs::metadata(dest.join("a/setuid")).unwrap().mode() & 0o7777,
                0o4755
            );
        }
        let b = fs::metadata(dest.join("a/b.txt")).unwrap();
        let hard = fs::metadata(dest.join("z/hard-b")).unwrap();
        assert_eq!(b.ino(), hard.ino(), "hard link restored");
        assert!(
            fs::symlink_metadata(dest.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(
            fs::read_link(dest.join("abs-link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(
            dest.join("z/.wh.gone").is_file(),
            "whiteouts stay regular files"
        );
        if has_cap {
            let mut buf = [0u8; 64];
            let n = rustix::fs::lgetxattr(dest.join("a/ping"), "security.capability", &mut buf[..])
                .unwrap();
            assert_eq!(&buf[..n], net_raw_capability().as_slice());
        }

        // Re-layering the extracted tree gives the same tar (devices left aside).
        let opts_nodev = LayerOptions {
            exclude: vec!["dev/*".into()],
            ..opts.clone()
        };
        let again = layer_from_dir(&dest, &tmp.path().join("blobs2"), &opts_nodev).unwrap();
        let orig = layer_from_dir(&src, &tmp.path().join("blobs3"), &opts_nodev).unwrap();
        assert_eq!(again.diff_id, orig.diff_id, "{compression:?}");
    }
}

#[test]
fn docker_media_type_and_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/.wh.removed"), b"").unwrap();
    fs::create_dir_all(src.join("var/lib")).unwrap();
    fs::write(src.join("var/lib/.wh..wh..opq"), b"").unwrap();
    let layer = layer_from_dir(&src, tmp.path(), &LayerOptions::default()).unwrap();
    let dest = tmp.path().join("out");
    unpack_layer(&layer.path, DOCKER_LAYER_GZIP, &dest).unwrap();
    assert!(dest.join("etc/.wh.removed").is_file());
    assert!(dest.join("var/lib/.wh..wh..opq").is_file());

    let err = unpack_layer(&layer.path, "application/octet-stream", &dest).unwrap_err();
    assert!(matches!(err, ImageError::UnsupportedMediaType(_)), "{err}");

    fs::write(tmp.path().join("junk"), b"\x1f\x8bnot really gzip").unwrap();
    let err = unpack_layer(&tmp.path().join("junk"), DOCKER_LAYER_GZIP, &dest).unwrap_err();
    assert!(matches!(err, ImageError::CorruptLayer { .. }), "{err}");
}

/// A hand-made tar entry; `name` and `link` go into the header as raw bytes so that the
/// tar crate's own path checks don't stop us from writing hostile archives.
fn raw_entry(
    out: &mut tar::Builder<Vec<u8>>,
    kind: EntryType,
    name: &str,
    link: &str,
    data: &[u8],
) {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    out.append(&h, data).unwrap();
}

fn hostile(tmp: &Path, entries: &[(EntryType, &str, &str)]) -> std::path::PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link) in entries {
        let data: &[u8] = if *kind == EntryType::Regular {
            b"pwned\n"
        } else {
            b""
        };
        raw_entry(&mut b, *kind, name, link, data);
    }
    let bytes = b.into_inner().unwrap();
    let path = tmp.join(format!(
        "hostile-{}.tar",
        liftoff_image::sha256_digest(&bytes).split_at(15).1
    ));
    fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
    path
}

fn expect_refused(tmp: &Path, name: &str, entries: &[(EntryType, &str, &str)], needle: &str) {
    let blob = hostile(tmp, entries);
    let dest = tmp.join("layers").join(name);
    let err = unpack_layer(&blob, MEDIA_TYPE_LAYER_TAR, &dest).unwrap_err();
    assert!(
        matches!(err, ImageError::UnsafeEntry { .. }),
        "{name}: {err}"
    );
    assert!(err.to_string().contains(needle), "{name}: {err}");
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn refuses_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    let outside_abs = outside.to_str().unwrap();
    let t = tmp.path();

    // `../x` next to the destination (dest is tmp/layers/NAME, so ../../x is tmp/x).
    expect_refused(t, "dotdot", &[(EntryType::Regular, "../../x", "")], "`..`");
    expect_refused(
        t,
        "dotdot-inner",
        &[(EntryType::Regular, "a/../../../x", "")],
        "`..`",
    );
    assert!(!t.join("x").exists() && !t.join("layers/x").exists());

    // Absolute names.
    let abs_name = format!("{outside_abs}/abs");
    expect_refused(
        t,
        "absolute",
        &[(EntryType::Regular, &abs_name, "")],
        "absolute",
    );
    assert!(!outside.join("abs").exists());

    // A symlink to an absolute directory outside, then a file through it.
    expect_refused(
        t,
        "abs-symlink",
        &[
            (EntryType::Symlink, "evil", outside_abs),
            (EntryType::Regular, "evil/pwned", ""),
        ],
        "symlink",
    );
    // The same with a relative symlink climbing out.
    expect_refused(
        t,
        "rel-symlink",
        &[
            (EntryType::Directory, "d/", ""),
            (EntryType::Symlink, "d/up", "../../../outside"),
            (EntryType::Regular, "d/up/pwned", ""),
        ],
        "symlink",
    );
    // A symlink replacing a directory already extracted.
    expect_refused(
        t,
        "dir-then-symlink",
        &[
            (EntryType::Directory, "etc/", ""),
            (EntryType::Symlink, "etc", outside_abs),
            (EntryType::Regular, "etc/pwned", ""),
        ],
        "symlink",
    );
    assert!(
        !outside.join("pwned").exists(),
        "nothing was written outside"
    );

    // Hard links escaping by name, by absolute name, or through a symlink.
    expect_refused(
        t,
        "hard-dotdot",
        &[(EntryType::Link, "h", "../../outside/secret")],
        "`..`",
    );
    let abs_secret = format!("{outside_abs}/secret");
    expect_refused(
        t,
        "hard-abs",
        &[(EntryType::Link, "h", &abs_secret)],
        "absolute",
    );
    expect_refused(
        t,
        "hard-via-symlink",
        &[
            (EntryType::Symlink, "s", outside_abs),
            (EntryType::Link, "h", "s/secret"),
        ],
        "symlink",
    );
    expect_refused(
        t,
        "hard-missing",
        &[(EntryType::Link, "h", "nothere")],
        "not extracted",
    );
    assert_eq!(
        fs::metadata(outside.join("secret")).unwrap().nlink(),
        1,
        "no link to the secret"
    );
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");

    // Symlinks themselves are fine, absolute or not: they resolve inside the container.
    let ok = hostile(
        t,
        &[
            (EntryType::Symlink, "etc-link", "/etc"),
            (EntryType::Symlink, "up", "../../.."),
            (EntryType::Regular, "./f", ""),
            (EntryType::Link, "./g", "f"),
        ],
    );
    let dest = t.join("layers/fine");
    unpack_layer(&ok, MEDIA_TYPE_LAYER_TAR, &dest).unwrap();
    assert_eq!(
        fs::read_link(dest.join("etc-link")).unwrap(),
        Path::new("/etc")
    );
    assert_eq!(fs::read(dest.join("g")).unwrap(), b"pwned\n");
    assert_eq!(fs::metadata(dest.join("f")).unwrap().mode() & 0o777, 0o644);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let blob = hostile(
        t,
        &[
            (EntryType::Regular, "f", ""),
            (EntryType::Link, "g", "f"),
            (EntryType::Regular, "g", ""), // replaces the link, must not write through it
            (EntryType::Directory, "d/", ""),
            (EntryType::Regular, "d/x", ""),
            (EntryType::Regular, "d", ""), // a file replacing a directory
        ],
    );
    let dest = t.join("out");
    unpack_layer(&blob, MEDIA_TYPE_LAYER_TAR, &dest).unwrap();
    assert_eq!(fs::metadata(dest.join("f")).unwrap().nlink(), 1);
    assert!(dest.join("d").is_file());
}
