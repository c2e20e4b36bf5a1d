//! Faults the twins inject on request, and the per-action call counts they are keyed on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A fault to inject at the `at_call`-th call (counted from the twin's start) of `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The call: an EC2 action (`CreateVpnConnection`) or an ARM method and resource type
    /// (`PUT virtualNetworkGateways`); `*` counts every mutating call.
    pub action: String,
    /// Which call of that action (1 = the first since the twin started).
    pub at_call: u32,
    /// What happens.
    pub kind: FaultKind,
    /// Apply the fault after the action took effect (the client never hears that it did).
    #[serde(default)]
    pub after_effect: bool,
}

/// How a call fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// A client error (HTTP 400) with this code and message.
    Error {
        /// The cloud's error code.
        code: String,
        /// Message.
        message: String,
    },
    /// HTTP 500.
    ServerError,
    /// Throttling: EC2's 503 `RequestLimitExceeded`, ARM's 429 with `Retry-After`.
    Throttle,
    /// The connection ends before the response is complete.
    Drop,
    /// The answer's body never comes: the call hangs until the client gives up or is killed,
    /// which stops a client at an exact point (after the effect, or before it).
    Stall,
    /// ARM only: the call is accepted, and its long-running operation ends `Failed` with this
    /// error (on EC2 it is a client error).
    LroFailed {
        /// The error code the operation reports.
        code: String,
        /// Message.
        message: String,
    },
}

/// Queued faults and the calls answered so far.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    faults: Vec<Fault>,
    /// Calls answered, per action.
    pub(crate) calls: BTreeMap<String, u32>,
}

impl FaultBook {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Counts a call of `action` and takes the fault queued for it, if any.
    pub(crate) fn on_call(
        &mut self,
        action: &str,
        is_mutating: impl Fn(&str) -> bool,
    ) -> Option<Fault> {
        let n = {
            let count = self.calls.entry(action.to_owned()).or_default();
            *count += 1;
            *count
        };
        let nth_mutating = self.mutating_calls(&is_mutating);
        let mutating = is_mutating(action);
        let index = self.faults.iter().position(|f| {
            (f.action == action && f.at_call == n)
                || (f.action == "*" && mutating && f.at_call == nth_mutating)
        })?;
        Some(self.faults.remove(index))
    }

    /// How many mutating calls were answered.
    pub(crate) fn mutating_calls(&self, is_mutating: impl Fn(&str) -> bool) -> u32 {
        self.calls
            .iter()
            .filter(|(a, _)| is_mutating(a))
            .map(|(_, n)| n)
            .sum()
    }
}

/// A response that promises more bytes than it sends: the client sees the connection end.
pub(crate) fn dropped_response() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::response::Response::builder()
        .status(axum::http::StatusCode::OK)
        .header(axum::http::header::CONTENT_LENGTH, "4096")
        .body(axum::body::Body::from("{"))
        .unwrap_or_else(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A test hook: one cloud now holds a wrong value for one tunnel, as if changed behind dxvpn's
/// back. The data plane follows the twins, so that tunnel must go (and be reported) down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Tamper {
    /// The cloud holds a fresh, different key for the tunnel with this outside address.
    Psk {
        /// The AWS tunnel's outside address.
        outside_ip: std::net::Ipv4Addr,
    },
    /// The cloud expects another ASN from the peer of this tunnel (AWS: the customer gateway,
    /// both tunnels of its connection; Azure: the tunnel's local network gateway).
    PeerAsn {
        /// The AWS tunnel's outside address.
        outside_ip: std::net::Ipv4Addr,
        /// The wrong ASN.
        asn: u32,
    },
}

impl Tamper {
    /// The tunnel it concerns.
    pub fn outside_ip(&self) -> std::net::Ipv4Addr {
        match self {
            Tamper::Psk { outside_ip } | Tamper::PeerAsn { outside_ip, .. } => *outside_ip,
        }
    }
}

/// A response whose body never arrives: the client waits until it gives up or is killed.
pub(crate) fn stalled_response() -> axum::response::Response {
    let never =
        futures_util::stream::pending::<Result<axum::body::Bytes, std::convert::Infallible>>();
    axum::response::Response::new(axum::body::Body::from_stream(never))
}
