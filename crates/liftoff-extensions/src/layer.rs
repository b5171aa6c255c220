//! `BuildLayer` and upstream's merge rules (`applyLayerToManifest`).

use indexmap::IndexMap;
use liftoff_manifest::{BuildManifest, DeploySync, External, ImageSection};
use serde::{Deserialize, Serialize};

/// What an extension adds to the build: upstream's `BuildLayer`, same JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildLayer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// Declared by upstream but ignored by its merger; kept for fidelity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<IndexMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildEnvLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<IndexMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkgs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildEnvLayer {
    /// `None` is JavaScript's `undefined`: the key still gets `ARG`/`ENV` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, Option<String>>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, Option<String>>>,
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<bool>,
}

/// Applies one layer to the manifest exactly as upstream does:
/// commands, instructions and dependencies append; pkgs and conditions append
/// and de-duplicate (first occurrence wins); build env is assigned (later wins);
/// a truthy deploy env value goes to `deploy.sync.env` when the layer overrides
/// or the server has no value, and it differs from the server's.
pub fn apply_layer(manifest: &mut BuildManifest, layer: &BuildLayer) {
    if let Some(commands) = &layer.commands {
        manifest
            .build
            .commands
            .get_or_insert_with(Vec::new)
            .extend(commands.iter().cloned());
    }
    if let Some(env) = layer.build.as_ref().and_then(|b| b.env.as_ref()) {
        let target = manifest.build.env.get_or_insert_with(IndexMap::new);
        for (k, v) in env {
            target.insert(k.clone(), v.clone().unwrap_or_default());
        }
    }
    if let Some(deploy) = &layer.deploy {
        let override_ = deploy.override_.unwrap_or(false);
        for (k, v) in deploy.env.iter().flatten() {
            let Some(v) = v.as_ref().filter(|v| !v.is_empty()) else {
                continue;
            };
            let server = manifest.deploy.env.as_ref().and_then(|e| e.get(k));
            if (override_ || server.is_none()) && server != Some(v) {
                manifest
                    .deploy
                    .sync
                    .get_or_insert_with(DeploySync::default)
                    .env
                    .get_or_insert_with(IndexMap::new)
                    .insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(deps) = &layer.dependencies {
        let externals = manifest.externals.get_or_insert_with(Vec::new);
        for (name, version) in deps {
            externals.push(External {
                name: name.clone(),
                version: version.clone(),
            });
        }
    }
    if let Some(image) = &layer.image {
        let section = manifest.image.get_or_insert_with(ImageSection::default);
        if let Some(instructions) = &image.instructions {
            section
                .instructions
                .get_or_insert_with(Vec::new)
                .extend(instructions.iter().cloned());
        }
        if let Some(pkgs) = &image.pkgs {
            let all = section.pkgs.get_or_insert_with(Vec::new);
            for p in pkgs {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
        }
    }
    if let Some(conditions) = &layer.conditions {
        let all = manifest.custom_conditions.get_or_insert_with(Vec::new);
        for c in conditions {
            if !all.contains(c) {
                all.push(c.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(json: &str) -> BuildLayer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merges_like_upstream() {
        let mut m = BuildManifest::default();
        m.deploy.env = Some(IndexMap::from([
            ("SERVER".to_string(), "same".to_string()),
            ("OTHER".into(), "old".into()),
        ]));
        apply_layer(
            &mut m,
            &layer(
                r#"{"id":"a","commands":["c1"],"image":{"pkgs":["x","y"],"instructions":["RUN a"]},"build":{"env":{"K":"1","U":null}},"deploy":{"env":{"SERVER":"same","OTHER":"new","NEW":"v","EMPTY":""}},"dependencies":{"p":"1.0.0"},"conditions":["c"]}"#,
            ),
        );
        apply_layer(
            &mut m,
            &layer(
                r#"{"id":"b","commands":["c1"],"image":{"pkgs":["y","z"],"instructions":["RUN a"]},"build":{"env":{"K":"2"}},"deploy":{"env":{"OTHER":"newer"},"override":true},"dependencies":{"p":"2.0.0"},"conditions":["c","d"]}"#,
            ),
        );
        assert_eq!(
            m.build.commands.as_deref(),
            Some(&["c1".to_string(), "c1".to_string()][..])
        );
        let env = m.build.env.unwrap();
        assert_eq!(env.get("K").map(String::as_str), Some("2"));
        assert_eq!(
            env.get("U").map(String::as_str),
            Some(""),
            "undefined keys are kept"
        );
        let image = m.image.unwrap();
        assert_eq!(image.pkgs.unwrap(), ["x", "y", "z"]);
        assert_eq!(image.instructions.unwrap(), ["RUN a", "RUN a"]);
        let sync = m.deploy.sync.unwrap().env.unwrap();
        // SERVER: same value → not synced; OTHER: server has it, first layer no override → skipped,
        // second overrides → synced; NEW: server lacks it → synced; EMPTY: falsy → skipped.
        assert_eq!(sync.keys().collect::<Vec<_>>(), ["NEW", "OTHER"]);
        assert_eq!(sync["OTHER"], "newer");
        assert_eq!(
            m.deploy.env.unwrap()["OTHER"],
            "old",
            "server env is never modified"
        );
        let ext = m.externals.unwrap();
        assert_eq!(ext.len(), 2, "dependencies are appended, not de-duplicated");
        assert_eq!(m.custom_conditions.unwrap(), ["c", "d"]);
    }
}
