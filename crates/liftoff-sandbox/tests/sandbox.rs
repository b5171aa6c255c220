//! Real-kernel tests: they mount overlayfs and create namespaces, so they need root (as on the
//! project's machines and in CI) and a static busybox (`apt-get install busybox-static`) to build
//! a tiny image without network.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use liftoff_sandbox::{
    Bind, Mechanism, RunOutput, RunSpec, SandboxError, available, oci_whiteouts_to_overlay, run,
    run_with, upper_to_layer,
};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "id", "echo", "sleep", "rm", "env", "mkdir", "seq", "touch", "stat", "wc",
    "head", "true", "pwd", "readlink",
];

struct Fx {
    dir: tempfile::TempDir,
    base: PathBuf,
    top: PathBuf,
    upper: PathBuf,
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

/// A two-layer busybox image: `base` (busybox, /etc, /d/{a,b}, /home/node) under `top`
/// (/etc/motd, /d/c).
fn fixture() -> Fx {
    assert!(is_root(), "these tests mount overlayfs and need root");
    fixture_as(true)
}

fn fixture_as(root: bool) -> Fx {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: apt-get install -y busybox-static"
    );
    let dir = tempfile::Builder::new()
        .prefix("liftoff-sbx-test-")
        .tempdir()
        .unwrap();
    let base = dir.path().join("base");
    let top = dir.path().join("top");
    let upper = dir.path().join("upper");
    for d in ["bin", "etc", "d", "proc", "dev", "tmp", "sys", "home/node"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    fs::set_permissions(base.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    if root {
        std::os::unix::fs::chown(base.join("home/node"), Some(1000), Some(1000)).unwrap();
    }
    fs::copy(BUSYBOX, base.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", base.join("bin").join(a)).unwrap();
    }
    fs::write(
        base.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        base.join("etc/group"),
        "root:x:0:\nnode:x:1000:\nstaff:x:50:node\n",
    )
    .unwrap();
    fs::write(base.join("etc/lowerfile"), "lower\n").unwrap();
    fs::write(base.join("d/a"), "a\n").unwrap();
    fs::write(base.join("d/b"), "b\n").unwrap();
    fs::create_dir_all(top.join("etc")).unwrap();
    fs::create_dir_all(top.join("d")).unwrap();
    fs::write(top.join("etc/motd"), "hello\n").unwrap();
    fs::write(top.join("d/c"), "c\n").unwrap();
    fs::create_dir(&upper).unwrap();
    Fx {
        dir,
        base,
        top,
        upper,
    }
}

fn spec(fx: &Fx, command: &[&str]) -> RunSpec {
    RunSpec {
        lowers: vec![fx.top.clone(), fx.base.clone()],
        upper: fx.upper.clone(),
        command: command.iter().map(ToString::to_string).collect(),
        env: vec![("PATH".into(), "/bin".into())],
        user: None,
        workdir: "/".into(),
        network: false,
        binds: vec![],
        timeout: Duration::from_secs(30),
    }
}

fn sh(fx: &Fx, script: &str) -> RunSpec {
    spec(fx, &["/bin/sh", "-c", script])
}

fn ok(spec: &RunSpec) -> RunOutput {
    let out = run(spec).unwrap();
    assert_eq!(out.status, 0, "{out:?}");
    out
}

/// No mount mentions the fixture, and no scratch directory is left next to the upper.
fn assert_clean(fx: &Fx) {
    let root = fx.dir.path().to_str().unwrap();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(root),
        "mounts left behind:\n{mountinfo}"
    );
    let leftovers: Vec<_> = fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".liftoff-sandbox-"))
        .collect();
    assert!(leftovers.is_empty(), "scratch left behind: {leftovers:?}");
}

/// Relative paths of everything in a tree, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn has_overlay_xattrs(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for rel in std::iter::once(String::new()).chain(tree(root)) {
        let p = root.join(&rel);
        for name in xattr::list(&p).unwrap() {
            if name.to_string_lossy().contains("overlay.") {
                found.push(format!("{rel}: {}", name.to_string_lossy()));
            }
        }
    }
    found
}

