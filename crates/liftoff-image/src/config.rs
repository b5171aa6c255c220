//! The image config (`application/vnd.oci.image.config.v1+json`).

use serde_json::{Map, Value, json};

use crate::digest::{digest_hex, sha256_digest};
use crate::error::ImageError;
use crate::layout::Descriptor;
use crate::media::MEDIA_TYPE_CONFIG;

pub const LABEL_CREATED: &str = "org.opencontainers.image.created";
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";

/// `SOURCE_DATE_EPOCH` from the environment, or 0 when it is unset or empty.
pub fn source_date_epoch() -> Result<u64, ImageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(0),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| ImageError::InvalidSourceDateEpoch(v)),
        Err(std::env::VarError::NotPresent) => Ok(0),
        Err(std::env::VarError::NotUnicode(v)) => Err(ImageError::InvalidSourceDateEpoch(
            v.to_string_lossy().into_owned(),
        )),
    }
}

/// RFC 3339 UTC timestamp of a Unix time in seconds: `0` → `1970-01-01T00:00:00Z`.
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (all non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// A finished config blob: the exact bytes, their digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigBlob {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    pub size: u64,
}

impl ConfigBlob {
    /// The manifest's `config` descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(MEDIA_TYPE_CONFIG, &self.digest, self.size)
    }
}

/// Derives the final image config from the base image's config, the way `docker build`
/// does for `USER`, `WORKDIR`, `ENV`, `LABEL`, `ENTRYPOINT`, `CMD` and layer steps.
///
/// Unknown fields of the base config are kept. Output is compact JSON with object keys
/// sorted (recursively), so the bytes depend only on the content.
#[derive(Clone, Debug)]
pub struct ImageConfigBuilder {
    base: Map<String, Value>,
    created: u64,
    user: Option<String>,
    workdir: Option<String>,
    env: Vec<(String, String)>,
    entrypoint: Argv,
    cmd: Argv,
    labels: Vec<(String, String)>,
    created_label: bool,
    /// `(diff_id or None for an empty layer, created_by)` in order.
    steps: Vec<(Option<String>, String)>,
}

impl ImageConfigBuilder {
    /// Start from a base image config (`architecture` and `os` are required).
    pub fn from_base(base: Value) -> Result<Self, ImageError> {
        let Value::Object(base) = base else {
            return Err(ImageError::InvalidConfig(
                "the base image config is not a JSON object".into(),
            ));
        };
        for key in ["architecture", "os"] {
            if !base.get(key).is_some_and(Value::is_string) {
                return Err(ImageError::InvalidConfig(format!(
                    "the base image config has no {key:?} string"
                )));
            }
        }
        for key in ["config", "rootfs"] {
            if base
                .get(key)
                .is_some_and(|v| !v.is_object() && !v.is_null())
            {
                return Err(ImageError::InvalidConfig(format!(
                    "the base image config's {key:?} is not an object"
                )));
            }
        }
        Ok(ImageConfigBuilder {
            base,
            created: 0,
            user: None,
            workdir: None,
            env: Vec::new(),
            entrypoint: Argv::Inherit,
            cmd: Argv::Inherit,
            labels: Vec::new(),
            created_label: false,
            steps: Vec::new(),
        })
    }

    /// Like [`Self::from_base`], from the config blob's bytes.
    pub fn from_base_bytes(bytes: &[u8]) -> Result<Self, ImageError> {
        let value = serde_json::from_slice(bytes).map_err(|e| {
            ImageError::InvalidConfig(format!("the base image config is not valid JSON: {e}"))
        })?;
        Self::from_base(value)
    }

    /// The image's `created` time and that of the history entries added here, in Unix
    /// seconds: `SOURCE_DATE_EPOCH`, or 0 (the default).
    pub fn created(&mut self, epoch: u64) -> &mut Self {
        self.created = epoch;
        self
    }

    /// `USER` (e.g. `node`).
    pub fn user(&mut self, user: impl Into<String>) -> &mut Self {
        self.user = Some(user.into());
        self
    }

    /// `WORKDIR` (e.g. `/app`).
    pub fn workdir(&mut self, dir: impl Into<String>) -> &mut Self {
        self.workdir = Some(dir.into());
        self
    }

    /// `ENV KEY=VALUE`: replaces an existing `KEY=` entry where it stands, or appends.
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// `ENTRYPOINT [...]` (`None` clears it). As in Docker, setting it also clears a `Cmd`
    /// inherited from the base image unless [`Self::cmd`] is called too.
    pub fn entrypoint(&mut self, entrypoint: Option<Vec<String>>) -> &mut Self {
        self.entrypoint = Argv::from(entrypoint);
        self
    }

