//! Injected failures for client tests.

/// A failure the platform injects into its next matching exchange.
///
/// Every fault fires once and then clears itself (`FailRequests` fires
/// `times` times). Setting a new fault replaces the pending one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    /// No fault.
    #[default]
    None,
    /// The next request whose path contains `path_contains` gets `status` and
    /// `body` (sent as JSON when it parses as JSON, else as text) instead of
    /// being handled. Nothing is changed in the database.
    FailNextRequest {
        path_contains: String,
        status: u16,
        body: String,
    },
    /// Like `FailNextRequest`, for the next `times` matching requests (for
    /// exercising client retries).
    FailRequests {
        path_contains: String,
        status: u16,
        body: String,
        times: u32,
    },
    /// The next finalize stream sends `event: error` with `{"error": message}`
    /// and closes; the deployment is left unchanged.
    FinalizeError { message: String },
    /// The next finalize stream sends its headers and then nothing; it stays
    /// open until the platform stops.
    FinalizeHang,
    /// The next finalize stream sends its headers and closes the connection
    /// without a `complete` or `error` event; the deployment is unchanged.
    FinalizeDisconnect,
    /// The next finalize stream first sends `pings` `ping` events and one
    /// `log` event per line, then finalizes normally.
    FinalizeLogs { pings: u32, lines: Vec<String> },
}

/// What the request layer should do with a request, given the pending fault.
pub(crate) enum RequestFault {
    Respond { status: u16, body: String },
}

/// What the finalize stream should do, given the pending fault.
pub(crate) enum FinalizeFault {
    Error(String),
    Hang,
    Disconnect,
    Logs { pings: u32, lines: Vec<String> },
}

impl Fault {
    /// Takes the request-level fault if it matches `path`.
    pub(crate) fn take_for_request(&mut self, path: &str) -> Option<RequestFault> {
        match self {
            Fault::FailNextRequest {
                path_contains,
                status,
                body,
            } if path.contains(path_contains.as_str()) => {
                let out = RequestFault::Respond {
                    status: *status,
                    body: std::mem::take(body),
                };
                *self = Fault::None;
                Some(out)
            }
            Fault::FailRequests {
                path_contains,
                status,
                body,
                times,
            } if path.contains(path_contains.as_str()) => {
                let out = RequestFault::Respond {
                    status: *status,
                    body: body.clone(),
                };
                *times = times.saturating_sub(1);
                if *times == 0 {
                    *self = Fault::None;
                }
                Some(out)
            }
            _ => None,
        }
    }

    /// Takes the finalize-level fault, if one is pending.
    pub(crate) fn take_for_finalize(&mut self) -> Option<FinalizeFault> {
        let out = match self {
            Fault::FinalizeError { message } => FinalizeFault::Error(std::mem::take(message)),
            Fault::FinalizeHang => FinalizeFault::Hang,
            Fault::FinalizeDisconnect => FinalizeFault::Disconnect,
            Fault::FinalizeLogs { pings, lines } => FinalizeFault::Logs {
                pings: *pings,
                lines: std::mem::take(lines),
            },
            _ => return None,
        };
        *self = Fault::None;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_requests_counts_down() {
        let mut fault = Fault::FailRequests {
            path_contains: "/deployments".into(),
            status: 500,
            body: "{}".into(),
            times: 2,
        };
        assert!(fault.take_for_request("/api/v2/whoami").is_none());
        assert!(fault.take_for_request("/api/v1/deployments").is_some());
        assert!(fault.take_for_request("/api/v1/deployments").is_some());
        assert_eq!(fault, Fault::None);
        assert!(fault.take_for_request("/api/v1/deployments").is_none());
    }

    #[test]
    fn finalize_fault_is_one_shot() {
        let mut fault = Fault::FinalizeHang;
        assert!(
            fault
                .take_for_request("/api/v3/deployments/x/finalize")
                .is_none()
        );
        assert!(matches!(
            fault.take_for_finalize(),
            Some(FinalizeFault::Hang)
        ));
        assert!(fault.take_for_finalize().is_none());
    }
}