fn is_whiteout(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

#[test]
fn available_reports_root_overlay() {
    assert!(is_root(), "these tests need root");
    assert_eq!(available().unwrap(), Mechanism::RootOverlay);
    assert!(available().unwrap().to_string().contains("root"));
}

#[test]
fn a_written_file_lands_in_upper_only() {
    let fx = fixture();
    let out = ok(&sh(
        &fx,
        "echo hi > /x && cat /etc/motd /etc/lowerfile && echo $$",
    ));
    assert_eq!(
        out.stdout_tail, "hello\nlower\n1",
        "top and base layers merged; pid 1"
    );
    assert_eq!(fs::read_to_string(fx.upper.join("x")).unwrap(), "hi\n");
    assert_eq!(
        tree(&fx.upper),
        vec!["x"],
        "nothing else (no /proc, /dev, /tmp) in the diff"
    );
    assert!(!fx.base.join("x").exists() && !fx.top.join("x").exists());
    assert_clean(&fx);
}

#[test]
fn rm_of_a_lower_file_becomes_an_oci_whiteout() {
    let fx = fixture();
    ok(&sh(&fx, "rm /etc/lowerfile /d/c && echo new > /d/new"));
    assert!(is_whiteout(&fx.upper.join("etc/lowerfile")));
    let layer = fx.dir.path().join("layer");
    upper_to_layer(&fx.upper, &[fx.top.clone(), fx.base.clone()], &layer).unwrap();
    assert_eq!(
        tree(&layer),
        vec!["d", "d/.wh.c", "d/new", "etc", "etc/.wh.lowerfile"]
    );
    let wh = fs::symlink_metadata(layer.join("etc/.wh.lowerfile")).unwrap();
    assert!(wh.is_file() && wh.len() == 0);
    assert!(
        has_overlay_xattrs(&layer).is_empty(),
        "{:?}",
        has_overlay_xattrs(&layer)
    );
    // The upper is untouched by a copy conversion and can still be a lower.
    assert!(is_whiteout(&fx.upper.join("etc/lowerfile")));
    assert_clean(&fx);
}

#[test]
fn replacing_a_lower_directory_gets_an_opaque_marker() {
    let fx = fixture();
    ok(&sh(
        &fx,
        "rm -rf /d && mkdir /d && echo n > /d/new && mkdir /fresh && echo f > /fresh/f",
    ));
    assert_eq!(
        xattr::get(fx.upper.join("d"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let layer = fx.dir.path().join("layer");
    upper_to_layer(&fx.upper, &[fx.top.clone(), fx.base.clone()], &layer).unwrap();
    assert_eq!(
        tree(&layer),
        vec!["d", "d/.wh..wh..opq", "d/new", "fresh", "fresh/f"]
    );
    assert!(has_overlay_xattrs(&layer).is_empty());
    // In place gives the same tree.
    upper_to_layer(&fx.upper, &[fx.top.clone(), fx.base.clone()], &fx.upper).unwrap();
    assert_eq!(tree(&fx.upper), tree(&layer));
    assert!(has_overlay_xattrs(&fx.upper).is_empty());
    assert_clean(&fx);
}

#[test]
fn opaque_directory_not_in_a_lower_gets_no_marker() {
    let t = tempfile::tempdir().unwrap();
    let (upper, lower, layer) = (t.path().join("u"), t.path().join("l"), t.path().join("out"));
    fs::create_dir_all(upper.join("newdir")).unwrap();
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(upper.join("newdir/f"), "x").unwrap();
    for d in ["newdir", "etc"] {
        xattr::set(upper.join(d), "trusted.overlay.opaque", b"y").unwrap();
    }
    xattr::set(upper.join("newdir/f"), "user.keep", b"1").unwrap();
    upper_to_layer(&upper, &[lower], &layer).unwrap();
    assert_eq!(
        tree(&layer),
        vec!["etc", "etc/.wh..wh..opq", "newdir", "newdir/f"]
    );
    assert_eq!(
        xattr::get(layer.join("newdir/f"), "user.keep")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );
    assert!(has_overlay_xattrs(&layer).is_empty());
}

#[test]
fn user_node_runs_as_1000_in_a_created_workdir() {
    let fx = fixture();
    let mut s = sh(
        &fx,
        "id -u; id -g; id -G; pwd; echo x > f; stat -c %u:%g /home/node",
    );
    s.user = Some("node".into());
    s.workdir = "/app/src".into();
    let out = ok(&s);
    assert_eq!(out.stdout_tail, "1000\n1000\n1000 50\n/app/src\n1000:1000");
    for p in ["app", "app/src", "app/src/f"] {
        let m = fs::metadata(fx.upper.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000), "{p}");
    }
    // Numeric forms, and an unknown user.
    let mut s = spec(&fx, &["/bin/id"]);
    s.user = Some("1000:50".into());
    assert_eq!(
        ok(&s).stdout_tail,
        "uid=1000(node) gid=50(staff) groups=50(staff)"
    );
    s.user = Some("nobody".into());
    assert!(matches!(run(&s), Err(SandboxError::UnknownUser { .. })));
    assert_clean(&fx);
}

#[test]
fn the_environment_is_exactly_the_given_one() {
    let fx = fixture();
    let mut s = spec(&fx, &["/bin/env"]);
    s.env = vec![
        ("PATH".into(), "/bin".into()),
        ("A".into(), "it's \"quoted\" $HOME".into()),
        ("EMPTY".into(), String::new()),
    ];
    let out = ok(&s);
    let mut lines: Vec<&str> = out.stdout_tail.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec!["A=it's \"quoted\" $HOME", "EMPTY=", "PATH=/bin"]
    );
    assert_clean(&fx);
}

#[test]
fn without_network_only_lo_exists() {
    let fx = fixture();
    let out = ok(&sh(&fx, "cat /proc/net/dev"));
    let ifaces: Vec<&str> = out
        .stdout_tail
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, vec!["lo"]);
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert!(
        host.lines().count() > 3,
        "the host has more than lo, so the check means something"
    );
    assert_clean(&fx);
}

#[test]
fn network_shares_the_host_net_and_resolv_conf_is_not_captured() {
    let fx = fixture();
    let mut s = sh(
        &fx,
        "cat /etc/resolv.conf; echo; cat /proc/net/dev | wc -l; echo nameserver 9.9.9.9 >> /etc/resolv.conf",
    );
    s.network = true;
    let out = ok(&s);
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(
        out.stdout_tail.starts_with(host_resolv.trim_end()),
        "{out:?}"
    );
    let host_ifaces = fs::read_to_string("/proc/net/dev").unwrap().lines().count();
    assert!(
        out.stdout_tail.ends_with(&host_ifaces.to_string()),
        "{out:?}"
    );
    assert!(
        tree(&fx.upper).is_empty(),
        "resolv.conf (and the copied-up /etc) must not be captured: {:?}",
        tree(&fx.upper)
    );
    let layer = fx.dir.path().join("layer");
    upper_to_layer(&fx.upper, &[fx.top.clone(), fx.base.clone()], &layer).unwrap();
    assert!(tree(&layer).is_empty());
    // The host's file is untouched.
    assert_eq!(
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        host_resolv
    );
    assert_clean(&fx);
}

fn sleepers(tag: &str) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| c.split(|b| *b == 0).any(|a| a == tag.as_bytes()))
        .count()
}

