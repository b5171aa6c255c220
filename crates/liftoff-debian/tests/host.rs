//! End-to-end tests against this machine, a Debian system with working apt sources: the host
//! rootfs is the base system (read only), apt-get's simulation is the oracle for resolution,
//! and the real mirrors of the host's sources serve indexes and .debs.
//!
//! Network use: the indexes are fetched once into a shared temp cache; only jq's closure and
//! one small library are downloaded.

use liftoff_debian::{
    BaseSystem, DebianError, Plan, PlannedPackage, Requested, fetch, resolve, unpack,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

fn host() -> &'static BaseSystem {
    static BASE: OnceLock<BaseSystem> = OnceLock::new();
    BASE.get_or_init(|| BaseSystem::read(Path::new("/")).expect("the host is a Debian system"))
}

fn quiet(_: &str) {}

fn req(names: &[&str]) -> Vec<Requested> {
    names.iter().map(|n| Requested::parse(n).unwrap()).collect()
}

/// A cache shared by the tests that only read it, warmed once so indexes are fetched once.
fn shared_cache() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            resolve(host(), &req(&["jq"]), dir.path(), &quiet)
                .expect("indexes can be fetched and verified");
            dir
        })
        .path()
}

/// Copy the shared cache's verified indexes into a fresh cache (for tests that tamper with it).
fn private_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["indexes", "releases"] {
        let from = shared_cache().join(sub);
        let to = dir.path().join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    dir
}

/// apt-get's own answer, from the host's apt lists and the given dpkg status file.
fn apt_plan(status: &Path, package: &str) -> BTreeSet<String> {
    apt_try_plan(status, package).unwrap_or_else(|| panic!("apt-get -s install {package} failed"))
}

/// `None` when apt-get refuses (unmet dependencies).
fn apt_try_plan(status: &Path, package: &str) -> Option<BTreeSet<String>> {
    refresh_apt_lists();
    let out = Command::new("apt-get")
        .args(["-s", "-o"])
        .arg(format!("Dir::State::status={}", status.display()))
        .args(["-o", "APT::Install-Recommends=false", "install", package])
        .output()
        .expect("apt-get runs");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("Inst "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
    )
}

fn names(plan: &Plan) -> BTreeSet<String> {
    plan.packages.iter().map(|p| p.name.clone()).collect()
}

