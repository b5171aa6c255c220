//! The resolved build plan shown by `deploy --dry-run --json`: what each
//! extension did. Env vars appear by name only; values never leave the manifest.

use liftoff_manifest::BuildManifest;
use serde::Serialize;

use crate::layer::BuildLayer;
use crate::{CopiedFile, LogLine};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionPlan {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    pub location: String,
    /// `native`, `sidecar` or `skipped`.
    pub implementation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub layers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerPlan {
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pkgs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub build_env: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deploy_env: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub extensions: Vec<ExtensionPlan>,
    pub layers: Vec<LayerPlan>,
    /// The image's Debian packages (defaults included) and instructions, in Containerfile order.
    pub image_packages: Vec<String>,
    pub image_instructions: Vec<String>,
    pub build_commands: Vec<String>,
    pub build_env: Vec<String>,
    pub files_copied: Vec<CopiedFile>,
    /// Names of the env vars that will be synced to the platform.
    pub sync_env_vars: Vec<String>,
    pub custom_conditions: Vec<String>,
    pub messages: Vec<LogLine>,
}

fn names<V>(map: Option<&indexmap::IndexMap<String, V>>) -> Vec<String> {
    map.map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

impl Plan {
    pub(crate) fn new(
        extensions: Vec<ExtensionPlan>,
        layers: &[BuildLayer],
        files: &[CopiedFile],
        manifest: &BuildManifest,
        messages: &[LogLine],
    ) -> Self {
        let layers = layers
            .iter()
            .map(|l| LayerPlan {
                id: l.id.clone(),
                pkgs: l
                    .image
                    .as_ref()
                    .and_then(|i| i.pkgs.clone())
                    .unwrap_or_default(),
                instructions: l
                    .image
                    .as_ref()
                    .and_then(|i| i.instructions.clone())
                    .unwrap_or_default(),
                commands: l.commands.clone().unwrap_or_default(),
                build_env: names(l.build.as_ref().and_then(|b| b.env.as_ref())),
                deploy_env: names(l.deploy.as_ref().and_then(|d| d.env.as_ref())),
                dependencies: l
                    .dependencies
                    .as_ref()
                    .map(|d| d.iter().map(|(k, v)| format!("{k}@{v}")).collect())
                    .unwrap_or_default(),
                conditions: l.conditions.clone().unwrap_or_default(),
            })
            .collect();
        Self {
            extensions,
            layers,
            image_packages: manifest.image_packages(),
            image_instructions: manifest
                .image
                .as_ref()
                .and_then(|i| i.instructions.clone())
                .unwrap_or_default(),
            build_commands: manifest.build.commands.clone().unwrap_or_default(),
            build_env: names(manifest.build.env.as_ref()),
            files_copied: files.to_vec(),
            sync_env_vars: names(manifest.deploy.sync.as_ref().and_then(|s| s.env.as_ref())),
            custom_conditions: manifest.custom_conditions.clone().unwrap_or_default(),
            messages: messages.to_vec(),
        }
    }
}

/// Every secret value the manifest holds (build env, env vars to sync), longest first.
pub(crate) fn secret_values(manifest: &BuildManifest) -> Vec<String> {
    let mut values: Vec<String> = manifest
        .build
        .env
        .iter()
        .flatten()
        .map(|(_, v)| v.clone())
        .chain(
            manifest
                .deploy
                .sync
                .iter()
                .flat_map(|s| s.env.iter().flatten().map(|(_, v)| v.clone())),
        )
        .filter(|v| v.len() >= 4)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

/// Replaces every secret value in `text` with `[redacted]`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}
