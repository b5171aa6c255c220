//! Upstream-compatible login profiles: `<config dir>/trigger/default.json`, a flat map
//! `{ "<profile>": { "accessToken"?, "apiUrl"? } }` (CLI 3.3.17), plus the
//! `TRIGGER_ACCESS_TOKEN` / `TRIGGER_API_URL` overrides.

use crate::error::ProfileError;
use crate::secret::Secret;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default profile name.
pub const DEFAULT_PROFILE: &str = "default";
/// Upstream's default API URL.
pub const DEFAULT_API_URL: &str = "https://api.trigger.dev";

/// One stored profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub access_token: Option<Secret>,
    pub api_url: Option<String>,
}

/// The profile file, loaded. Profiles keep the file's order; fields other than `accessToken`
/// and `apiUrl` are dropped when a profile is replaced (as upstream does).
#[derive(Debug, Clone)]
pub struct Profiles {
    path: PathBuf,
    entries: Map<String, Value>,
}

/// The config directory as `xdg-app-paths("trigger").config()` computes it:
/// `$XDG_CONFIG_HOME/trigger` on every OS, else `~/.config/trigger` (Linux),
/// `~/Library/Preferences/trigger` (macOS), `%APPDATA%\xdg.config\trigger` (Windows).
pub fn config_dir(env: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf, ProfileError> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(xdg) = non_empty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(xdg).join("trigger"));
    }
    if cfg!(windows) {
        let appdata = non_empty("APPDATA").ok_or(ProfileError::NoConfigDir {
            home_var: "APPDATA",
        })?;
        return Ok(PathBuf::from(appdata).join("xdg.config").join("trigger"));
    }
    let home = non_empty("HOME").ok_or(ProfileError::NoConfigDir { home_var: "HOME" })?;
    let base = PathBuf::from(home);
    if cfg!(target_os = "macos") {
        Ok(base.join("Library").join("Preferences").join("trigger"))
    } else {
        Ok(base.join(".config").join("trigger"))
    }
}

/// `<config dir>/default.json` for this process's environment.
pub fn default_profiles_path() -> Result<PathBuf, ProfileError> {
    Ok(config_dir(&|name| std::env::var_os(name))?.join("default.json"))
}

impl Profiles {
    /// Loads `path`; a missing or empty file is an empty set of profiles.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ProfileError> {
        let path = path.into();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ProfileError::Io {
                    action: "read the profile file",
                    path,
                    source,
                });
            }
        };
        let entries = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(ProfileError::Corrupt {
                        path,
                        reason: "the top level is not an object".into(),
                    });
                }
                Err(e) => {
                    return Err(ProfileError::Corrupt {
                        path,
                        reason: e.to_string(),
                    });
                }
            }
        };
        Ok(Self { path, entries })
    }

    /// Loads [`default_profiles_path`].
    pub fn load_default() -> Result<Self, ProfileError> {
        Self::load(default_profiles_path()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The named profile, if stored (entries that are not objects count as absent).
    pub fn get(&self, name: &str) -> Option<Profile> {
        self.entries.get(name).and_then(profile_from)
    }

    /// All profiles, in file order.
    pub fn list(&self) -> Vec<(String, Profile)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| profile_from(v).map(|p| (k.clone(), p)))
            .collect()
    }

    /// Stores (replaces) a profile in memory; call [`Profiles::save`] to write it (login).
    pub fn set(&mut self, name: &str, profile: &Profile) {
        let mut obj = Map::new();
        if let Some(t) = &profile.access_token {
            obj.insert("accessToken".into(), Value::String(t.expose().to_string()));
        }
        if let Some(u) = &profile.api_url {
            obj.insert("apiUrl".into(), Value::String(u.clone()));
        }
        self.entries.insert(name.to_string(), Value::Object(obj));
    }

    /// Removes a profile in memory (logout); returns whether it had an access token.
    pub fn remove(&mut self, name: &str) -> bool {
        self.entries
            .shift_remove(name)
            .as_ref()
            .and_then(profile_from)
            .is_some_and(|p| p.access_token.is_some())
    }

    /// Writes the file atomically (temporary file in the same directory, then rename), mode
    /// 0600, compact JSON like upstream. Creates the directory (0700) when missing.
    pub fn save(&self) -> Result<(), ProfileError> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let io = |action: &'static str| {
            let path = self.path.clone();
            move |source| ProfileError::Io {
                action,
                path,
                source,
            }
        };
        let text = Value::Object(self.entries.clone()).to_string();
        // NamedTempFile is created 0600 on Unix.
        let mut tmp = tempfile::Builder::new()
            .prefix(".default.json.")
            .tempfile_in(dir)
            .map_err(io("create a temporary file next to"))?;
        tmp.write_all(text.as_bytes())
            .map_err(io("write the profile file"))?;
        tmp.as_file()
            .sync_all()
            .map_err(io("write the profile file"))?;
        tmp.persist(&self.path)
            .map_err(|e| io("replace the profile file")(e.error))?;
        Ok(())
    }
}

fn profile_from(v: &Value) -> Option<Profile> {
    let obj = v.as_object()?;
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Profile {
        access_token: s("accessToken").map(Secret::new),
        api_url: s("apiUrl"),
    })
}

fn create_private_dir(dir: &Path) -> Result<(), ProfileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| ProfileError::Io {
        action: "create the config directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Where the credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// `TRIGGER_ACCESS_TOKEN`.
    Environment,
    /// A stored profile, by name.
    Profile(String),
}

/// A token and the API URL to use it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAuth {
    pub access_token: Secret,
    pub api_url: String,
    pub source: AuthSource,
}

