//! The background-worker request upstream's `deploy-index-controller` sends, built from the
//! build manifest (`build.json`) and the worker manifest the indexer wrote (`index.json`).

use crate::types::{BackgroundWorkerMetadata, CreateBackgroundWorkerRequest, SourceFile};
use serde_json::Value;

/// A manifest that lacks what the request needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file} has no {field}; rebuild the project (the file may come from another Trigger.dev version)"
)]
pub struct ManifestError {
    pub file: &'static str,
    pub field: &'static str,
}

/// `{localOnly: true, metadata: {contentHash, packageVersion, cliPackageVersion, tasks,
/// sourceFiles}, supportsLazyAttempts: true}`: `tasks` are `index.json`'s tasks unchanged,
/// `sourceFiles` groups them by `filePath` (first-seen order) with the matching
/// `build.json` `sources` entry; files without a source are skipped, as upstream does.
pub fn background_worker_request(
    build_manifest: &Value,
    index: &Value,
) -> Result<CreateBackgroundWorkerRequest, ManifestError> {
    let s = |field: &'static str| {
        build_manifest
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(ManifestError {
                file: "build.json",
                field,
            })
    };
    let content_hash = s("contentHash")?;
    let package_version = s("packageVersion")?;
    let cli_package_version = s("cliPackageVersion").ok();
    let tasks = index
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or(ManifestError {
            file: "index.json",
            field: "tasks",
        })?
        .clone();

    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for task in &tasks {
        let (Some(file), Some(id)) = (
            task.get("filePath").and_then(Value::as_str),
            task.get("id").and_then(Value::as_str),
        ) else {
            continue;
        };
        match groups.iter_mut().find(|(f, _)| f == file) {
            Some((_, ids)) => ids.push(id.to_string()),
            None => groups.push((file.to_string(), vec![id.to_string()])),
        }
    }
    let sources = build_manifest.get("sources").and_then(Value::as_object);
    let source_files = groups
        .into_iter()
        .filter_map(|(file_path, task_ids)| {
            let src = sources?.get(&file_path)?;
            Some(SourceFile {
                contents: src.get("contents")?.as_str()?.to_string(),
                content_hash: src.get("contentHash")?.as_str()?.to_string(),
                task_ids,
                file_path,
            })
        })
        .collect();

    Ok(CreateBackgroundWorkerRequest {
        local_only: true,
        metadata: BackgroundWorkerMetadata {
            content_hash,
            package_version,
            cli_package_version,
            tasks,
            source_files: Some(source_files),
        },
        supports_lazy_attempts: Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_upstreams_body() {
        let build = json!({
            "contentHash": "c0ffee", "packageVersion": "3.3.17", "cliPackageVersion": "3.3.17",
            "sources": {
                "src/trigger/a.ts": {"contents": "eJw=", "contentHash": "h1"},
                "trigger.config.ts": {"contents": "eJx=", "contentHash": "h2"}
            }
        });
        let index = json!({
            "configPath": "/app/trigger.config.mjs", "runtime": "node", "workerEntryPoint": "/app/w.mjs",
            "tasks": [
                {"id": "a1", "filePath": "src/trigger/a.ts", "exportName": "a1", "entryPoint": "/app/a.mjs", "retry": {"maxAttempts": 3}},
                {"id": "b", "filePath": "src/trigger/b.ts", "exportName": "b", "entryPoint": "/app/b.mjs"},
                {"id": "a2", "filePath": "src/trigger/a.ts", "exportName": "a2", "entryPoint": "/app/a.mjs"}
            ]
        });
        let body = background_worker_request(&build, &index).unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "localOnly": true,
                "metadata": {
                    "contentHash": "c0ffee",
                    "packageVersion": "3.3.17",
                    "cliPackageVersion": "3.3.17",
                    "tasks": index["tasks"],
                    "sourceFiles": [
                        {"contents": "eJw=", "contentHash": "h1", "taskIds": ["a1", "a2"], "filePath": "src/trigger/a.ts"}
                    ]
                },
                "supportsLazyAttempts": true
            })
        );
    }

    #[test]
    fn missing_fields_are_errors() {
        let e = background_worker_request(&json!({}), &json!({"tasks": []})).unwrap_err();
        assert_eq!(e.field, "contentHash");
        let e = background_worker_request(
            &json!({"contentHash": "c", "packageVersion": "p"}),
            &json!({}),
        )
        .unwrap_err();
        assert_eq!(e.file, "index.json");
        assert!(e.to_string().contains("rebuild"));
    }
}
