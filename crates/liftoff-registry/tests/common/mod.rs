//! Test harness: a real `docker-registry` (CNCF distribution) on a free 127.0.0.1 port with a
//! temporary data directory, populated with `skopeo copy` from a small OCI layout built here
//! with `tar` and `gzip -n`.

#![allow(dead_code)]

pub mod fault_proxy;
pub mod token_service;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liftoff_registry::{
    BlobCache, Event, PulledImage, Reference, RegistryConfig, RegistryError, pull, sha256,
};
use tempfile::TempDir;

/// Skips the calling test (with a message saying why) when the registry tools are missing.
/// CI installs them (`apt-get install -y docker-registry apache2-utils skopeo`).
#[macro_export]
macro_rules! require_tools {
    () => {
        if !$crate::common::tools_available() {
            $crate::common::skip_message(module_path!());
            return;
        }
    };
}

const TOOLS: [&str; 4] = ["docker-registry", "skopeo", "htpasswd", "openssl"];

pub fn tools_available() -> bool {
    TOOLS.iter().all(|tool| which(tool).is_some())
}

#[allow(
    clippy::print_stderr,
    reason = "the only way to tell the developer why a test did nothing"
)]
pub fn skip_message(test: &str) {
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|tool| which(tool).is_none())
        .collect();
    eprintln!(
        "SKIPPED {test}: {} not installed (apt-get install -y docker-registry apache2-utils skopeo openssl)",
        missing.join(", ")
    );
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

pub fn run(command: &mut Command) -> Vec<u8> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    free_port()
}

#[derive(Default)]
pub struct RegistryOptions {
    pub htpasswd: Option<(String, String)>,
    /// `(realm, service, issuer, root cert bundle)`
    pub token: Option<(String, String, String, PathBuf)>,
    /// `(certificate chain, key)`
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Reuse another registry's storage (to change how an already populated registry is served).
    pub data: Option<PathBuf>,
}

