//! What AWS reports about a deployment's tunnels and route propagation (`dxvpn status`).

use dxvpn_plan::Plan;
use serde::Serialize;

use crate::lookup::{filter, of_deployment};
use crate::tunnels::pair;
use crate::{Aws, AwsError, api};

/// One tunnel as AWS reports it (`vgwTelemetry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsTunnelState {
    /// The VPN connection's role, e.g. `aws.vpn_connection.0`.
    pub connection_role: String,
    /// The VPN connection's id, `vpn-...`.
    pub connection_id: String,
    /// Tunnel index in that connection, 0 or 1.
    pub tunnel: usize,
    /// The tunnel's outside address.
    pub outside_ip: String,
    /// `UP` or `DOWN`.
    pub status: String,
    /// AWS's message, e.g. `IPSEC IS DOWN` or `2 BGP ROUTES`.
    pub message: String,
    /// Routes the VGW accepted over the tunnel.
    pub accepted_routes: i32,
}

/// Whether a route table learns the VGW's routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropagationState {
    /// `rtb-...`.
    pub route_table_id: String,
    /// The VGW is among its propagating gateways.
    pub propagates: bool,
}

impl Aws {
    /// Every tunnel of this deployment's VPN connections, in connection then tunnel order.
    pub async fn tunnel_states(&self, plan: &Plan) -> Result<Vec<AwsTunnelState>, AwsError> {
        let out = self
            .ec2
            .describe_vpn_connections()
            .filters(of_deployment(plan))
            // A connection whose tunnel is being modified still carries the other one.
            .filters(filter("state", &["available", "modifying"]))
            .send()
            .await
            .map_err(api("aws.vpn_connection", "DescribeVpnConnections"))?;
        let mut states = Vec::new();
        for vpn in out.vpn_connections() {
            let role = crate::lookup::tag_value(vpn.tags(), "dxvpn:role")
                .unwrap_or_default()
                .to_owned();
            // One the plan no longer has is `diff`'s to report (a delete), not a tunnel of it.
            if plan.resource(&role).is_none() {
                continue;
            }
            let options = vpn
                .options()
                .map(|o| o.tunnel_options())
                .unwrap_or_default();
            let pairs = pair(plan, &role, vpn, &crate::Outputs::default())?;
            for telemetry in vpn.vgw_telemetry() {
                let ip = telemetry.outside_ip_address().unwrap_or_default();
                // Telemetry names its tunnel by outside address; the options with that address
                // are paired with the plan's tunnels.
                let Some(tunnel) = options
                    .iter()
                    .position(|t| t.outside_ip_address() == Some(ip))
                    .and_then(|i| pairs.get(i).copied())
                else {
                    continue;
                };
                states.push(AwsTunnelState {
                    connection_role: role.clone(),
                    connection_id: vpn.vpn_connection_id().unwrap_or_default().to_owned(),
                    tunnel,
                    outside_ip: ip.to_owned(),
                    status: telemetry
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    message: telemetry.status_message().unwrap_or_default().to_owned(),
                    accepted_routes: telemetry.accepted_route_count().unwrap_or(0),
                });
            }
        }
        states.sort_by(|a, b| (&a.connection_role, a.tunnel).cmp(&(&b.connection_role, b.tunnel)));
        Ok(states)
    }

    /// For each route table of the plan, whether it propagates this deployment's VGW.
    pub async fn propagation_states(&self, plan: &Plan) -> Result<Vec<PropagationState>, AwsError> {
        if plan.aws.route_table_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The gateway and the tables at once: neither read needs the other.
        let (vgw, out) = tokio::join!(
            self.find_vgw(plan, "aws.vpn_gateway"),
            self.ec2
                .describe_route_tables()
                .set_route_table_ids(Some(plan.aws.route_table_ids.clone()))
                .send(),
        );
        let vgw = vgw?;
        let out = out.map_err(api("aws.route_propagation", "DescribeRouteTables"))?;
        Ok(plan
            .aws
            .route_table_ids
            .iter()
            .map(|id| PropagationState {
                route_table_id: id.clone(),
                propagates: out
                    .route_tables()
                    .iter()
                    .filter(|t| t.route_table_id() == Some(id.as_str()))
                    .flat_map(|t| t.propagating_vgws())
                    .any(|p| p.gateway_id().is_some() && p.gateway_id() == vgw.as_deref()),
            })
            .collect())
    }
}
