//! Request and response bodies of the Trigger.dev v3 platform API (CLI 3.3.17 wire shapes).
//!
//! Responses ignore unknown fields; optional request fields are omitted when `None`, as
//! `JSON.stringify` drops `undefined`.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /api/v2/whoami` (PAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    pub user_id: String,
    pub email: String,
    /// The server's `APP_ORIGIN`.
    pub dashboard_url: String,
}

/// `GET /api/v1/projects/{ref}/{env}` (PAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectEnv {
    /// The environment's secret key (`tr_prod_…` / `tr_stg_…`).
    pub api_key: Secret,
    pub name: String,
    /// The server's `APP_ORIGIN`; every deployment call goes there.
    pub api_url: String,
    /// Internal project id (cuid), the `TRIGGER_PROJECT_ID` build argument.
    pub project_id: String,
}

/// `GET /api/v1/projects/{ref}/envvars` (env key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVars {
    pub variables: BTreeMap<String, String>,
}

/// `POST /api/v1/projects/{ref}/envvars/{env}/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportEnvVarsRequest {
    pub variables: BTreeMap<String, String>,
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_existing: Option<bool>,
}

/// `{success: true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    pub success: bool,
}

/// `POST /api/v1/deployments` (env key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeDeploymentRequest {
    pub content_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_hosted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBuildData {
    pub build_id: String,
    pub build_token: Secret,
    pub project_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeDeploymentResponse {
    /// `deployment_…` friendly id.
    pub id: String,
    pub content_hash: String,
    pub short_code: String,
    /// `YYYYMMDD.N`, assigned by the server.
    pub version: String,
    /// `<namespace>/<projectRef>:<version>.<envSlug>`.
    pub image_tag: String,
    #[serde(default)]
    pub external_build_data: Option<ExternalBuildData>,
    #[serde(default)]
    pub registry_host: Option<String>,
}

/// `POST /api/v1/deployments/{id}/background-workers`, as upstream's
/// `deploy-index-controller` sends it. See [`crate::worker`] to build it from `build.json` and
/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBackgroundWorkerRequest {
    pub local_only: bool,
    pub metadata: BackgroundWorkerMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_lazy_attempts: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundWorkerMetadata {
    pub content_hash: String,
    pub package_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cli_package_version: Option<String>,
    /// The index worker's task manifests, passed through unchanged (`{id, filePath,
    /// exportName, entryPoint, queue?, retry?, machine?, triggerSource?, schedule?,
    /// maxDuration?, description?}`).
    pub tasks: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_files: Option<Vec<SourceFile>>,
}

/// One task file: `contents` is base64(deflate(text)) and `contentHash` the md5 hex of the
/// text, both copied from `build.json`'s `sources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFile {
    pub contents: String,
    pub content_hash: String,
    pub task_ids: Vec<String>,
    pub file_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBackgroundWorkerResponse {
    /// `worker_…`.
    pub id: String,
    pub version: String,
    pub content_hash: String,
}

/// A deployment's lifecycle state. Unknown values (newer servers) count as not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Pending,
    Building,
    Deploying,
    Deployed,
    Failed,
    Canceled,
    TimedOut,
    #[serde(other)]
    Unknown,
}

impl DeploymentStatus {
    /// `DEPLOYED`, `FAILED`, `CANCELED` and `TIMED_OUT`: the server ignores `fail` calls.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Deployed | Self::Failed | Self::Canceled | Self::TimedOut
        )
    }

    /// Upstream `failDeploy`'s outro prefix for this state.
    pub fn failure_prefix(self) -> &'static str {
        match self {
            Self::Canceled => "Canceled",
            Self::Failed => "Failed",
            Self::Deployed => "Deployed with errors",
            Self::TimedOut => "TimedOut",
            Self::Pending | Self::Building | Self::Deploying | Self::Unknown => "Error",
        }
    }
}

/// `{name, message, stack?, stderr?}`: a deployment's `errorData` and the body of `fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentErrorData {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl DeploymentErrorData {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
            stack: None,
            stderr: None,
        }
    }
}

/// `GET /api/v1/deployments/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub content_hash: String,
    pub short_code: String,
    pub version: String,
    #[serde(default)]
    pub image_reference: Option<String>,
    #[serde(default)]
    pub error_data: Option<DeploymentErrorData>,
    #[serde(default)]
    pub worker: Option<DeploymentWorker>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentWorker {
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub tasks: Vec<DeploymentTask>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTask {
    pub id: String,
    pub slug: String,
    pub file_path: String,
    pub export_name: String,
}

/// `POST /api/v1/deployments/{id}/fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailDeploymentRequest {
    pub error: DeploymentErrorData,
}

/// `{id}`: the answer of `fail` and the data of the finalize `complete` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdResponse {
    pub id: String,
}

/// `POST /api/v3/deployments/{id}/finalize`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeDeploymentRequest {
    pub image_reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_hosted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_registry_proxy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_promotion: Option<bool>,
}

/// `POST /api/v1/deployments/{version}/promote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromoteResponse {
    pub id: String,
    pub version: String,
    pub short_code: String,
}

/// `POST /api/v1/authorization-code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationCode {
    pub authorization_code: String,
    /// Open this in a browser: `${APP_ORIGIN}/account/authorization-code/${code}`.
    pub url: String,
}

/// `POST /api/v1/token` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub authorization_code: String,
}

/// `POST /api/v1/token` answer: `token` is `null` until the user approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: Option<DeviceToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceToken {
    pub token: Secret,
    /// `tr_pat_` + first 4 + `•`×18 + last 4: safe to show.
    pub obfuscated_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_request_fields_are_omitted() {
        let body = InitializeDeploymentRequest {
            content_hash: "abc".into(),
            user_id: Some("u1".into()),
            self_hosted: Some(true),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"contentHash":"abc","userId":"u1","selfHosted":true})
        );
        let fail = FailDeploymentRequest {
            error: DeploymentErrorData::new("BuildError", "Error building image"),
        };
        assert_eq!(
            serde_json::to_value(&fail).unwrap(),
            json!({"error":{"name":"BuildError","message":"Error building image"}})
        );
    }

    #[test]
    fn deployment_parses_with_and_without_worker() {
        let d: Deployment = serde_json::from_value(json!({
            "id":"deployment_x","status":"DEPLOYING","contentHash":"h","shortCode":"abcd1234",
            "version":"20250228.1","imageReference":null,"errorData":null,
            "worker":{"id":"worker_1","version":"20250228.1","tasks":[{"id":"t","slug":"t","filePath":"src/t.ts","exportName":"t"}]}
        }))
        .unwrap();
        assert_eq!(d.worker.unwrap().tasks.len(), 1);
        let d: Deployment = serde_json::from_value(json!({
            "id":"deployment_x","status":"INSTALLING","contentHash":"h","shortCode":"s","version":"v"
        }))
        .unwrap();
        assert_eq!(d.status, DeploymentStatus::Unknown);
        assert!(!d.status.is_final());
        assert!(DeploymentStatus::TimedOut.is_final());
    }
}