pub struct Registry {
    pub host: String,
    pub data: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Child,
    sentinels: RefCell<u32>,
    _dir: TempDir,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with(RegistryOptions::default())
    }

    pub fn start_with(options: RegistryOptions) -> Self {
        let RegistryOptions {
            htpasswd,
            token,
            tls,
            data,
        } = options;
        let dir = tempfile::tempdir().unwrap();
        let data = data.unwrap_or_else(|| dir.path().join("data"));
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp:\n  addr: {host}\n  secret: liftoff-test\n",
            data.display()
        );
        if let Some((cert, key)) = &tls {
            let _ = writeln!(
                config,
                "  tls: {{certificate: {}, key: {}}}",
                cert.display(),
                key.display()
            );
        }
        if let Some((user, password)) = &htpasswd {
            let htpasswd = dir.path().join("htpasswd");
            let line = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            fs::write(&htpasswd, line).unwrap();
            let _ = writeln!(
                config,
                "auth: {{htpasswd: {{realm: basic-realm, path: {}}}}}",
                htpasswd.display()
            );
        }
        if let Some((realm, service, issuer, bundle)) = &token {
            let _ = writeln!(
                config,
                "auth: {{token: {{realm: \"{realm}\", service: \"{service}\", issuer: \"{issuer}\", rootcertbundle: {}}}}}",
                bundle.display()
            );
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let child = serve(&config_path, &log);
        let mut registry = Self {
            host,
            data,
            config: config_path,
            log,
            child,
            sentinels: RefCell::new(0),
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", self.log_text());
            }
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the registry (its port then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the registry and starts it again on the same port with the same storage (its log
    /// goes on in the same file).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            self.child = serve(&self.config, &self.log);
            std::thread::sleep(Duration::from_millis(100));
            match self.child.try_wait() {
                // The old process's port may take a moment to be free again.
                Ok(Some(_)) if Instant::now() < deadline => {}
                _ => break,
            }
        }
        self.wait_ready();
    }

    /// Pushes `oci:<layout>:<tag>` to `<repository>:<dest_tag>` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, repository: &str, dest_tag: &str, extra: &[&str]) {
        let mut command = Command::new("skopeo");
        command
            .args(["--insecure-policy", "copy", "--quiet", "--preserve-digests"])
            .args(extra)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repository}:{dest_tag}", self.host));
        if !extra.iter().any(|a| a.starts_with("--dest-cert-dir")) {
            command.arg("--dest-tls-verify=false");
        }
        run(&mut command);
    }

    /// The path of a blob (or manifest) in the registry's storage.
    pub fn stored_blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.data
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The requests liftoff made so far (`"GET /v2/… HTTP/1.1"`), from the access log.
    pub fn liftoff_requests(&self) -> Vec<String> {
        self.settle();
        self.log_text()
            .lines()
            .filter(|line| line.contains("\"liftoff/"))
            .filter_map(|line| line.split('"').nth(1).map(str::to_string))
            .collect()
    }

    /// Waits until everything answered so far is in the log: sends a marker request and waits
    /// for its log line.
    fn settle(&self) {
        let n = {
            let mut count = self.sentinels.borrow_mut();
            *count += 1;
            *count
        };
        let marker = format!("sentinel-{n}");
        if let Ok(mut stream) = TcpStream::connect(&self.host) {
            let _ = write!(
                stream,
                "GET /v2/ HTTP/1.1\r\nHost: {}\r\nUser-Agent: {marker}\r\nConnection: close\r\n\r\n",
                self.host
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !self.log_text().contains(&marker) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `docker-registry serve <config>`, appending its output to `log`.
fn serve(config: &Path, log: &Path) -> Child {
    let log_file = File::options().create(true).append(true).open(log).unwrap();
    Command::new("docker-registry")
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("docker-registry starts")
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A built image: blobs exactly as written to the layout.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    /// `(digest, compressed bytes)`
    pub layers: Vec<(String, Vec<u8>)>,
}

/// An OCI layout with `v1` (linux/amd64, 3 layers), `arm` (linux/arm64, 2 layers, one shared)
/// and `multi` (an index of both).
pub struct Fixture {
    pub dir: TempDir,
    pub layout: PathBuf,
    pub amd64: Image,
    pub arm64: Image,
    pub index: Vec<u8>,
    pub index_digest: String,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let base = layer(
        dir.path(),
        "base",
        &[("etc/os-release", "ID=liftoff-test\n"), ("bin/.keep", "")],
    );
    let app = layer(
        dir.path(),
        "app",
        &[("app/index.js", "console.log('amd64');\n")],
    );
    let extra = layer(
        dir.path(),
        "extra",
        &[("app/data.txt", &"x".repeat(300_000))],
    );
    let arm_app = layer(
        dir.path(),
        "arm",
        &[("app/index.js", "console.log('arm64');\n")],
    );

    let amd64 = image(&layout, "amd64", &[&base, &app, &extra]);
    let arm64 = image(&layout, "arm64", &[&base, &arm_app]);

    // Unusual formatting and key order on purpose: any re-serialisation changes the digest.
    let index = format!(
        "{{\n  \"schemaVersion\" : 2,\n  \"mediaType\" : \"application/vnd.oci.image.index.v1+json\",\n  \"manifests\" : [\n    {{ \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": {}, \"digest\": \"{}\", \"platform\": {{ \"os\": \"linux\", \"architecture\": \"amd64\" }} }},\n    {{ \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": {}, \"digest\": \"{}\", \"platform\": {{ \"os\": \"linux\", \"architecture\": \"arm64\", \"variant\": \"v8\" }} }}\n  ]\n}}\n",
        amd64.manifest.len(),
        amd64.manifest_digest,
        arm64.manifest.len(),
        arm64.manifest_digest
    )
    .into_bytes();
    let index_digest = write_blob(&layout, &index);

    let entry = |media_type: &str, digest: &str, size: usize, tag: &str| {
        format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#
        )
    };
    let index_json = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{},{}]}}"#,
        entry(
            liftoff_registry::OCI_MANIFEST,
            &amd64.manifest_digest,
            amd64.manifest.len(),
            "v1"
        ),
        entry(
            liftoff_registry::OCI_MANIFEST,
            &arm64.manifest_digest,
            arm64.manifest.len(),
            "arm"
        ),
        entry(
            liftoff_registry::OCI_INDEX,
            &index_digest,
            index.len(),
            "multi"
        ),
    );
    fs::write(layout.join("index.json"), index_json).unwrap();
    Fixture {
        dir,
        layout,
        amd64,
        arm64,
        index,
        index_digest,
    }
}

struct Layer {
    digest: String,
    diff_id: String,
    bytes: Vec<u8>,
}

/// A deterministic gzip'd tar of `files`, made with `tar` and `gzip -n`.
fn layer(work: &Path, name: &str, files: &[(&str, &str)]) -> Layer {
    let root = work.join("layers").join(name);
    for (path, content) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let tar = run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
        ])
        .arg(&root)
        .args(["-cf", "-", "."]));
    let mut gzip = Command::new("gzip")
        .args(["-n", "-6"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    let input = tar.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = gzip.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    Layer {
        digest: sha256(&output.stdout),
        diff_id: sha256(&tar),
        bytes: output.stdout,
    }
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
        bytes,
    )
    .unwrap();
    digest
}

