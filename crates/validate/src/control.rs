//! The control-plane checks: what both clouds report about the deployment (tunnels, BGP,
//! route propagation, every planned resource present), read through the deploy crate.

use std::time::Instant;

use std::net::Ipv4Addr;

use dxvpn_deploy::{
    AddressFilters, Change, ChangeKind, Deployer, Status, TunnelBytes, TunnelHealth,
};
use dxvpn_plan::Plan;
use serde::Serialize;

use crate::{CheckResult, Verdict};

/// Both clouds' reports, as read once per validation.
#[derive(Debug, Clone, Serialize)]
pub struct ControlFacts {
    /// Tunnels, BGP and route propagation; an error when a cloud could not be read.
    pub status: Result<Status, String>,
    /// Planned resources missing from the clouds (what `dxvpn up` would create).
    pub missing: Result<Vec<Change>, String>,
    /// Bytes per tunnel over the last [`crate::asymmetry::WINDOW`], as each cloud counts them
    /// (empty when the status or the metrics could not be read).
    pub traffic: Vec<TunnelBytes>,
    /// The packet filters on each probed address of either network (security groups and
    /// network ACL, NSGs), judged when a probe to it fails.
    pub filters: Vec<AddressFilters>,
    /// How long reading took, in ms.
    pub millis: f64,
}

impl ControlFacts {
    /// Reads both clouds: status, the plan's diff and the filters on `addresses`, at once.
    pub async fn read(deployer: &Deployer, plan: &Plan, addresses: &[Ipv4Addr]) -> Self {
        let started = Instant::now();
        // The traffic needs AWS's tunnels (it is read once they are known); the diff needs
        // neither.
        let status_and_traffic = async {
            let (status, traffic) = deployer
                .status_with_traffic(plan, crate::asymmetry::WINDOW)
                .await;
            (status, traffic.tunnels)
        };
        let ((status, traffic), diff, filters) = tokio::join!(
            status_and_traffic,
            deployer.diff(plan),
            deployer.host_filters(plan, addresses)
        );
        // The report holds errors as the words a user reads (it is serialized as is).
        ControlFacts {
            status: status.map_err(|e| e.to_string()),
            missing: diff
                .map(|d| {
                    d.into_iter()
                        .filter(|p| p.change == ChangeKind::Create)
                        .collect()
                })
                .map_err(|e| e.to_string()),
            traffic,
            filters,
            millis: started.elapsed().as_secs_f64() * 1000.0,
        }
    }

    /// The tunnels, when the status could be read.
    pub fn tunnels(&self) -> &[TunnelHealth] {
        self.status.as_ref().map_or(&[], |s| s.tunnels.as_slice())
    }

    /// Route tables that do not propagate the VGW's routes.
    pub fn not_propagating(&self) -> Vec<&str> {
        self.status.as_ref().map_or(Vec::new(), |s| {
            s.route_propagation
                .iter()
                .filter(|p| !p.propagates)
                .map(|p| p.route_table_id.as_str())
                .collect()
        })
    }

    /// The filters read on `address`, when they could be read.
    pub fn filters_on(&self, address: Ipv4Addr) -> Option<&dxvpn_deploy::HostFilters> {
        self.filters
            .iter()
            .find(|f| f.address == address)
            .and_then(|f| f.filters.as_ref().ok())
            .and_then(Option::as_ref)
    }

    /// Missing planned resources (empty when unknown).
    pub fn missing(&self) -> &[Change] {
        self.missing.as_deref().unwrap_or(&[])
    }
}