#[test]
fn timeout_kills_the_whole_tree() {
    let fx = fixture();
    let tag = "4242";
    let mut s = sh(&fx, &format!("sleep {tag} & echo started; sleep {tag}"));
    s.timeout = Duration::from_secs(1);
    let t0 = Instant::now();
    let err = run(&s).unwrap_err();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let SandboxError::Timeout {
        command,
        timeout,
        stdout_tail,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*timeout, Duration::from_secs(1));
    assert!(command.contains("sleep 4242"));
    assert_eq!(stdout_tail, "started");
    let msg = err.to_string();
    assert!(msg.contains("sleep 4242") && msg.contains("1s"), "{msg}");
    assert_eq!(sleepers(tag), 0, "background sleep survived");
    assert_clean(&fx);
}

#[test]
fn a_failing_command_returns_its_status_and_stderr_tail() {
    let fx = fixture();
    let out = run(&sh(
        &fx,
        "for i in $(seq 1 100); do echo err $i >&2; done; exit 3",
    ))
    .unwrap();
    assert_eq!(out.status, 3);
    let lines: Vec<&str> = out.stderr_tail.lines().collect();
    assert_eq!(lines.len(), 40);
    assert_eq!((lines[0], lines[39]), ("err 61", "err 100"));
    let out = run(&spec(&fx, &["/no/such/program"])).unwrap();
    assert_eq!(out.status, 127, "{out:?}");
    assert!(out.stderr_tail.contains("/no/such/program"), "{out:?}");
    // The command is pid 1 of its namespace (immune to its own SIGKILL), as under Docker.
    let out = run(&sh(&fx, "kill -9 $$; sh -c 'kill -9 $$'; exit $?")).unwrap();
    assert_eq!(out.status, 137);
    assert_clean(&fx);
}