    /// `CMD [...]`: `Some(vec![])` writes `"Cmd": []`; `None` removes `Cmd`.
    pub fn cmd(&mut self, cmd: Option<Vec<String>>) -> &mut Self {
        self.cmd = Argv::from(cmd);
        self
    }

    /// `LABEL key=value` (replaces an inherited label with the same key).
    pub fn label(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// The standard OCI labels: `org.opencontainers.image.created` (RFC 3339 of the
    /// [`Self::created`] time) and, when given, `.source` and `.revision`.
    pub fn oci_labels(&mut self, source: Option<&str>, revision: Option<&str>) -> &mut Self {
        self.created_label = true;
        if let Some(source) = source {
            self.label(LABEL_SOURCE, source);
        }
        if let Some(revision) = revision {
            self.label(LABEL_REVISION, revision);
        }
        self
    }

    /// A layer on top of the base's, with its history line (e.g. `COPY . /app`).
    pub fn add_layer(
        &mut self,
        diff_id: impl Into<String>,
        created_by: impl Into<String>,
    ) -> &mut Self {
        self.steps.push((Some(diff_id.into()), created_by.into()));
        self
    }

    /// A config-only step's history line (`"empty_layer": true`), e.g. `USER node`.
    pub fn add_history(&mut self, created_by: impl Into<String>) -> &mut Self {
        self.steps.push((None, created_by.into()));
        self
    }

    /// The config as a JSON value (keys in insertion order; [`Self::build`] sorts them).
    pub fn to_value(&self) -> Result<Value, ImageError> {
        let mut root = self.base.clone();
        let created = rfc3339(self.created);
        root.insert("created".into(), Value::String(created.clone()));

        let config = object_entry(&mut root, "config");
        if let Some(user) = &self.user {
            config.insert("User".into(), Value::String(user.clone()));
        }
        if let Some(dir) = &self.workdir {
            config.insert("WorkingDir".into(), Value::String(dir.clone()));
        }
        if !self.env.is_empty() {
            let mut env: Vec<String> = match config.get("Env") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ImageError::InvalidConfig("config.Env has a non-string entry".into())
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(ImageError::InvalidConfig(
                        "config.Env is not an array".into(),
                    ));
                }
            };
            for (key, value) in &self.env {
                if key.is_empty() || key.contains('=') {
                    return Err(ImageError::InvalidConfig(format!(
                        "invalid environment variable name {key:?}"
                    )));
                }
                let line = format!("{key}={value}");
                let existing = env
                    .iter_mut()
                    .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
                match existing {
                    Some(slot) => *slot = line,
                    None => env.push(line),
                }
            }
            config.insert("Env".into(), json!(env));
        }
        if self.entrypoint != Argv::Inherit {
            self.entrypoint.apply(config, "Entrypoint");
            if self.cmd == Argv::Inherit {
                config.remove("Cmd");
            }
        }
        self.cmd.apply(config, "Cmd");
        let mut labels: Vec<(String, String)> = Vec::new();
        if self.created_label {
            labels.push((LABEL_CREATED.into(), created.clone()));
        }
        labels.extend(self.labels.iter().cloned());
        if !labels.is_empty() {
            let map = object_entry(config, "Labels");
            for (k, v) in labels {
                map.insert(k, Value::String(v));
            }
        }

        if !self.steps.is_empty() {
            let rootfs = object_entry(&mut root, "rootfs");
            rootfs.insert("type".into(), Value::String("layers".into()));
            let diff_ids = array_entry(rootfs, "diff_ids")?;
            for (diff_id, _) in &self.steps {
                if let Some(diff_id) = diff_id {
                    digest_hex(diff_id)?;
                    diff_ids.push(Value::String(diff_id.clone()));
                }
            }
            let history = array_entry(&mut root, "history")?;
            for (diff_id, created_by) in &self.steps {
                let mut entry = Map::new();
                entry.insert("created".into(), Value::String(created.clone()));
                entry.insert("created_by".into(), Value::String(created_by.clone()));
                if diff_id.is_none() {
                    entry.insert("empty_layer".into(), Value::Bool(true));
                }
                history.push(Value::Object(entry));
            }
        }
        Ok(Value::Object(root))
    }

    /// The canonical config bytes (compact JSON, keys sorted) and their digest.
    pub fn build(&self) -> Result<ConfigBlob, ImageError> {
        let value = sorted(self.to_value()?);
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| ImageError::InvalidConfig(format!("cannot serialise the config: {e}")))?;
        Ok(ConfigBlob {
            digest: sha256_digest(&bytes),
            size: bytes.len() as u64,
            bytes,
        })
    }
}

