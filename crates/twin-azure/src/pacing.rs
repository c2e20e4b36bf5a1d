//! How fast the Azure twin answers when a pace is set ([`dxvpn_twin_kit::pace`]): every call
//! takes a drawn time, and Resource Manager refuses calls beyond its token buckets with 429 and
//! `Retry-After`.

use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use dxvpn_twin_kit::admin::lock;
use dxvpn_twin_kit::pace::{BucketSize, Latency};

use crate::arm::ArmError;
use crate::{Shared, arm_error};

/// A GET. Azure publishes no API latency (ARM's own "Latency" control-plane metric measures
/// it per subscription): this is the project's assumption for a client in the same geography
/// (docs/lab.md, "Pace").
const READ: Latency = Latency {
    low_ms: 100,
    high_ms: 400,
};
/// A PUT, PATCH, DELETE or POST: answered once accepted (201/202), not when the operation ends.
const WRITE: Latency = Latency {
    low_ms: 300,
    high_ms: 1000,
};

/// ARM's buckets per subscription and service principal, one per operation type ("Understand
/// how Azure Resource Manager throttles requests", regional throttling and token bucket
/// algorithm, since 2024): reads 250 tokens refilled 25 a second, writes and deletes 200 and 10.
/// A POST action (`getBgpPeerStatus`) is not a read.
fn bucket(method: &Method) -> (&'static str, BucketSize) {
    let (name, capacity, refill_per_second) = match *method {
        Method::GET | Method::HEAD => ("reads", 250.0, 25.0),
        Method::DELETE => ("deletes", 200.0, 10.0),
        _ => ("writes", 200.0, 10.0),
    };
    (
        name,
        BucketSize {
            capacity,
            refill_per_second,
        },
    )
}

/// Waits out the call's drawn time, or answers ARM's throttling error. A POST that only reads
/// (`getBgpPeerStatus`, `getLearnedRoutes`: answered 202 at once) takes a read's time, though
/// ARM counts it among the writes.
pub(crate) async fn pace(state: &Shared, method: &Method, path: &str) -> Result<(), Response> {
    let (name, size) = bucket(method);
    let reads_only = *method == Method::POST && !path.to_ascii_lowercase().ends_with("/reset");
    let latency = if name == "reads" || reads_only {
        READ
    } else {
        WRITE
    };
    let admission = lock(state).pace.admit(name, size, latency, Instant::now());
    admission
        .wait()
        .await
        .map_err(|retry_after| throttled(name, retry_after))
}

/// 429 `SubscriptionRequestsThrottled` with `Retry-After` in whole seconds (at least 1), as
/// the same page shows it.
fn throttled(operation: &str, retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = arm_error(&ArmError {
        status: 429,
        code: "SubscriptionRequestsThrottled".into(),
        message: format!(
            "Number of '{}' requests for subscription exceeded. Please try again after '{seconds}' seconds after the last request.",
            operation.trim_end_matches('s')
        ),
    });
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
