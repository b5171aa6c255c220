//! Same inputs ⇒ byte-identical build directories (apart from the random dir name).

mod common;

use common::{dry_run, fixture, tree};

fn identical_twice(name: &str) {
    let project = fixture(name);
    let (a, ja) = dry_run(&project, &[]);
    let (b, jb) = dry_run(&project, &[]);
    assert_ne!(a, b, "each build gets its own directory");
    let files_a = tree(&a);
    assert_eq!(files_a, tree(&b), "the two builds have different files");
    assert!(files_a.len() > 5, "suspiciously small build: {files_a:?}");
    for f in &files_a {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{} differs between two builds", f.display());
    }
    assert_eq!(ja["contentHash"], jb["contentHash"]);
    std::fs::remove_dir_all(a).unwrap();
    std::fs::remove_dir_all(b).unwrap();
}

#[test]
fn hello_is_deterministic() {
    identical_twice("hello");
}

#[test]
fn externals_are_deterministic() {
    identical_twice("externals");
}

#[test]
fn cjs_deps_are_deterministic() {
    identical_twice("cjs-deps");
}