#[test]
fn binds_are_visible_and_never_captured() {
    let fx = fixture();
    let host = fx.dir.path().join("host");
    fs::create_dir(&host).unwrap();
    fs::write(host.join(".npmrc"), "registry=x\n").unwrap();
    let shared = host.join("shared");
    fs::create_dir(&shared).unwrap();
    let mut s = sh(
        &fx,
        "cat /root/.npmrc; echo more >> /root/.npmrc || echo ro-ok; echo out > /src/out; \
         echo t > /tmp/t; cat /tmp/secret/token",
    );
    s.binds = vec![
        Bind {
            host: host.join(".npmrc"),
            target: "/root/.npmrc".into(),
            read_only: true,
        },
        Bind {
            host: shared.clone(),
            target: "/src".into(),
            read_only: false,
        },
        Bind {
            host: host.join(".npmrc"),
            target: "/tmp/secret/token".into(),
            read_only: true,
        },
    ];
    let out = ok(&s);
    assert_eq!(out.stdout_tail, "registry=x\nro-ok\nregistry=x");
    assert!(out.stderr_tail.contains("Read-only"), "{out:?}");
    assert_eq!(fs::read_to_string(shared.join("out")).unwrap(), "out\n");
    assert_eq!(
        fs::read_to_string(host.join(".npmrc")).unwrap(),
        "registry=x\n"
    );
    assert!(
        tree(&fx.upper).is_empty(),
        "mountpoints, /tmp and bind contents are not captured: {:?}",
        tree(&fx.upper)
    );
    assert_clean(&fx);
}

#[test]
fn an_image_without_mountpoints_leaves_none_behind() {
    let fx = fixture();
    for d in ["proc", "dev", "tmp", "sys"] {
        fs::remove_dir(fx.base.join(d)).unwrap();
    }
    let out = ok(&sh(
        &fx,
        "ls /dev; head -c 5 /dev/urandom | wc -c; echo > /dev/null; touch /tmp/x; ls /proc/self/fd >/dev/null; echo kept > /kept",
    ));
    assert_eq!(
        out.stdout_tail,
        "fd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n5"
    );
    assert_eq!(tree(&fx.upper), vec!["kept"]);
    assert_clean(&fx);
}

#[test]
fn an_image_symlink_cannot_point_a_mount_at_the_host() {
    let fx = fixture();
    // /etc/resolv.conf -> /run/resolv.conf in the image: the mountpoint is made inside the image.
    std::os::unix::fs::symlink("/run/systemd/resolv.conf", fx.base.join("etc/resolv.conf"))
        .unwrap();
    let host_had = Path::new("/run/systemd/resolv.conf").exists();
    let mut s = sh(
        &fx,
        "cat /etc/resolv.conf >/dev/null && readlink /etc/resolv.conf",
    );
    s.network = true;
    assert_eq!(ok(&s).stdout_tail, "/run/systemd/resolv.conf");
    assert!(tree(&fx.upper).is_empty(), "{:?}", tree(&fx.upper));
    assert_eq!(
        Path::new("/run/systemd/resolv.conf").exists(),
        host_had,
        "the host was touched"
    );
    assert_clean(&fx);
}