/// Upstream `login()`'s resolution order, without the network:
/// 1. `TRIGGER_ACCESS_TOKEN` (must be a `tr_pat_` token) with `TRIGGER_API_URL` or
///    `default_api_url`; profiles are ignored.
/// 2. The stored profile's token with its `apiUrl` (which beats `default_api_url`).
/// 3. `None`: the caller runs the device login.
///
/// `default_api_url` is the `--api-url` value (upstream default [`DEFAULT_API_URL`]).
pub fn resolve_auth(
    profiles: &Profiles,
    profile: &str,
    default_api_url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ResolvedAuth>, ProfileError> {
    if let Some(token) = env("TRIGGER_ACCESS_TOKEN").filter(|t| !t.trim().is_empty()) {
        let token = Secret::new(token.trim());
        if !token.is_personal_access_token() {
            return Err(ProfileError::NotPersonalAccessToken);
        }
        let api_url = env("TRIGGER_API_URL")
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| default_api_url.to_string());
        return Ok(Some(ResolvedAuth {
            access_token: token,
            api_url,
            source: AuthSource::Environment,
        }));
    }
    Ok(profiles.get(profile).and_then(|p| {
        p.access_token.map(|access_token| ResolvedAuth {
            access_token,
            api_url: p.api_url.unwrap_or_else(|| default_api_url.to_string()),
            source: AuthSource::Profile(profile.to_string()),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn config_dir_follows_xdg_app_paths() {
        let os = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            config_dir(&os(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/trigger")
        );
        #[cfg(target_os = "linux")]
        assert_eq!(
            config_dir(&os(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "")])).unwrap(),
            PathBuf::from("/h/.config/trigger")
        );
        #[cfg(unix)]
        assert!(matches!(
            config_dir(&os(&[])),
            Err(ProfileError::NoConfigDir { .. })
        ));
    }

    #[test]
    fn round_trip_keeps_upstream_shape_and_other_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/trigger/default.json");
        let mut p = Profiles::load(&path).unwrap();
        assert!(p.list().is_empty());
        p.set(
            "default",
            &Profile {
                access_token: Some(Secret::new("tr_pat_aaa")),
                api_url: Some("https://api.trigger.dev".into()),
            },
        );
        p.set(
            "self",
            &Profile {
                access_token: Some(Secret::new("tr_pat_bbb")),
                api_url: Some("http://localhost:3030".into()),
            },
        );
        p.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            r#"{"default":{"accessToken":"tr_pat_aaa","apiUrl":"https://api.trigger.dev"},"self":{"accessToken":"tr_pat_bbb","apiUrl":"http://localhost:3030"}}"#
        );
        let mut again = Profiles::load(&path).unwrap();
        assert_eq!(
            again
                .list()
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["default", "self"]
        );
        assert_eq!(
            again.get("self").unwrap().api_url.as_deref(),
            Some("http://localhost:3030")
        );
        assert!(again.remove("default"));
        assert!(!again.remove("default"));
        again.save().unwrap();
        let reloaded = Profiles::load(&path).unwrap();
        assert!(reloaded.get("default").is_none());
        assert!(reloaded.get("self").is_some());
        // No temporary files left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trigger/default.json");
        // An existing world-readable file becomes 0600 after a save.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut p = Profiles::load(&path).unwrap();
        p.set("default", &Profile::default());
        p.save().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let fresh = dir.path().join("new/trigger/default.json");
        let p = Profiles::load(&fresh).unwrap();
        p.save().unwrap();
        let dmode = std::fs::metadata(fresh.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
    }

    #[test]
    fn corrupt_file_is_an_actionable_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("default.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = Profiles::load(&path).unwrap_err().to_string();
        assert!(e.contains("liftoff login"), "{e}");
        std::fs::write(&path, "[]").unwrap();
        assert!(Profiles::load(&path).is_err());
        std::fs::write(&path, r#"{"weird": 3, "ok": {"apiUrl": "x"}}"#).unwrap();
        let p = Profiles::load(&path).unwrap();
        assert_eq!(p.list().len(), 1);
    }

    #[test]
    fn environment_overrides_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let mut profiles = Profiles::load(dir.path().join("default.json")).unwrap();
        profiles.set(
            "default",
            &Profile {
                access_token: Some(Secret::new("tr_pat_stored")),
                api_url: Some("http://stored".into()),
            },
        );

        let r = resolve_auth(&profiles, "default", DEFAULT_API_URL, &env_of(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(r.access_token.expose(), "tr_pat_stored");
        assert_eq!(r.api_url, "http://stored");
        assert_eq!(r.source, AuthSource::Profile("default".into()));

        let r = resolve_auth(
            &profiles,
            "default",
            DEFAULT_API_URL,
            &env_of(&[("TRIGGER_ACCESS_TOKEN", "tr_pat_env")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.access_token.expose(), "tr_pat_env");
        assert_eq!(r.api_url, DEFAULT_API_URL);
        assert_eq!(r.source, AuthSource::Environment);

        let r = resolve_auth(
            &profiles,
            "default",
            DEFAULT_API_URL,
            &env_of(&[
                ("TRIGGER_ACCESS_TOKEN", "tr_pat_env"),
                ("TRIGGER_API_URL", "http://env"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.api_url, "http://env");

        let e = resolve_auth(
            &profiles,
            "default",
            DEFAULT_API_URL,
            &env_of(&[("TRIGGER_ACCESS_TOKEN", "tr_prod_key")]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Your TRIGGER_ACCESS_TOKEN is not a Personal Access Token")
        );

        assert!(
            resolve_auth(&profiles, "other", "http://x", &env_of(&[]))
                .unwrap()
                .is_none()
        );
    }
}