/// apt's lists must describe the same archive state as the indexes we fetched: compare the
/// `Date:` of each `InRelease` and run `apt-get update` when they differ (or are missing).
fn refresh_apt_lists() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap();
    if *done {
        return;
    }
    let dates = |dir: &Path, suffix: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter_map(|t| {
                        t.lines()
                            .find(|l| l.starts_with("Date:"))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let ours = dates(&shared_cache().join("releases"), "InRelease");
    let apts = dates(Path::new("/var/lib/apt/lists"), "_InRelease");
    if !ours.is_subset(&apts) {
        let st = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .expect("apt-get update runs");
        assert!(st.success(), "apt-get update failed");
    }
    *done = true;
}

#[test]
fn resolve_matches_apt_on_the_host() {
    let status = Path::new("/var/lib/dpkg/status");
    for pkg in ["ffmpeg", "python3", "jq"] {
        let plan = resolve(host(), &req(&[pkg]), shared_cache(), &quiet).unwrap();
        assert_eq!(names(&plan), apt_plan(status, pkg), "package set for {pkg}");
        let sources: BTreeSet<&str> = host().sources().iter().map(|s| s.uri.as_str()).collect();
        for p in &plan.packages {
            assert!(
                sources.contains(p.base_url.as_str()),
                "{} comes from {}, not a host source",
                p.name,
                p.base_url
            );
            assert_eq!(p.sha256.len(), 64);
        }
        let sorted: Vec<&str> = plan.packages.iter().map(|p| p.name.as_str()).collect();
        assert!(
            sorted.windows(2).all(|w| w[0] < w[1]),
            "plan is sorted by name"
        );
    }
}

/// A smaller base than the host (the required/essential packages and their dependencies),
/// where the resolver has many more choices to make; apt must agree on each of them.
#[test]
fn resolve_matches_apt_on_a_minimal_base() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let status = minimal_status(&std::fs::read_to_string("/var/lib/dpkg/status").unwrap());
    std::fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), status).unwrap();
    copy_tree(
        Path::new("/etc/apt/sources.list.d"),
        &r.join("etc/apt/sources.list.d"),
    );
    copy_tree(
        Path::new("/etc/apt/trusted.gpg.d"),
        &r.join("etc/apt/trusted.gpg.d"),
    );
    copy_tree(
        Path::new("/usr/share/keyrings"),
        &r.join("usr/share/keyrings"),
    );
    if Path::new("/etc/apt/sources.list").exists() {
        std::fs::copy("/etc/apt/sources.list", r.join("etc/apt/sources.list")).unwrap();
    }
    let base = BaseSystem::read(r).unwrap();
    assert_eq!(base.architecture(), host().architecture());
    for pkg in ["ffmpeg", "python3", "jq", "build-essential", "chromium"] {
        let plan = resolve(&base, &req(&[pkg]), shared_cache(), &quiet).unwrap();
        let ours = names(&plan);
        assert_eq!(
            ours,
            apt_plan(&r.join("var/lib/dpkg/status"), pkg),
            "package set for {pkg}"
        );
        assert!(
            ours.len() > 2,
            "{pkg} pulls in dependencies on a minimal base"
        );
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The installed stanzas of priority required or Essential, plus whatever installed packages
/// they depend on (first installed alternative), so the result is a consistent dpkg status.
fn minimal_status(status: &str) -> String {
    let mut stanzas: BTreeMap<String, String> = BTreeMap::new();
    for s in status.split("\n\n") {
        if !s.lines().any(|l| l == "Status: install ok installed") {
            continue;
        }
        if let Some(name) = s.lines().find_map(|l| l.strip_prefix("Package: ")) {
            stanzas.insert(name.to_string(), s.trim_matches('\n').to_string());
        }
    }
    let field = |s: &str, f: &str| -> String {
        let mut out = String::new();
        let mut on = false;
        for l in s.lines() {
            if let Some(v) = l.strip_prefix(&format!("{f}: ")) {
                out.push_str(v);
                on = true;
            } else if on && l.starts_with(' ') {
                out.push_str(l);
            } else {
                on = false;
            }
        }
        out
    };
    let mut providers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, s) in &stanzas {
        for p in field(s, "Provides").split(',') {
            if let Some(v) = p.split_whitespace().next() {
                providers.entry(v.to_string()).or_default().push(n.clone());
            }
        }
    }
    let mut keep: BTreeSet<String> = stanzas
        .iter()
        .filter(|(_, s)| {
            s.lines()
                .any(|l| l == "Priority: required" || l == "Essential: yes")
        })
        .map(|(n, _)| n.clone())
        .collect();
    loop {
        let mut add = Vec::new();
        for n in &keep {
            let s = &stanzas[n];
            let deps = format!("{},{}", field(s, "Pre-Depends"), field(s, "Depends"));
            for group in deps.split(',').filter(|g| !g.trim().is_empty()) {
                let alts: Vec<&str> = group
                    .split('|')
                    .filter_map(|a| a.split_whitespace().next())
                    .map(|a| a.split(':').next().unwrap_or(a))
                    .collect();
                let ok = alts.iter().any(|a| {
                    keep.contains(*a)
                        || providers
                            .get(*a)
                            .is_some_and(|ps| ps.iter().any(|p| keep.contains(p)))
                });
                if ok {
                    continue;
                }
                if let Some(a) = alts.iter().find_map(|a| {
                    stanzas
                        .get(*a)
                        .map(|_| (*a).to_string())
                        .or_else(|| providers.get(*a).map(|ps| ps[0].clone()))
                }) {
                    add.push(a);
                }
            }
        }
        let before = keep.len();
        keep.extend(add);
        if keep.len() == before {
            break;
        }
    }
    let mut out = String::new();
    for n in &keep {
        out.push_str(&stanzas[n]);
        out.push_str("\n\n");
    }
    out
}