#[test]
fn oci_layers_converted_for_overlay_hide_lower_files() {
    let fx = fixture();
    // An OCI layer on top: deletes /etc/lowerfile and replaces /d.
    let oci = fx.dir.path().join("oci");
    fs::create_dir_all(oci.join("etc")).unwrap();
    fs::create_dir_all(oci.join("d")).unwrap();
    fs::write(oci.join("etc/.wh.lowerfile"), "").unwrap();
    fs::write(oci.join("d/.wh..wh..opq"), "").unwrap();
    fs::write(oci.join("d/only"), "o\n").unwrap();
    oci_whiteouts_to_overlay(&oci).unwrap();
    assert!(is_whiteout(&oci.join("etc/lowerfile")));
    assert!(!oci.join("etc/.wh.lowerfile").exists() && !oci.join("d/.wh..wh..opq").exists());
    let mut s = sh(&fx, "ls /d; cat /etc/lowerfile 2>/dev/null || echo gone");
    s.lowers.insert(0, oci.clone());
    assert_eq!(ok(&s).stdout_tail, "only\ngone");
    // And back: the overlay form converts to the original OCI tree.
    let back = fx.dir.path().join("back");
    upper_to_layer(&oci, &[fx.top.clone(), fx.base.clone()], &back).unwrap();
    assert_eq!(
        tree(&back),
        vec!["d", "d/.wh..wh..opq", "d/only", "etc", "etc/.wh.lowerfile"]
    );
    assert_clean(&fx);
}

#[test]
fn errors_leave_nothing_behind() {
    let fx = fixture();
    let mut s = sh(&fx, "true");
    s.binds = vec![Bind {
        host: "/no/such/file".into(),
        target: "/x".into(),
        read_only: true,
    }];
    assert!(matches!(run(&s), Err(SandboxError::InvalidSpec(_))));
    s.binds = vec![Bind {
        host: "/etc/hostname".into(),
        target: "/proc/x".into(),
        read_only: true,
    }];
    assert!(matches!(run(&s), Err(SandboxError::InvalidSpec(_))));
    let mut s = sh(&fx, "true");
    s.workdir = "relative".into();
    assert!(matches!(run(&s), Err(SandboxError::InvalidSpec(_))));
    let mut s = sh(&fx, "true");
    s.lowers.push(fx.dir.path().join("missing"));
    assert!(run(&s).is_err());
    assert!(tree(&fx.upper).is_empty());
    assert_clean(&fx);
}

#[test]
fn user_namespace_mechanism_runs_as_root_only() {
    let fx = fixture();
    let out = run_with(
        &sh(&fx, "id -u; echo hi > /x; rm /etc/lowerfile"),
        Mechanism::UserNamespace,
    )
    .unwrap();
    assert_eq!((out.status, out.stdout_tail.as_str()), (0, "0"), "{out:?}");
    assert_eq!(fs::read_to_string(fx.upper.join("x")).unwrap(), "hi\n");
    assert!(is_whiteout(&fx.upper.join("etc/lowerfile")));
    let mut s = spec(&fx, &["/bin/id"]);
    s.user = Some("node".into());
    assert!(matches!(
        run_with(&s, Mechanism::UserNamespace),
        Err(SandboxError::UserNeedsRoot { .. })
    ));
    assert_clean(&fx);
}

#[test]
#[allow(clippy::print_stderr)] // the per-run overhead is reported, not asserted tightly
fn per_run_overhead() {
    let fx = fixture();
    let s = spec(&fx, &["/bin/true"]);
    ok(&s);
    let n = 20;
    let t0 = Instant::now();
    for _ in 0..n {
        ok(&s);
    }
    let each = t0.elapsed() / n;
    eprintln!("liftoff-sandbox: run(/bin/true) overhead {each:?} per run (mean of {n})");
    assert!(each < Duration::from_millis(500), "{each:?}");
    assert_clean(&fx);
}

