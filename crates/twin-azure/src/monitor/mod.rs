//! Azure Monitor (Microsoft.Insights) for what dxvpn reads of a VPN gateway: its tunnels'
//! traffic. The data plane's byte counters become `TunnelIngressBytes`/`TunnelEgressBytes`,
//! split by connection ("Monitoring Azure VPN Gateway data reference": bytes in and out of a
//! tunnel, aggregation Total, dimension ConnectionName). `metrics` serves the metrics list,
//! `alerts` the metric alert rules.

mod alerts;
mod metrics;

use std::collections::BTreeMap;
use std::time::SystemTime;

use dxvpn_twin_kit::counters::Increments;

pub(crate) use alerts::{MetricAlerts, alerts_path};
pub(crate) use metrics::{is_metrics_path, list_metrics};

/// The traffic per connection, as Azure Monitor keeps it.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    /// Connection name (lower case) -> (ingress, egress) increments.
    traffic: BTreeMap<String, (Increments, Increments)>,
}

impl Monitor {
    /// Records each connection's counters (name in lower case -> (ingress, egress)) now.
    pub(crate) fn record(&mut self, bytes: &BTreeMap<String, (u64, u64)>, now: SystemTime) {
        for (name, (ingress, egress)) in bytes {
            let (i, e) = self.traffic.entry(name.clone()).or_default();
            i.record(now, *ingress);
            e.record(now, *egress);
        }
    }
}