#[test]
fn pinned_versions_must_exist() {
    let err = resolve(
        host(),
        &req(&["jq=0.0.1-nonexistent"]),
        shared_cache(),
        &quiet,
    )
    .unwrap_err();
    let DebianError::VersionNotFound { ref available, .. } = err else {
        panic!("unexpected error: {err}")
    };
    assert!(!available.is_empty());
    let msg = err.to_string();
    assert!(
        msg.contains("jq") && msg.contains("0.0.1-nonexistent") && msg.contains(&available[0]),
        "{msg}"
    );

    // Every available version can be pinned; apt agrees on what it takes (or that it cannot
    // be installed, when its exact dependencies are gone from the archive).
    for v in available {
        let pinned = format!("jq={v}");
        let apt = apt_try_plan(Path::new("/var/lib/dpkg/status"), &pinned);
        match resolve(host(), &req(&[&pinned]), shared_cache(), &quiet) {
            Ok(plan) => {
                assert_eq!(Some(names(&plan)), apt, "package set for {pinned}");
                if host().installed_version("jq") != Some(v.as_str()) {
                    assert_eq!(
                        plan.packages
                            .iter()
                            .find(|p| p.name == "jq")
                            .map(|p| p.version.as_str()),
                        Some(v.as_str())
                    );
                }
            }
            Err(e) => {
                assert!(
                    matches!(e, DebianError::Unsatisfiable { .. }),
                    "{pinned}: {e}"
                );
                assert_eq!(apt, None, "apt installs {pinned} but we refused: {e}");
                assert!(e.to_string().contains("libjq1"), "{e}");
            }
        }
    }
}

#[test]
fn unknown_packages_get_suggestions() {
    let err = resolve(host(), &req(&["ffmpg"]), shared_cache(), &quiet).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DebianError::UnknownPackage { .. }), "{msg}");
    assert!(
        msg.contains("unknown package `ffmpg`") && msg.contains("`ffmpeg`"),
        "{msg}"
    );
    let err = resolve(host(), &req(&["pyhton3"]), shared_cache(), &quiet).unwrap_err();
    assert!(err.to_string().contains("`python3`"), "{err}");
}

#[test]
fn shell_metacharacters_are_rejected() {
    for bad in [
        "jq; rm -rf /",
        "jq && id",
        "$(id)",
        "`id`",
        "jq|sh",
        "jq>x",
        "jq\nid",
        "jq=1.6'",
        "jq=$(id)",
        "jq=1 2",
        "Jq",
        "../jq",
    ] {
        let err = Requested::parse(bad).unwrap_err();
        assert!(
            matches!(
                err,
                DebianError::InvalidPackageName { .. } | DebianError::InvalidVersion { .. }
            ),
            "{bad}: {err}"
        );
        assert!(
            err.to_string().contains(bad),
            "the error names the input: {err}"
        );
    }
    assert!(Requested::parse("libstdc++6=12.2.0-14+deb12u1").is_ok());
    assert!(Requested::parse("python3.11").is_ok());
}

#[test]
fn not_debian_based_rootfs_is_explained() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/alpine-release"), "3.20.0\n").unwrap();
    let err = BaseSystem::read_for(root.path(), &req(&["ffmpeg", "jq=1.6"])).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DebianError::NotDebianBased { .. }));
    assert!(
        msg.contains("the base image is not Debian-based (no /var/lib/dpkg/status")
            && msg.contains("image packages (ffmpeg, jq=1.6) need a Debian or Ubuntu base image"),
        "{msg}"
    );
}

#[test]
fn expired_valid_until_is_an_error() {
    let url = "http://mirror.invalid/debian-security/dists/stable-security/InRelease";
    let now = 1_800_000_000; // Fri, 15 Jan 2027
    let err = liftoff_debian::check_release_dates(
        Some("Thu, 26 Nov 2026 21:03:35 UTC"),
        Some("Thu, 03 Dec 2026 21:03:35 UTC"),
        now,
        url,
    )
    .unwrap_err();
    assert!(matches!(err, DebianError::ReleaseExpired { .. }));
    assert!(
        err.to_string()
            .contains("Valid-Until is Thu, 03 Dec 2026 21:03:35 UTC"),
        "{err}"
    );
    liftoff_debian::check_release_dates(
        Some("Thu, 26 Nov 2026 21:03:35 UTC"),
        Some("Sat, 16 Jan 2027 00:00:00 UTC"),
        now,
        url,
    )
    .unwrap();
}

