//! The Trigger.dev platform client the `liftoff` CLI deploys with (wire-compatible with the
//! v3 webapp as CLI 3.3.17 uses it):
//!
//! - [`profiles`]: login profiles in `<config>/trigger/default.json` and the
//!   `TRIGGER_ACCESS_TOKEN` / `TRIGGER_API_URL` overrides;
//! - [`ApiClient`]: whoami, project environment, env vars, deployments (initialize,
//!   background worker, get, finalize over SSE, fail, promote) and the device login, with
//!   upstream's retries and error strings;
//! - [`Deployer`]: reports every failure after `initialize` to the server (`fail`) unless its
//!   status is already final;
//! - [`github`]: links and GitHub Actions outputs; [`version_guard`]: the `@trigger.dev/*`
//!   version check; [`worker`]: the background-worker request from `build.json` + `index.json`.

pub mod client;
pub mod deployer;
pub mod error;
pub mod github;
pub mod profiles;
pub mod retry;
pub mod secret;
pub mod sse;
pub mod types;
pub mod version_guard;
pub mod worker;

pub use client::{ApiClient, ApiClientOptions};
pub use deployer::{DeployError, Deployer, DeploymentFailure, FailureReport, StepError};
pub use error::{ApiError, OutputError, ProfileError};
pub use github::{DeployOutputs, write_github_outputs};
pub use profiles::{AuthSource, Profile, Profiles, ResolvedAuth, resolve_auth};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use types::*;