/// Why a tunnel does not carry traffic, in the words of the layer that fails first; None when
/// it is up.
pub fn tunnel_problem(t: &TunnelHealth) -> Option<String> {
    if t.up {
        return None;
    }
    // AWS reports a tunnel DOWN whenever its BGP is down, and says in its message whether
    // IPsec itself is up.
    let aws_ipsec =
        t.aws_status == "UP" || t.aws_message.to_ascii_uppercase().contains("IPSEC IS UP");
    let aws = if t.aws_message.is_empty() {
        t.aws_status.clone()
    } else {
        format!("{}: {}", t.aws_status, t.aws_message)
    };
    Some(
        if t.aws_status == "MISSING" || t.azure_status == "Missing" {
            format!(
                "not created (AWS {}, Azure {})",
                t.aws_status, t.azure_status
            )
        } else if !aws_ipsec || t.azure_status != "Connected" {
            format!("IPsec down (AWS {aws}, Azure {})", t.azure_status)
        } else if t.aws_status != "UP" || t.bgp_state != "Connected" {
            format!(
                "IPsec up, BGP down (AWS {aws}; Azure's session with {}: {})",
                t.bgp_neighbor, t.bgp_state
            )
        } else {
            format!(
                "BGP up but routes missing (AWS accepted {}, Azure received {})",
                t.aws_accepted_routes, t.bgp_routes_received
            )
        },
    )
}

/// One check per tunnel, per route table and for the plan's resources. A tunnel down while
/// another carries traffic is a warning (redundancy lost); every tunnel down is a failure.
pub fn control_checks(facts: &ControlFacts) -> Vec<CheckResult> {
    let mut checks = Vec::new();
    let control = |kind: &'static str, target: String, verdict, evidence: String| CheckResult {
        kind,
        target,
        verdict,
        millis: facts.millis,
        evidence,
        probe: None,
        outcome: None,
    };
    match &facts.status {
        Err(e) => checks.push(control(
            "status",
            "clouds".into(),
            // The data plane is what validation proves; a VM without cloud credentials can
            // still prove it.
            Verdict::Warn,
            format!("cannot read the clouds' status: {e}"),
        )),
        Ok(status) => {
            let any_up = status.tunnels.iter().any(|t| t.up);
            for t in &status.tunnels {
                let (verdict, evidence) = match tunnel_problem(t) {
                    None => (
                        Verdict::Pass,
                        format!(
                            "AWS UP ({} routes), Azure Connected, BGP Connected ({} routes)",
                            t.aws_accepted_routes, t.bgp_routes_received
                        ),
                    ),
                    Some(why) if any_up => (Verdict::Warn, format!("{why}; redundancy lost")),
                    Some(why) => (Verdict::Fail, why),
                };
                checks.push(control("tunnel", t.key.clone(), verdict, evidence));
            }
            for p in &status.route_propagation {
                checks.push(if p.propagates {
                    control(
                        "propagation",
                        p.route_table_id.clone(),
                        Verdict::Pass,
                        "learns the VPN gateway's routes".into(),
                    )
                } else {
                    control(
                        "propagation",
                        p.route_table_id.clone(),
                        Verdict::Fail,
                        "does not propagate the VPN gateway's routes".into(),
                    )
                });
            }
        }
    }
    // What each tunnel carried, as the evidence behind an asymmetric-routing finding.
    let (cloud, counts) = crate::asymmetry::counted(&facts.traffic);
    let minutes = crate::asymmetry::WINDOW.as_secs() / 60;
    for (key, bytes_in, bytes_out) in counts {
        checks.push(control(
            "traffic",
            key.to_owned(),
            Verdict::Pass,
            format!(
                "{} counted {:.2} MB in, {:.2} MB out over {minutes} min",
                cloud.to_uppercase(),
                bytes_in / 1e6,
                bytes_out / 1e6
            ),
        ));
    }
    for f in &facts.filters {
        if let Err(e) = &f.filters {
            checks.push(control(
                "filters",
                f.address.to_string(),
                Verdict::Warn,
                format!("cannot read the security groups, network ACL or NSGs on it: {e}"),
            ));
        }
    }
    match &facts.missing {
        Err(e) => checks.push(control(
            "resources",
            "plan".into(),
            Verdict::Warn,
            format!("cannot compare the clouds with the plan: {e}"),
        )),
        Ok(missing) if missing.is_empty() => checks.push(control(
            "resources",
            "plan".into(),
            Verdict::Pass,
            "every planned resource exists".into(),
        )),
        Ok(missing) => checks.push(control(
            "resources",
            "plan".into(),
            Verdict::Fail,
            format!(
                "missing: {}",
                missing
                    .iter()
                    .map(|p| p.role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
    checks
}
