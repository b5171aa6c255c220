//! What syncEnvVars does with a callback's result (upstream's `syncEnvVars`
//! in `@trigger.dev/build/extensions/core`): drop the keys that must never be
//! synced, report how many are left and add the `sync-env-vars` layer. Shared
//! by every extension that syncs env vars (syncVercelEnvVars, syncEnvVars).

use indexmap::IndexMap;

use crate::layer::{BuildLayer, DeployLayer};
use crate::{Context, LogLevel};

/// Upstream's `UNSYNCABLE_ENV_VARS`, in its order.
pub(crate) const UNSYNCABLE_ENV_VARS: &[&str] = &[
    "PWD",
    "MallocNanoZone",
    "USER",
    "LANG",
    "__CFBundleIdentifier",
    "COMMAND_MODE",
    "PATH",
    "LOGNAME",
    "SSLKEYLOGFILE",
    "SSH_AUTH_SOCK",
    "SHLVL",
    "SHELL",
    "HOME",
    "__CF_USER_TEXT_ENCODING",
    "XPC_SERVICE_NAME",
    "XPC_FLAGS",
    "ORIGINAL_XDG_CURRENT_DESKTOP",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "COLORTERM",
    "GIT_ASKPASS",
    "VSCODE_GIT_ASKPASS_NODE",
    "VSCODE_GIT_ASKPASS_EXTRA_ARGS",
    "VSCODE_GIT_ASKPASS_MAIN",
    "VSCODE_GIT_IPC_HANDLE",
    "VSCODE_INJECTION",
    "ZDOTDIR",
    "USER_ZDOTDIR",
    "TERM",
    "OLDPWD",
    "HOMEBREW_PREFIX",
    "HOMEBREW_CELLAR",
    "HOMEBREW_REPOSITORY",
    "MANPATH",
    "INFOPATH",
    "__GIT_PROMPT_DIR",
    "GIT_PROMPT_EXECUTABLE",
    "NVM_DIR",
    "NVM_CD_FLAGS",
    "NVM_BIN",
    "NVM_INC",
    "BUN_INSTALL",
    "DENO_INSTALL",
    "GITHUB_TOKEN",
    "TMPDIR",
    "_",
];

/// Upstream's `UNSYNCABLE_ENV_VARS_PREFIXES`.
pub(crate) const UNSYNCABLE_PREFIXES: &[&str] = &["TRIGGER_"];

/// Whether syncEnvVars would keep this key.
pub(crate) fn is_syncable(key: &str) -> bool {
    !UNSYNCABLE_ENV_VARS.contains(&key) && !UNSYNCABLE_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The callback's `{ name, value }` pairs as upstream turns them into an object
/// and filters it: a repeated name keeps its first position and its last value
/// (JavaScript property assignment), unsyncable keys are dropped.
pub(crate) fn filter_env<I, K, V>(vars: I) -> IndexMap<String, String>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut env = IndexMap::new();
    for (key, value) in vars {
        let key = key.into();
        if is_syncable(&key) {
            env.insert(key, value.into());
        }
    }
    env
}

/// The end of upstream's syncEnvVars `onBuildComplete`: the spinner's closing
/// message and, when anything is left, the layer
/// `{ id: "sync-env-vars", deploy: { env, override } }`. Only counts are logged,
/// never names or values.
pub(crate) fn add_sync_layer(
    ctx: &mut Context<'_>,
    env: IndexMap<String, String>,
    override_: bool,
) {
    match env.len() {
        0 => {
            ctx.log(LogLevel::Log, "No env vars detected");
            return;
        }
        1 => ctx.log(LogLevel::Log, "Found 1 env var"),
        n => ctx.log(LogLevel::Log, format!("Found {n} env vars to sync")),
    }
    ctx.add_layer(BuildLayer {
        id: "sync-env-vars".into(),
        deploy: Some(DeployLayer {
            env: Some(env.into_iter().map(|(k, v)| (k, Some(v))).collect()),
            override_: Some(override_),
        }),
        ..BuildLayer::default()
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::{Runtime, Target};

    #[test]
    fn deny_list_and_prefix() {
        let env = filter_env([
            ("PATH", "/bin"),
            ("API_KEY", "a"),
            ("TRIGGER_SECRET_KEY", "tr"),
            ("_", "/usr/bin/env"),
            ("GITHUB_TOKEN", "gh"),
            ("DATABASE_URL", "pg"),
            ("API_KEY", "b"),
            (
                "TRIGGERED",
                "kept: the prefix is TRIGGER_ with the underscore",
            ),
        ]);
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["API_KEY", "DATABASE_URL", "TRIGGERED"]
        );
        assert_eq!(env["API_KEY"], "b", "a repeated name keeps its last value");
        assert_eq!(UNSYNCABLE_ENV_VARS.len(), 46);
    }

    #[test]
    fn spinner_messages_and_layer() {
        let env_map = BTreeMap::new();
        let mut ctx = Context::new(
            Target::Deploy,
            Runtime::Node,
            Path::new("/p"),
            "proj",
            &env_map,
        );
        add_sync_layer(&mut ctx, IndexMap::new(), true);
        add_sync_layer(&mut ctx, filter_env([("A", "1")]), true);
        add_sync_layer(&mut ctx, filter_env([("A", "1"), ("B", "2")]), false);
        let messages: Vec<_> = ctx.logs.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "No env vars detected",
                "Found 1 env var",
                "Found 2 env vars to sync"
            ]
        );
        assert_eq!(ctx.layers.len(), 2);
        let last = serde_json::to_value(&ctx.layers[1]).unwrap();
        assert_eq!(
            last,
            serde_json::json!({"id": "sync-env-vars", "deploy": {"env": {"A": "1", "B": "2"}, "override": false}})
        );
    }
}