#[test]
fn truncated_cached_index_is_detected_and_refetched() {
    let cache = private_cache();
    // Truncate the smallest cached index (the cheapest to fetch again).
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(cache.path().join("indexes"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (std::fs::metadata(&p).unwrap().len(), p)
        })
        .collect();
    files.sort();
    let (size, victim) = files[0].clone();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let messages = Mutex::new(Vec::new());
    let plan = resolve(host(), &req(&["jq"]), cache.path(), &|m| {
        messages.lock().unwrap().push(m.to_string());
    })
    .unwrap();
    assert!(
        plan.packages.iter().any(|p| p.name == "jq") || host().installed_version("jq").is_some()
    );
    let messages = messages.into_inner().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("does not match InRelease") && m.contains("fetching it again")),
        "{messages:#?}"
    );
    assert_eq!(
        std::fs::metadata(&victim).unwrap().len(),
        size,
        "the index was fetched again"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), bytes);
}

/// A package that ships files under /lib and is not installed on the host (the resolver only
/// returns new packages and upgrades).
fn lib_package() -> &'static str {
    let candidates = ["libnl-3-200", "libiw30", "libfuse2", "libnl-route-3-200"];
    candidates
        .into_iter()
        .find(|p| host().installed_version(p).is_none())
        .expect("one of the /lib test packages is not installed on the host")
}

#[test]
fn fetch_and_unpack_jq_and_a_lib_package() {
    let cache = tempfile::tempdir().unwrap();
    // Reuse the verified indexes; the .debs are downloaded into this test's own cache.
    for sub in ["indexes", "releases"] {
        copy_tree(&shared_cache().join(sub), &cache.path().join(sub));
    }
    let lib = lib_package();
    let plan = resolve(host(), &req(&["jq", lib]), cache.path(), &quiet).unwrap();
    assert!(plan.packages.iter().any(|p| p.name == lib));
    let debs = fetch(&plan, cache.path(), &quiet).unwrap();
    assert_eq!(debs.len(), plan.packages.len());
    for (p, d) in plan.packages.iter().zip(&debs) {
        assert_eq!(
            d.file_name().unwrap().to_string_lossy(),
            format!("{}.deb", p.sha256)
        );
        assert_eq!(std::fs::metadata(d).unwrap().len(), p.size);
    }

    // Cached: nothing is downloaded again.
    let messages = Mutex::new(Vec::new());
    fetch(&plan, cache.path(), &|m| {
        messages.lock().unwrap().push(m.to_string());
    })
    .unwrap();
    assert!(
        messages
            .lock()
            .unwrap()
            .iter()
            .all(|m| !m.contains("downloading")),
        "{messages:?}"
    );

    // A tampered cached .deb is deleted and downloaded again, never used.
    let victim = &debs[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let good = bytes.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let messages = Mutex::new(Vec::new());
    let again = fetch(&plan, cache.path(), &|m| {
        messages.lock().unwrap().push(m.to_string());
    })
    .unwrap();
    assert_eq!(&again[0], victim);
    assert_eq!(
        std::fs::read(victim).unwrap(),
        good,
        "the tampered file was replaced"
    );
    let messages = messages.into_inner().unwrap();
    assert!(
        messages.iter().any(|m| m.contains("does not verify")),
        "{messages:?}"
    );

    let out = tempfile::tempdir().unwrap();
    let layer = out.path().join("layer");
    let report = unpack(host(), &plan, &debs, &layer).unwrap();
    assert_eq!(report.packages.len(), plan.packages.len());

    // jq's files, under /usr.
    let jq_bin = layer.join("usr/bin/jq");
    if plan.packages.iter().any(|p| p.name == "jq") {
        use std::os::unix::fs::PermissionsExt;
        assert!(
            std::fs::metadata(&jq_bin).unwrap().permissions().mode() & 0o111 != 0,
            "jq is executable"
        );
        let v = Command::new(&jq_bin).arg("--version").output().unwrap();
        assert!(
            String::from_utf8_lossy(&v.stdout).starts_with("jq-"),
            "the unpacked jq runs"
        );
    }

    // Merged /usr: the lib package's /lib files land under usr/lib, and no top-level lib/
    // directory is created (it would hide the base's lib -> usr/lib symlink).
    assert!(host().is_merged_usr(), "the host has a merged /usr");
    assert!(
        !layer.join("lib").exists(),
        "no top-level lib/ in the layer"
    );
    assert!(report.usr_rewrites > 0);
    let lp = plan.packages.iter().find(|p| p.name == lib).unwrap();
    let info_name = if lp.multi_arch == "same" {
        format!("{lib}:{}", lp.architecture)
    } else {
        lib.to_string()
    };
    let list =
        std::fs::read_to_string(layer.join(format!("var/lib/dpkg/info/{info_name}.list"))).unwrap();
    assert!(list.starts_with("/.\n"), "{list}");
    let lib_files: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("/lib/") && l.contains(".so"))
        .collect();
    assert!(
        !lib_files.is_empty(),
        "dpkg's list keeps the original /lib paths: {list}"
    );
    for f in lib_files {
        let moved = layer.join(format!("usr{f}"));
        assert!(
            std::fs::symlink_metadata(&moved).is_ok(),
            "{} exists",
            moved.display()
        );
    }

    check_dpkg_database(&layer, &plan, &report, lib, &info_name);
}

