//! How fast the AWS twin answers when a pace is set ([`dxvpn_twin_kit::pace`]): every call takes
//! a drawn time, and EC2 refuses calls beyond its token buckets with `RequestLimitExceeded`.

use std::time::{Duration, Instant};

use dxvpn_twin_kit::admin::lock;
use dxvpn_twin_kit::pace::{Admission, BucketSize, Latency};

use crate::Shared;

/// A read (Describe*, Get*, List*). AWS publishes no API latency: this is the project's
/// assumption for a client in the same Region (docs/lab.md, "Pace").
const READ: Latency = Latency {
    low_ms: 100,
    high_ms: 400,
};
/// A write: the call returns once the request is accepted, not when the resource is ready.
const WRITE: Latency = Latency {
    low_ms: 200,
    high_ms: 800,
};

/// EC2's request token buckets, one per API action per account and Region ("Request throttling
/// for the Amazon EC2 API", EC2 developer guide, "Request token bucket sizes and refill rates"):
/// non-mutating actions hold 100 tokens and refill 20 a second, mutating ones 50 and 5.
fn ec2_bucket(mutating: bool) -> BucketSize {
    if mutating {
        BucketSize {
            capacity: 50.0,
            refill_per_second: 5.0,
        }
    } else {
        BucketSize {
            capacity: 100.0,
            refill_per_second: 20.0,
        }
    }
}

/// Which service a call is for: EC2 throttles as documented; the other services' limits are
/// not modelled (their calls only take time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ec2,
    Other,
}

/// Waits out the call's drawn time, or answers how long until EC2 would take it again.
pub(crate) async fn pace(
    state: &Shared,
    service: Service,
    action: &str,
    mutating: bool,
) -> Result<(), Duration> {
    let latency = if mutating { WRITE } else { READ };
    let admission = {
        let mut state = lock(state);
        match service {
            Service::Ec2 => state
                .pace
                .admit(action, ec2_bucket(mutating), latency, Instant::now()),
            Service::Other => Admission::After(state.pace.delay(latency)),
        }
    };
    admission.wait().await
}
