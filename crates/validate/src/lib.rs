//! dxvpn's validation: does traffic cross between the clouds, and if not, why.
//!
//! This crate owns the checks of `dxvpn validate`. Data-plane probes ([`probe`]) run all at
//! once on tokio: ICMP echo (surge-ping; loss and RTT min/avg/max), DNS lookups
//! (hickory-resolver, against a chosen server, with an expected answer), TCP connects and the
//! path MTU ([`path_mtu`]: the largest packet that crosses with Don't Fragment set, and whether
//! larger ones are refused with "fragmentation needed" or vanish).
//! Control-plane checks ([`control`]) read both clouds' reports through the deploy crate:
//! tunnels UP, BGP connected with routes both ways, route propagation, every planned resource
//! present, whether traffic leaves by one tunnel and returns by another ([`asymmetry`]), and
//! the security groups, network ACL and NSGs on each probed address, which [`filters`] judges
//! for a failed probe. [`diagnose`] joins the two into findings that name the most likely cause and a fix
//! ("route table rtb-... does not propagate it"), and [`Report`] carries it all with a verdict.
//!
//! Where the probes run is the caller's choice: on this machine, or on a thread inside a lab
//! namespace (the sockets are opened where the probe runs).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use dxvpn_validate::probe::{run_probes, Probe, ProbeOptions};
//! use dxvpn_validate::Verdict;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let open = listener.local_addr()?;
//! drop(tokio::net::TcpListener::bind("127.0.0.1:0").await?); // a port nobody listens on
//! let probes = [Probe::Tcp { target: open }];
//! let results = run_probes(&probes, &ProbeOptions::default()).await;
//! assert_eq!(results[0].verdict, Verdict::Pass);
//! assert_eq!(results[0].evidence, "connected");
//! # Ok(()) }
//! ```

pub mod asymmetry;
pub mod control;
pub mod diagnose;
pub mod filters;
pub mod path_mtu;
pub mod probe;
pub mod targets;

use serde::Serialize;

pub use control::{ControlFacts, control_checks};
pub use diagnose::{Finding, diagnose};
pub use probe::{Outcome, Probe, ProbeOptions, run_probes};

/// How a check or a whole validation ended. Ordered: the worst wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// As expected.
    Pass,
    /// Works, degraded (a lost echo, a tunnel down while another carries traffic).
    Warn,
    /// Does not work.
    Fail,
}

impl Verdict {
    /// `pass`, `WARN`, `FAIL`: quiet when fine, loud when not.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// `ping`, `dns`, `tcp`, `path_mtu` (data plane); `tunnel`, `propagation`, `resources`, `status`
    /// (control plane).
    pub kind: &'static str,
    /// What was checked: `10.1.1.10`, `vm1.azure.internal @10.0.0.2`, `c1t1`, `rtb-...`.
    pub target: String,
    /// The verdict.
    pub verdict: Verdict,
    /// How long it took, in ms.
    pub millis: f64,
    /// What was seen, in a few words: `3/3 replies, rtt min/avg/max ...`, `10.1.1.10`.
    pub evidence: String,
    /// The probe (data-plane checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// What the probe saw, as facts (data-plane checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A whole validation: every check, the findings, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The worst of every check and finding.
    pub verdict: Verdict,
    /// Where the data-plane checks ran: `aws`, `azure` or `here`.
    pub from: String,
    /// Data-plane checks, then control-plane checks.
    pub checks: Vec<CheckResult>,
    /// Causes, with fixes; empty when all is well.
    pub findings: Vec<Finding>,
    /// Wall-clock time of the whole validation, in ms.
    pub elapsed_ms: f64,
}

impl Report {
    /// Joins the probes' results and both clouds' reports into checks, findings and a verdict.
    pub fn assemble(
        plan: &dxvpn_plan::Plan,
        from: Option<dxvpn_plan::Cloud>,
        probes: Vec<CheckResult>,
        facts: &ControlFacts,
        elapsed_ms: f64,
    ) -> Self {
        let mut checks = probes;
        checks.extend(control_checks(facts));
        let findings = diagnose(plan, from, &checks, facts);
        let verdict = checks
            .iter()
            .map(|c| c.verdict)
            .chain(findings.iter().map(|f| f.severity))
            .max()
            .unwrap_or(Verdict::Pass);
        Report {
            verdict,
            from: from.map_or("here", dxvpn_plan::Cloud::as_str).to_owned(),
            checks,
            findings,
            elapsed_ms,
        }
    }
}