/// `map[key]` as an object, created (or replacing `null`) if needed.
fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key.to_owned()).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made it an object"),
    }
}

fn array_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Vec<Value>, ImageError> {
    let slot = map.entry(key.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(items) => Ok(items),
        _ => Err(ImageError::InvalidConfig(format!(
            "{key:?} is not an array"
        ))),
    }
}

/// `Entrypoint`/`Cmd`: left as inherited, set (possibly to `[]`), or removed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Argv {
    Inherit,
    Set(Vec<String>),
    Clear,
}

impl From<Option<Vec<String>>> for Argv {
    fn from(value: Option<Vec<String>>) -> Self {
        value.map_or(Argv::Clear, Argv::Set)
    }
}

impl Argv {
    fn apply(&self, config: &mut Map<String, Value>, key: &str) {
        match self {
            Argv::Inherit => {}
            Argv::Set(items) => {
                config.insert(key.to_owned(), json!(items));
            }
            Argv::Clear => {
                config.remove(key);
            }
        }
    }
}

/// `value` with every object's keys sorted by their bytes.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    fn base() -> Value {
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin", "NODE_VERSION=21.7.3", "YARN_VERSION=1.22.19"],
                "Cmd": ["node"],
                "Entrypoint": ["docker-entrypoint.sh"],
                "Labels": {"maintainer": "x"}
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "base"}],
            "x-unknown": {"b": 1, "a": 2}
        })
    }

    #[test]
    fn docker_like_steps() {
        let diff = format!("sha256:{}", "2".repeat(64));
        let mut b = ImageConfigBuilder::from_base(base()).unwrap();
        b.created(1_700_000_000)
            .user("node")
            .workdir("/app")
            .env("NODE_ENV", "production")
            .env("NODE_VERSION", "21.7.3-custom")
            .entrypoint(Some(vec![
                "dumb-init".into(),
                "node".into(),
                "run.mjs".into(),
            ]))
            .cmd(Some(vec![]))
            .oci_labels(Some("https://example.com/repo"), Some("abc123"))
            .add_history("USER node")
            .add_layer(diff.clone(), "COPY /app ./");
        let blob = b.build().unwrap();
        let v: Value = serde_json::from_slice(&blob.bytes).unwrap();
        assert_eq!(v["created"], "2023-11-14T22:13:20Z");
        assert_eq!(v["config"]["User"], "node");
        assert_eq!(v["config"]["WorkingDir"], "/app");
        assert_eq!(
            v["config"]["Env"],
            json!([
                "PATH=/usr/local/bin:/usr/bin",
                "NODE_VERSION=21.7.3-custom",
                "YARN_VERSION=1.22.19",
                "NODE_ENV=production"
            ])
        );
        assert_eq!(v["config"]["Cmd"], json!([]));
        assert_eq!(
            v["config"]["Entrypoint"],
            json!(["dumb-init", "node", "run.mjs"])
        );
        assert_eq!(v["config"]["Labels"][LABEL_CREATED], "2023-11-14T22:13:20Z");
        assert_eq!(v["config"]["Labels"]["maintainer"], "x");
        assert_eq!(v["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(v["rootfs"]["diff_ids"][1], diff.as_str());
        assert_eq!(v["history"][1]["empty_layer"], true);
        assert!(v["history"][2].get("empty_layer").is_none());
        assert_eq!(v["x-unknown"], json!({"a": 2, "b": 1}));
        // Canonical: compact, keys sorted, digest of the exact bytes.
        let text = String::from_utf8(blob.bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\"architecture\":\"amd64\",\"config\":{\"Cmd\":[],"),
            "{text}"
        );
        assert!(text.contains("\"x-unknown\":{\"a\":2,\"b\":1}"));
        assert_eq!(blob.digest, sha256_digest(&blob.bytes));
        assert_eq!(b.build().unwrap(), blob);
    }

    #[test]
    fn entrypoint_clears_inherited_cmd() {
        let mut b = ImageConfigBuilder::from_base(base()).unwrap();
        b.entrypoint(Some(vec!["x".into()]));
        let v = b.to_value().unwrap();
        assert!(v["config"].get("Cmd").is_none());
        assert_eq!(v["created"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(ImageConfigBuilder::from_base(json!({"os": "linux"})).is_err());
        assert!(ImageConfigBuilder::from_base_bytes(b"[]").is_err());
        let mut b = ImageConfigBuilder::from_base(base()).unwrap();
        b.add_layer("sha256:nothex", "x");
        assert!(matches!(b.build(), Err(ImageError::InvalidDigest(_))));
        let mut b = ImageConfigBuilder::from_base(base()).unwrap();
        b.env("A=B", "c");
        assert!(b.build().is_err());
    }
}