fn image(layout: &Path, arch: &str, layers: &[&Layer]) -> Image {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", l.diff_id))
        .collect();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Cmd":["node","/app/index.js"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    )
    .into_bytes();
    let config_digest = write_blob(layout, &config);
    let mut layer_entries = Vec::new();
    for layer in layers {
        write_blob(layout, &layer.bytes);
        layer_entries.push(format!(
            "      {{\n         \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n         \"size\": {},\n         \"digest\": \"{}\"\n      }}",
            layer.bytes.len(),
            layer.digest
        ));
    }
    // `layers` before `config`, three-space indents, an annotation: not what a serialiser writes.
    let manifest = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n   \"layers\": [\n{}\n   ],\n   \"config\": {{\n      \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n      \"size\": {},\n      \"digest\": \"{}\"\n   }},\n   \"annotations\": {{ \"org.example.note\": \"kept byte-exact ({arch})\" }}\n}}\n",
        layer_entries.join(",\n"),
        config.len(),
        config_digest
    )
    .into_bytes();
    let manifest_digest = write_blob(layout, &manifest);
    Image {
        manifest,
        manifest_digest,
        config,
        config_digest,
        layers: layers
            .iter()
            .map(|l| (l.digest.clone(), l.bytes.clone()))
            .collect(),
    }
}

/// Pulls and returns the events too.
pub fn pull_with_events(
    reference: &str,
    platform: (&str, &str),
    config: &RegistryConfig,
    cache: &BlobCache,
) -> (Result<PulledImage, RegistryError>, Vec<Event>) {
    let reference: Reference = reference.parse().unwrap();
    let events = RefCell::new(Vec::new());
    let result = pull(&reference, platform, config, cache, &|event| {
        events.borrow_mut().push(event);
    });
    (result, events.into_inner())
}

pub const AMD64: (&str, &str) = ("linux", "amd64");

/// Digests of the blobs downloaded (not found in the cache) during a pull.
pub fn downloaded(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::BlobStarted { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect()
}

/// The image as pulled must be byte-for-byte what was built, and every blob must be cached.
pub fn assert_image(pulled: &PulledImage, expected: &Image, cache: &BlobCache) {
    assert_eq!(pulled.manifest_digest, expected.manifest_digest);
    assert!(
        pulled.manifest_bytes == expected.manifest,
        "manifest bytes changed"
    );
    assert_eq!(sha256(&pulled.manifest_bytes), pulled.manifest_digest);
    assert_eq!(pulled.config_digest, expected.config_digest);
    assert_eq!(pulled.config_bytes, expected.config);
    let digests: Vec<&str> = pulled.layers.iter().map(|l| l.digest.as_str()).collect();
    let expected_digests: Vec<&str> = expected.layers.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(digests, expected_digests);
    for (digest, bytes) in &expected.layers {
        let path = cache
            .path(digest)
            .unwrap_or_else(|| panic!("{digest} not cached"));
        assert!(
            fs::read(path).unwrap() == *bytes,
            "{digest} content differs"
        );
    }
}

/// A test CA and a server certificate for `127.0.0.1`/`localhost` signed by it (rustls refuses
/// a self-signed CA certificate used as the server's).
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    /// Server certificate then CA, for the registry's `tls.certificate`.
    pub chain: PathBuf,
    pub key: PathBuf,
    /// A directory holding only `ca.crt` (skopeo's `--dest-cert-dir`).
    pub skopeo_certs: PathBuf,
    /// A file that is not PEM.
    pub not_pem: PathBuf,
}

pub fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let ssl = |args: &str| {
        run(Command::new("openssl")
            .current_dir(dir.path())
            .args(args.split_whitespace()));
    };
    ssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.crt -subj /CN=liftoff-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    );
    ssl("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1");
    fs::write(
        p("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    ssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt",
    );
    let chain = [
        fs::read(p("server.crt")).unwrap(),
        fs::read(p("ca.crt")).unwrap(),
    ]
    .concat();
    fs::write(p("chain.crt"), chain).unwrap();
    let skopeo_certs = p("certs.d");
    fs::create_dir_all(&skopeo_certs).unwrap();
    fs::copy(p("ca.crt"), skopeo_certs.join("ca.crt")).unwrap();
    Pki {
        ca: p("ca.crt"),
        chain: p("chain.crt"),
        key: p("server.key"),
        skopeo_certs,
        not_pem: p("server.ext"),
        dir,
    }
}
