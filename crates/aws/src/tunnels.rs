//! A VPN connection's tunnels as AWS answers them, paired with the planned ones.

use dxvpn_plan::Plan;
use dxvpn_tunnel::psk::PresharedKey;

use crate::{Aws, AwsError, Outputs, api};

/// Which of `role`'s planned tunnels (its index, 0 or 1) an answered tunnel is, found by its
/// inside CIDR. AWS does not promise the order of a connection's tunnels, so their position
/// says nothing (terraform-provider-aws #19079; the provider pairs on the inside CIDR since
/// PR #19077).
pub(crate) fn planned_tunnel(
    plan: &Plan,
    role: &str,
    vpn_id: &str,
    inside_cidr: Option<&str>,
) -> Result<usize, AwsError> {
    let planned: Vec<_> = plan
        .tunnels
        .iter()
        .filter(|t| format!("aws.vpn_connection.{}", t.pairing.aws_connection) == role)
        .collect();
    let answered = inside_cidr.unwrap_or("none");
    planned
        .iter()
        .find(|t| t.pairing.inside_cidr.to_string() == answered)
        .map(|t| t.pairing.aws_tunnel)
        .ok_or_else(|| AwsError::TunnelMismatch {
            role: role.to_owned(),
            vpn_id: vpn_id.to_owned(),
            answered: answered.to_owned(),
            planned: planned
                .iter()
                .map(|t| t.pairing.inside_cidr.to_string())
                .collect::<Vec<_>>()
                .join(" and "),
        })
}

impl Aws {
    /// Finds `role`'s VPN connection by tags and records its id, tunnel addresses and keys,
    /// each under the planned tunnel it is; `false` when it does not exist.
    pub(crate) async fn observe_vpn(
        &self,
        plan: &Plan,
        role: &str,
        outputs: &mut Outputs,
    ) -> Result<bool, AwsError> {
        let out = self
            .ec2
            .describe_vpn_connections()
            .set_filters(Some(Self::live_by_tags(plan, role)))
            .send()
            .await
            .map_err(api(role, "DescribeVpnConnections"))?;
        let Some(vpn) = out.vpn_connections().first() else {
            return Ok(false);
        };
        let vpn_id = vpn.vpn_connection_id().unwrap_or_default();
        outputs.set(role, "id", vpn_id);
        let tunnels = vpn
            .options()
            .map(|o| o.tunnel_options())
            .unwrap_or_default();
        for t in tunnels {
            let i = planned_tunnel(plan, role, vpn_id, t.tunnel_inside_cidr())?;
            if let Some(ip) = t.outside_ip_address().filter(|ip| *ip != "0.0.0.0") {
                outputs.set(
                    role,
                    if i == 0 {
                        "tunnel1_outside_ip"
                    } else {
                        "tunnel2_outside_ip"
                    },
                    ip,
                );
            }
            if let Some(key) = t.pre_shared_key().and_then(|k| PresharedKey::parse(k).ok()) {
                outputs.set_key(role, i, key);
            }
        }
        Ok(true)
    }
}
