//! A local stand-in for the Trigger.dev deploy API (3.3.17 wire format),
//! backed by one `SQLite` file.
//!
//! Start it in-process with [`Platform::start`], point a client at
//! [`Platform::url`], inspect what happened with [`Platform::state`] and
//! [`Platform::requests`], and inject failures with [`Platform::set_fault`].

mod clock;
mod config;
mod db;
mod error;
mod fault;
mod http;
mod ids;
mod routes;
mod shared;
mod version;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{DEFAULT_NAMESPACE, PlatformConfig, Seed, SeedProject};
pub use db::{
    DeploymentState, EnvironmentState, ProjectState, State, TaskState, UserState, WorkerState,
};
pub use error::PlatformError;
pub use fault::Fault;
pub use shared::RequestRecord;

use db::{ApproveError, Store};
use shared::{DEFAULT_DEPLOY_TIMEOUT_MS, Shared, lock};

/// A running platform. Dropping it stops it too.
pub struct Platform {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    db_path: PathBuf,
    addr: SocketAddr,
}

impl Platform {
    /// Opens (or creates) the database, applies the seed, binds and serves.
    pub fn start(config: PlatformConfig) -> Result<Platform, PlatformError> {
        let clock = clock::Clock::default();
        let mut store = Store::open(&config.db_path)?;
        store.apply_seed(&config.seed, clock.now_ms())?;
        let server = tiny_http::Server::http(config.bind).map_err(|e| PlatformError::Bind {
            addr: config.bind.to_string(),
            message: e.to_string(),
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| PlatformError::Bind {
                addr: config.bind.to_string(),
                message: "not an IP listener".to_owned(),
            })?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            registry_host: config.registry_host,
            namespace: config.namespace,
            origin: RwLock::new(origin_for(addr)),
            fault: Mutex::new(Fault::None),
            clock,
            deploy_timeout_ms: AtomicI64::new(DEFAULT_DEPLOY_TIMEOUT_MS),
            shutdown: AtomicBool::new(false),
            records: Mutex::new(VecDeque::new()),
            logger: Mutex::new(None),
        });
        let server = Arc::new(server);
        let workers = http::spawn_workers(&server, &shared);
        Ok(Platform {
            shared,
            server,
            workers,
            db_path: config.db_path,
            addr,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (also the `apiUrl` and
    /// `dashboardUrl` the API answers, unless [`Platform::set_app_origin`]).
    pub fn url(&self) -> String {
        origin_for(self.addr)
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `SQLite` file.
    pub fn db(&self) -> &Path {
        &self.db_path
    }

    /// Stops serving, ends open streams, closes the database.
    pub fn stop(self) {
        drop(self);
    }

    /// Blocks until the platform is stopped from another thread (never, for
    /// the binary: it runs until killed).
    pub fn join(mut self) {
        for worker in std::mem::take(&mut self.workers) {
            let _ = worker.join();
        }
    }

    /// Replaces the pending fault (see [`Fault`]: each fires once).
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// The fault still pending (`Fault::None` once fired).
    pub fn pending_fault(&self) -> Fault {
        lock(&self.shared.fault).clone()
    }

    /// Approves a device-login authorization code as the seeded user, as a
    /// person would in the dashboard. Returns the new personal access token.
    pub fn approve_login(&self, code: &str) -> Result<String, PlatformError> {
        let now = self.shared.now();
        lock(&self.shared.store)
            .approve_authorization_code(code, now)
            .map_err(|e| match e {
                ApproveError::Unknown => PlatformError::UnknownAuthorizationCode,
                ApproveError::Expired => PlatformError::AuthorizationCodeExpired,
                ApproveError::AlreadyApproved => PlatformError::AuthorizationCodeAlreadyApproved,
                ApproveError::NoUser => PlatformError::InvalidSeed("no user".to_owned()),
                ApproveError::Sql(e) => PlatformError::Database(e),
            })
    }

    /// Everything stored, minus secrets (also `GET /liftoff/state`).
    pub fn state(&self) -> Result<State, PlatformError> {
        self.shared.sweep_timeouts()?;
        Ok(lock(&self.shared.store).state()?)
    }

    /// The requests handled so far (oldest first; the last 10 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.records).iter().cloned().collect()
    }

    /// Calls `logger` for every handled request (method, path, status, time).
    pub fn set_request_logger(&self, logger: impl Fn(&RequestRecord) + Send + Sync + 'static) {
        *lock(&self.shared.logger) = Some(Box::new(logger));
    }

    /// Moves the platform clock forward (version dates, timeouts, code expiry).
    pub fn advance_clock(&self, by: Duration) {
        self.shared
            .clock
            .advance_ms(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
    }

    /// `DEPLOY_TIMEOUT_MS`: how long a deployment may stay BUILDING before it
    /// becomes `TIMED_OUT` (default 8 minutes).
    pub fn set_deploy_timeout(&self, timeout: Duration) {
        self.shared.deploy_timeout_ms.store(
            i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }

    /// `APP_ORIGIN`: the `apiUrl`/`dashboardUrl` answered to clients; `None`
    /// restores [`Platform::url`].
    pub fn set_app_origin(&self, origin: Option<String>) {
        let origin = origin.map_or_else(|| self.url(), |o| o.trim_end_matches('/').to_owned());
        *self
            .shared
            .origin
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = origin;
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.server.unblock();
        for worker in std::mem::take(&mut self.workers) {
            let _ = worker.join();
        }
    }
}

fn origin_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn platform_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Platform>();
    }
}