/// The dpkg database in the layer: complete status, new packages unpacked, info files named
/// like dpkg names them, conffiles with their md5sums.
fn check_dpkg_database(
    layer: &Path,
    plan: &Plan,
    report: &liftoff_debian::UnpackReport,
    lib: &str,
    info_name: &str,
) {
    let status = std::fs::read_to_string(layer.join("var/lib/dpkg/status")).unwrap();
    let base_status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    assert_eq!(
        status.matches("\nPackage: ").count() + usize::from(status.starts_with("Package: ")),
        base_status.matches("\nPackage: ").count()
            + usize::from(base_status.starts_with("Package: "))
            + plan
                .packages
                .iter()
                .filter(|p| p.installed_version.is_none())
                .count(),
        "base stanzas + new ones"
    );
    for p in &plan.packages {
        let stanza = status
            .split("\n\n")
            .find(|s| s.starts_with(&format!("Package: {}\n", p.name)))
            .unwrap_or_else(|| panic!("{} has a status stanza", p.name));
        assert!(
            stanza.contains("\nStatus: install ok unpacked\n"),
            "{stanza}"
        );
        assert!(
            stanza.contains(&format!("\nVersion: {}\n", p.version)),
            "{stanza}"
        );
        if let Some(old) = &p.installed_version {
            assert!(
                stanza.contains(&format!("\nConfig-Version: {old}\n")),
                "{stanza}"
            );
        }
    }
    let q = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            layer.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n"])
        .args(plan.packages.iter().map(|p| p.name.as_str()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&q.stdout);
    assert!(
        q.status.success(),
        "dpkg-query reads the layer's database: {text}{}",
        String::from_utf8_lossy(&q.stderr)
    );
    for p in &plan.packages {
        assert!(
            text.contains(&format!("{} {} iU", p.name, p.version)),
            "{text}"
        );
    }
    let l = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            layer.join("var/lib/dpkg").display()
        ))
        .args(["-L", lib])
        .output()
        .unwrap();
    assert!(
        l.status.success(),
        "dpkg finds {info_name}.list: {}",
        String::from_utf8_lossy(&l.stderr)
    );

    // Conffiles carry the md5 of the unpacked file.
    if let Some(conf) = report.packages.iter().find(|p| !p.conffiles.is_empty()) {
        let stanza = status
            .split("\n\n")
            .find(|s| s.starts_with(&format!("Package: {}\n", conf.name)))
            .unwrap();
        let path = &conf.conffiles[0];
        let md5 = Command::new("md5sum")
            .arg(layer.join(path.trim_start_matches('/')))
            .output()
            .unwrap();
        let md5 = String::from_utf8_lossy(&md5.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        assert!(
            stanza.contains(&format!("Conffiles:\n {path} {md5}")),
            "{stanza}"
        );
        assert!(
            layer
                .join(format!("var/lib/dpkg/info/{}.conffiles", conf.info_name))
                .exists()
        );
    }
    if report.triggers.iter().any(|t| t == lib) {
        assert!(
            layer
                .join(format!("var/lib/dpkg/info/{info_name}.triggers"))
                .exists()
        );
    }
}

// ---- crafted .debs ----

/// A tar entry: path, type, contents, link target.
type TarEntry<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);

fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        // Write the name bytes directly: tar's own setters refuse `..` and absolute paths,
        // which is exactly what these tests need to produce.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        if let Some(l) = link {
            let l = l.as_bytes();
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn crafted_deb(dir: &Path, name: &str, data: &[TarEntry<'_>]) -> (PlannedPackage, PathBuf) {
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: crafted\n"
    );
    let control_tar = gz(&tar_bytes(&[
        ("./", tar::EntryType::Directory, b"", None),
        (
            "./control",
            tar::EntryType::Regular,
            control.as_bytes(),
            None,
        ),
    ]));
    let data_tar = gz(&tar_bytes(data));
    let path = dir.join(format!("{name}.deb"));
    let mut ar = ar::Builder::new(std::fs::File::create(&path).unwrap());
    for (id, bytes) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", control_tar),
        ("data.tar.gz", data_tar),
    ] {
        ar.append(
            &ar::Header::new(id.as_bytes().to_vec(), bytes.len() as u64),
            bytes.as_slice(),
        )
        .unwrap();
    }
    drop(ar);
    let plan = PlannedPackage {
        name: name.to_string(),
        version: "1.0".into(),
        architecture: "all".into(),
        filename: format!("pool/{name}.deb"),
        size: std::fs::metadata(&path).unwrap().len(),
        sha256: "0".repeat(64),
        base_url: "http://repo.invalid/debian".into(),
        multi_arch: "no".into(),
        installed_version: None,
        pulled_by: None,
    };
    (plan, path)
}

fn unpack_one(
    p: PlannedPackage,
    deb: PathBuf,
    out: &Path,
) -> Result<liftoff_debian::UnpackReport, DebianError> {
    let plan = Plan {
        architecture: host().architecture().to_string(),
        packages: vec![p],
    };
    unpack(host(), &plan, &[deb], out)
}

#[test]
fn crafted_debs_that_escape_are_rejected() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<TarEntry<'_>>, &str)> = vec![
        (
            "dotdot",
            vec![
                ("./", Directory, b"", None),
                ("./../evil", Regular, b"x", None),
            ],
            "`..`",
        ),
        (
            "deepdotdot",
            vec![
                ("./usr/", Directory, b"", None),
                ("./usr/../../evil", Regular, b"x", None),
            ],
            "`..`",
        ),
        (
            "absolute",
            vec![("/etc/evil", Regular, b"x", None)],
            "absolute path",
        ),
        (
            "relsymlink",
            vec![
                ("./usr/", Directory, b"", None),
                ("./usr/escape", Symlink, b"", Some("../../../../etc")),
            ],
            "escapes the image root",
        ),
        (
            "abssymlink",
            vec![
                ("./usr/", Directory, b"", None),
                ("./usr/escape", Symlink, b"", Some("/../../../etc/passwd")),
            ],
            "escapes the image root",
        ),
        (
            "writethrough",
            vec![
                ("./usr/", Directory, b"", None),
                ("./usr/etc", Symlink, b"", Some("/etc")),
                ("./usr/etc/evil.conf", Regular, b"x", None),
            ],
            "written through the symlink",
        ),
    ];
    for (name, entries, want) in cases {
        let (p, deb) = crafted_deb(d, name, &entries);
        let out = d.join(format!("out-{name}"));
        let err = unpack_one(p, deb.clone(), &out).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, DebianError::UnsafeEntry { .. }),
            "{name}: {msg}"
        );
        assert!(
            msg.contains(want) && msg.contains(&deb.display().to_string()),
            "{name}: {msg}"
        );
    }
    assert!(
        !d.join("evil").exists()
            && !Path::new("/etc/evil").exists()
            && !Path::new("/etc/evil.conf").exists()
    );

    // Absolute symlinks that stay inside the image are fine (dpkg ships many).
    let (p, deb) = crafted_deb(
        d,
        "fine",
        &[
            ("./usr/", Directory, b"", None),
            ("./usr/lib/", Directory, b"", None),
            ("./usr/lib/x", Symlink, b"", Some("/etc/alternatives/x")),
        ],
    );
    let out = d.join("out-fine");
    unpack_one(p, deb, &out).unwrap();
    assert_eq!(
        std::fs::read_link(out.join("usr/lib/x")).unwrap(),
        Path::new("/etc/alternatives/x")
    );

    // An output directory that is not empty is refused.
    let (p, deb) = crafted_deb(d, "again", &[("./usr/", Directory, b"", None)]);
    let err = unpack_one(p, deb, &out).unwrap_err();
    assert!(matches!(err, DebianError::BadOutput { .. }), "{err}");
}
