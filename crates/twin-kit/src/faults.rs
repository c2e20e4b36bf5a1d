//! Faults the twins inject on request (queued, or at random as chaos), the per-action call
//! counts they are keyed on, and the test hook that makes one cloud hold a wrong value.

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
    /// Throttling: EC2's 400 `RequestLimitExceeded`, ARM's 429 with `Retry-After`.
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

/// What `POST /_dxvpn/chaos` sets: from now on each call fails at random with probability
/// `rate` (0 stops it), replayably for one `seed`. The answer is `{"injected": N}`, the faults
/// the setting it replaces injected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChaosSetting {
    /// Share of calls that fail, 0 to 1.
    pub rate: f64,
    /// Seed of the random sequence.
    #[serde(default)]
    pub seed: u64,
}

/// `POST /_dxvpn/chaos` for either twin: a rate outside 0 to 1 is refused.
pub fn apply_chaos(
    book: &mut FaultBook,
    setting: ChaosSetting,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    if !(0.0..=1.0).contains(&setting.rate) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "rate: must be between 0 and 1"})),
        );
    }
    let injected = book.chaos_injected();
    book.set_chaos(setting.rate, setting.seed);
    (
        axum::http::StatusCode::OK,
        axum::Json(serde_json::json!({ "injected": injected })),
    )
}

/// Queued faults and the calls answered so far.
#[derive(Debug, Default)]
pub struct FaultBook {
    faults: Vec<Fault>,
    /// Calls answered, per action.
    pub calls: BTreeMap<String, u32>,
    chaos: Option<Chaos>,
}

/// Transient faults at random: each call fails with probability `rate`, as a bad day in a
/// cloud does (a server error, throttling, or a dropped connection, half of those after the
/// call took effect). Seeded, so that a failing run can be replayed.
#[derive(Debug)]
struct Chaos {
    rate: f64,
    state: u64,
    injected: u32,
}

impl Chaos {
    /// xorshift64*: uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&mut self, action: &str) -> Option<Fault> {
        if self.next() >= self.rate {
            return None;
        }
        self.injected += 1;
        let pick = self.next();
        let (kind, after_effect) = if pick < 1.0 / 3.0 {
            (FaultKind::ServerError, false)
        } else if pick < 2.0 / 3.0 {
            (FaultKind::Throttle, false)
        } else {
            (FaultKind::Drop, self.next() < 0.5)
        };
        Some(Fault {
            action: action.to_owned(),
            at_call: 0,
            kind,
            after_effect,
        })
    }
}

impl FaultBook {
    /// Queues a fault.
    pub fn push(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// From now on, every call fails at random with probability `rate` (0 stops it).
    pub fn set_chaos(&mut self, rate: f64, seed: u64) {
        self.chaos = (rate > 0.0).then_some(Chaos {
            rate,
            // xorshift's state must not be zero.
            state: seed | 1,
            injected: 0,
        });
    }

    /// Faults injected at random so far.
    pub fn chaos_injected(&self) -> u32 {
        self.chaos.as_ref().map_or(0, |c| c.injected)
    }

    /// Counts a call of `action` and takes the fault queued for it, if any.
    pub fn on_call(&mut self, action: &str, is_mutating: impl Fn(&str) -> bool) -> Option<Fault> {
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
        });
        match index {
            Some(index) => Some(self.faults.remove(index)),
            None => self.chaos.as_mut().and_then(|c| c.fault(action)),
        }
    }

    /// How many mutating calls were answered.
    pub fn mutating_calls(&self, is_mutating: impl Fn(&str) -> bool) -> u32 {
        self.calls
            .iter()
            .filter(|(a, _)| is_mutating(a))
            .map(|(_, n)| n)
            .sum()
    }
}

/// A response whose body breaks off: a first byte, then the stream fails, so the server
/// aborts the connection and the client sees it end mid-answer. (A short body under a longer
/// Content-Length trips a debug assertion in hyper instead.)
pub fn dropped_response() -> axum::response::Response {
    let broken = futures_util::stream::iter([
        Ok(axum::body::Bytes::from_static(b"{")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "dropped (injected)",
        )),
    ]);
    axum::response::Response::new(axum::body::Body::from_stream(broken))
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
pub fn stalled_response() -> axum::response::Response {
    let never =
        futures_util::stream::pending::<Result<axum::body::Bytes, std::convert::Infallible>>();
    axum::response::Response::new(axum::body::Body::from_stream(never))
}