/// The unprivileged path for real: this test binary re-runs `inner_unprivileged` as `nobody`.
#[test]
fn unprivileged_user_namespace_as_nobody() {
    assert!(is_root(), "this test drops to nobody, so it starts as root");
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args([
            "--exact",
            "inner_unprivileged",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LIFTOFF_SANDBOX_INNER", "1")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run as nobody by unprivileged_user_namespace_as_nobody"]
fn inner_unprivileged() {
    if std::env::var_os("LIFTOFF_SANDBOX_INNER").is_none() {
        return;
    }
    assert!(!is_root());
    assert_eq!(available().unwrap(), Mechanism::UserNamespace);
    let fx = fixture_as(false);
    let secret = fx.dir.path().join("secret");
    fs::write(&secret, "s3cret\n").unwrap();
    let mut s = sh(
        &fx,
        "id -u; cat /run/secret; echo x >> /run/secret || echo ro-ok; echo hi > /x; \
         rm /etc/lowerfile; rm -rf /d && mkdir /d; ls /dev | wc -l; echo > /dev/null; touch /tmp/t",
    );
    s.binds = vec![Bind {
        host: secret.clone(),
        target: "/run/secret".into(),
        read_only: true,
    }];
    s.network = true;
    let out = run(&s).unwrap();
    assert_eq!(
        (out.status, out.stdout_tail.as_str()),
        (0, "0\ns3cret\nro-ok\n13"),
        "{out:?}"
    );
    assert!(is_whiteout(&fx.upper.join("etc/lowerfile")));
    assert_eq!(
        xattr::get(fx.upper.join("d"), "user.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let layer = fx.dir.path().join("layer");
    upper_to_layer(&fx.upper, &[fx.top.clone(), fx.base.clone()], &layer).unwrap();
    assert_eq!(
        tree(&layer),
        vec!["d", "d/.wh..wh..opq", "etc", "etc/.wh.lowerfile", "x"]
    );
    assert!(has_overlay_xattrs(&layer).is_empty());
    let mut s = spec(&fx, &["/bin/id"]);
    s.user = Some("node".into());
    assert!(matches!(run(&s), Err(SandboxError::UserNeedsRoot { .. })));
    assert_clean(&fx);
}

#[test]
fn copy_conversion_keeps_hard_links_modes_owners_and_special_files() {
    let t = tempfile::tempdir().unwrap();
    let (upper, layer) = (t.path().join("u"), t.path().join("out"));
    fs::create_dir_all(upper.join("bin")).unwrap();
    fs::write(upper.join("bin/tool"), "#!/bin/sh\n").unwrap();
    fs::hard_link(upper.join("bin/tool"), upper.join("bin/alias")).unwrap();
    std::os::unix::fs::chown(upper.join("bin/tool"), Some(1000), Some(50)).unwrap();
    fs::set_permissions(upper.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("tool", upper.join("bin/link")).unwrap();
    std::process::Command::new("mkfifo")
        .arg(upper.join("bin/fifo"))
        .status()
        .unwrap();
    xattr::set(upper.join("bin/tool"), "trusted.overlay.origin", b"x").unwrap();
    upper_to_layer(&upper, &[], &layer).unwrap();
    let tool = fs::symlink_metadata(layer.join("bin/tool")).unwrap();
    let alias = fs::symlink_metadata(layer.join("bin/alias")).unwrap();
    assert_eq!(tool.ino(), alias.ino(), "hard link kept");
    assert_ne!(
        tool.ino(),
        fs::metadata(upper.join("bin/tool")).unwrap().ino(),
        "copied, not linked to upper"
    );
    assert_eq!(
        (tool.uid(), tool.gid(), tool.mode() & 0o7777),
        (1000, 50, 0o4755)
    );
    assert_eq!(
        fs::read_link(layer.join("bin/link")).unwrap(),
        Path::new("tool")
    );
    assert!(
        fs::symlink_metadata(layer.join("bin/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        fs::metadata(layer.join("bin")).unwrap().mtime(),
        fs::metadata(upper.join("bin")).unwrap().mtime()
    );
    assert!(has_overlay_xattrs(&layer).is_empty());
    assert!(
        xattr::get(upper.join("bin/tool"), "trusted.overlay.origin")
            .unwrap()
            .is_some(),
        "upper untouched"
    );
    // A real file named like a whiteout cannot be represented.
    fs::write(upper.join(".wh.oops"), "").unwrap();
    let err = upper_to_layer(&upper, &[], &t.path().join("out2")).unwrap_err();
    assert!(err.to_string().contains(".wh."), "{err}");
}
