//! The deployment state machine around the API calls: once `initialize` has created a
//! deployment, every failure is reported to the server with `fail` (unless the server already
//! holds a final status), then returned unchanged to the caller.
//!
//! This also covers the finalize stream's `event: error`, which upstream 3.3.17 never reports
//! (its promise rejects with a plain object, so `failDeploy` is skipped).

use crate::client::ApiClient;
use crate::error::ApiError;
use crate::types::{
    Deployment, DeploymentErrorData, DeploymentStatus, FinalizeDeploymentRequest, IdResponse,
    InitializeDeploymentRequest, InitializeDeploymentResponse,
};

/// An error that can describe itself as a deployment's `errorData` (`{name, message, …}`).
pub trait DeploymentFailure: std::error::Error {
    /// Defaults to `{name: "DeploymentError", message: <Display>}`.
    fn error_data(&self) -> DeploymentErrorData {
        DeploymentErrorData::new("DeploymentError", self.to_string())
    }
}

impl DeploymentFailure for ApiError {
    fn error_data(&self) -> DeploymentErrorData {
        match self {
            Self::FinalizeFailed { message } => {
                DeploymentErrorData::new("FinalizeError", message.clone())
            }
            Self::FinalizeStreamEnded { .. } | Self::FinalizeStreamTimeout { .. } => {
                DeploymentErrorData::new("FinalizeError", self.to_string())
            }
            _ => DeploymentErrorData::new("DeploymentError", self.upstream_message()),
        }
    }
}

/// A failed deploy step with upstream's error names (`BuildError`, `DeploymentError`,
/// `FinalizeError`, `SyncEnvVarsError`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", data.message)]
pub struct StepError {
    pub data: DeploymentErrorData,
}

impl StepError {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            data: DeploymentErrorData::new(name, message),
        }
    }

    /// `BuildError` (`Error building image`, `Error pushing image`, …).
    pub fn build(message: impl Into<String>) -> Self {
        Self::new("BuildError", message)
    }

    /// `DeploymentError`.
    pub fn deployment(message: impl Into<String>) -> Self {
        Self::new("DeploymentError", message)
    }

    /// `FinalizeError`.
    pub fn finalize(message: impl Into<String>) -> Self {
        Self::new("FinalizeError", message)
    }

    /// `SyncEnvVarsError`: `Failed to sync N env var(s) with the server`.
    pub fn sync_env_vars(count: usize) -> Self {
        let noun = if count == 1 { "var" } else { "vars" };
        Self::new(
            "SyncEnvVarsError",
            format!("Failed to sync {count} env {noun} with the server"),
        )
    }

    /// Attaches the build output tail (sent as `stderr`).
    #[must_use]
    pub fn with_stderr(mut self, stderr: impl Into<String>) -> Self {
        self.data.stderr = Some(stderr.into());
        self
    }

    #[must_use]
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.data.stack = Some(stack.into());
        self
    }
}

impl DeploymentFailure for StepError {
    fn error_data(&self) -> DeploymentErrorData {
        self.data.clone()
    }
}

/// What happened on the server side after a failure.
#[derive(Debug)]
pub struct FailureReport {
    /// The status `GET /deployments/{id}` showed before deciding (None when that call failed).
    pub server_status: Option<DeploymentStatus>,
    /// The server's `errorData` when it already had one (e.g. the indexer failed).
    pub server_error: Option<DeploymentErrorData>,
    /// Whether `POST …/fail` was sent and accepted.
    pub reported: bool,
    /// A failure of the status check or of the `fail` call itself.
    pub problem: Option<ApiError>,
}

impl FailureReport {
    /// Upstream's outro prefix: `Error`, `Canceled`, `Failed`, `Deployed with errors` or
    /// `TimedOut`.
    pub fn prefix(&self) -> &'static str {
        self.server_status
            .map_or("Error", DeploymentStatus::failure_prefix)
    }
}

/// A deploy step failed after `initialize`: the original error, plus what was done about it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct DeployError<E: std::error::Error + 'static> {
    pub deployment_id: String,
    pub error: E,
    pub report: Box<FailureReport>,
}

/// Orchestration helpers over an environment-key [`ApiClient`].
#[derive(Debug, Clone, Copy)]
pub struct Deployer<'a> {
    client: &'a ApiClient,
}

impl<'a> Deployer<'a> {
    pub fn new(client: &'a ApiClient) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &'a ApiClient {
        self.client
    }

    /// `POST /api/v1/deployments`. Nothing to clean up when it fails.
    pub fn initialize(
        &self,
        request: &InitializeDeploymentRequest,
    ) -> Result<InitializeDeploymentResponse, ApiError> {
        self.client.initialize_deployment(request)
    }

    /// Runs `f`; if it fails, reports the failure with [`Deployer::report_failure`] and returns
    /// the original error with the report.
    pub fn run_after_initialize<T, E: DeploymentFailure + 'static>(
        &self,
        deployment_id: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, DeployError<E>> {
        f().map_err(|error| {
            let report = Box::new(self.report_failure(deployment_id, &error.error_data()));
            DeployError {
                deployment_id: deployment_id.to_string(),
                error,
                report,
            }
        })
    }

    /// Upstream's `failDeploy`, fixed: reads the status; when it is final (`DEPLOYED`,
    /// `FAILED`, `CANCELED`, `TIMED_OUT`) leaves it alone, otherwise (including when the status
    /// cannot be read) sends `POST …/fail` with `error`. Never fails itself.
    pub fn report_failure(
        &self,
        deployment_id: &str,
        error: &DeploymentErrorData,
    ) -> FailureReport {
        let mut report = FailureReport {
            server_status: None,
            server_error: None,
            reported: false,
            problem: None,
        };
        match self.client.get_deployment(deployment_id) {
            Ok(d) => {
                report.server_status = Some(d.status);
                report.server_error = d.error_data;
                if d.status.is_final() {
                    return report;
                }
            }
            // The server ignores `fail` for unknown or final deployments, so trying is safe.
            Err(e) => report.problem = Some(e),
        }
        match self.client.fail_deployment(deployment_id, error) {
            Ok(()) => report.reported = true,
            Err(e) => {
                if report.problem.is_none() {
                    report.problem = Some(e);
                }
            }
        }
        report
    }

    /// `GET /api/v1/deployments/{id}`, requiring the worker the indexer attached (upstream:
    /// `Failed to get deployment with worker`).
    pub fn deployment_with_worker(&self, deployment_id: &str) -> Result<Deployment, StepError> {
        let d = self
            .client
            .get_deployment(deployment_id)
            .map_err(|e| StepError::deployment(e.upstream_message()))?;
        if d.worker.is_none() {
            return Err(StepError::deployment(
                "Failed to get deployment with worker",
            ));
        }
        Ok(d)
    }

    /// Finalize (event stream) with upstream's error naming (`FinalizeError`).
    pub fn finalize(
        &self,
        deployment_id: &str,
        request: &FinalizeDeploymentRequest,
        on_log: impl FnMut(&str),
    ) -> Result<IdResponse, ApiError> {
        self.client
            .finalize_deployment(deployment_id, request, on_log)
    }
}
