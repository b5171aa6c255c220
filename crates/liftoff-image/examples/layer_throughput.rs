//! Layer throughput: `cargo run --release -p liftoff-image --example layer_throughput [DIR]`.
//!
//! Without DIR, a ~100 MB tree is made from files under /usr (binaries, libraries,
//! text: a realistic mix for an image layer). Prints MB/s of tar input for gzip and zstd
//! layer writing and for extraction.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use liftoff_image::{Compression, LayerOptions, layer_from_dir, unpack_layer};

const TARGET_BYTES: u64 = 100 * 1024 * 1024;

fn collect(dir: &Path, out: &mut Vec<PathBuf>, total: &mut u64) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if *total >= TARGET_BYTES {
            return;
        }
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            collect(&p, out, total);
        } else if m.is_file() && m.len() < 20 * 1024 * 1024 {
            *total += m.len();
            out.push(p);
        }
    }
}

fn make_tree(dest: &Path) -> u64 {
    let mut files = Vec::new();
    let mut total = 0;
    for root in ["/usr/lib", "/usr/share", "/usr/bin"] {
        collect(Path::new(root), &mut files, &mut total);
    }
    for f in &files {
        let rel = f.strip_prefix("/").unwrap();
        let target = dest.join(rel);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        // Unreadable files are simply left out.
        let _ = fs::copy(f, &target);
    }
    total
}

#[allow(clippy::cast_precision_loss)] // sizes far below 2^52
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    mb(bytes) / secs
}

fn main() {
    let mut out = std::io::stdout().lock();
    let tmp = tempfile::tempdir().unwrap();
    let tree = if let Some(dir) = std::env::args_os().nth(1) {
        PathBuf::from(dir)
    } else {
        let dir = tmp.path().join("tree");
        let bytes = make_tree(&dir);
        writeln!(out, "tree: {:.1} MB of files copied from /usr", mb(bytes)).unwrap();
        dir
    };
    for compression in [Compression::Gzip, Compression::Zstd] {
        let blobs = tmp.path().join(format!("blobs-{compression:?}"));
        let opts = LayerOptions {
            compression,
            ..LayerOptions::default()
        };
        let start = Instant::now();
        let layer = layer_from_dir(&tree, &blobs, &opts).unwrap();
        let write_secs = start.elapsed().as_secs_f64();
        let dest = tmp.path().join(format!("unpacked-{compression:?}"));
        let start = Instant::now();
        unpack_layer(&layer.path, &layer.media_type, &dest).unwrap();
        let unpack_secs = start.elapsed().as_secs_f64();
        writeln!(
            out,
            "{compression:?}: tar {:.1} MB -> {:.1} MB ({:.1}%), write {write_secs:.2} s = {:.1} MB/s, unpack {unpack_secs:.2} s = {:.1} MB/s",
            mb(layer.uncompressed_size),
            mb(layer.size),
            100.0 * mb(layer.size) / mb(layer.uncompressed_size),
            mbps(layer.uncompressed_size, write_secs),
            mbps(layer.uncompressed_size, unpack_secs),
        )
        .unwrap();
        fs::remove_dir_all(&dest).unwrap();
    }
}
