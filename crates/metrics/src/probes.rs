//! RTT and loss from where the exporter runs (an instance in a cloud, or a lab host) to the
//! plan's validate targets: `dxvpn validate`'s own ICMP probes (surge-ping), once per reading,
//! while both clouds are read. Where they run is the caller's: this process, or a thread in a
//! lab host's namespace.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dxvpn_validate::CheckResult;
use dxvpn_validate::probe::{Outcome, Probe, ProbeOptions, run_probes};

/// Runs probes where they must start; an error says why they could not run there.
pub type Prober = Arc<
    dyn Fn(Vec<Probe>) -> Pin<Box<dyn Future<Output = Result<Vec<CheckResult>, String>> + Send>>
        + Send
        + Sync,
>;

/// A prober that runs the probes in this process, with validate's default options.
pub fn here() -> Prober {
    Arc::new(|probes| {
        Box::pin(async move { Ok(run_probes(&probes, &ProbeOptions::default()).await) })
    })
}

/// What the exporter pings, from where, and how.
#[derive(Clone)]
pub struct Probing {
    /// Where the pings start (`aws`, `azure`, `here`): a label of every probe series.
    pub from: String,
    /// The ping probes.
    pub probes: Vec<Probe>,
    /// Runs them.
    pub prober: Prober,
}

impl std::fmt::Debug for Probing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probing")
            .field("from", &self.from)
            .field("probes", &self.probes.len())
            .finish_non_exhaustive()
    }
}

/// One target's pings in one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReading {
    /// The address pinged.
    pub target: String,
    /// Where from.
    pub from: String,
    /// Echo requests sent.
    pub sent: u16,
    /// Replies received.
    pub received: u16,
    /// The replies' average round trip, in seconds (None without replies).
    pub rtt_seconds: Option<f64>,
}

impl Probing {
    /// Pings every target once; a target whose pings could not be sent (no ICMP permission)
    /// gives no reading, and a prober that cannot run gives none at all.
    pub async fn read(&self) -> Vec<ProbeReading> {
        let results = match (self.prober)(self.probes.clone()).await {
            Ok(results) => results,
            Err(e) => {
                tracing::warn!(from = %self.from, error = %e, "the probes could not run; no probe series");
                return Vec::new();
            }
        };
        results
            .iter()
            .filter_map(|r| match &r.outcome {
                Some(Outcome::Replies {
                    sent,
                    received,
                    rtt_ms,
                }) => Some(ProbeReading {
                    target: r.target.clone(),
                    from: self.from.clone(),
                    sent: *sent,
                    received: *received,
                    rtt_seconds: rtt_ms.map(|[_, avg, _]| avg / 1000.0),
                }),
                Some(Outcome::NoIcmpPermission { error }) => {
                    tracing::warn!(target = %r.target, %error, "no ICMP socket here; no probe series");
                    None
                }
                // A timeout or an unreachable network: every echo lost.
                Some(_) => Some(ProbeReading {
                    target: r.target.clone(),
                    from: self.from.clone(),
                    sent: 1,
                    received: 0,
                    rtt_seconds: None,
                }),
                None => None,
            })
            .collect()
    }
}
