//! State shared by the request threads and the [`crate::Platform`] handle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::db::Store;
use crate::fault::Fault;

/// Upstream's `DEPLOY_TIMEOUT_MS` default: 8 minutes.
pub const DEFAULT_DEPLOY_TIMEOUT_MS: i64 = 480_000;
const MAX_RECORDS: usize = 10_000;

/// One handled request, as kept for tests (no headers, no bodies, no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    /// The path without its query; authorization codes are redacted.
    pub path: String,
    pub status: u16,
    pub millis: u64,
}

pub type RequestLogger = Box<dyn Fn(&RequestRecord) + Send + Sync>;

pub struct Shared {
    pub store: Mutex<Store>,
    pub registry_host: Option<String>,
    pub namespace: String,
    pub origin: RwLock<String>,
    pub fault: Mutex<Fault>,
    pub clock: Clock,
    pub deploy_timeout_ms: AtomicI64,
    pub shutdown: AtomicBool,
    pub records: Mutex<VecDeque<RequestRecord>>,
    pub logger: Mutex<Option<RequestLogger>>,
}

/// Locks a mutex, ignoring poisoning (a panicked holder leaves valid data:
/// every store change is transactional).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn origin(&self) -> String {
        self.origin
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies the BUILDING timeout before a deployment route reads state.
    pub fn sweep_timeouts(&self) -> rusqlite::Result<()> {
        let timeout = self.deploy_timeout_ms.load(Ordering::Relaxed);
        lock(&self.store).sweep_timeouts(self.now(), timeout)?;
        Ok(())
    }

    pub fn record(&self, record: RequestRecord) {
        if let Some(logger) = lock(&self.logger).as_ref() {
            logger(&record);
        }
        let mut records = lock(&self.records);
        if records.len() == MAX_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }
}
