//! ModifyVpnTunnelOptions: one tunnel of a VPN connection changed in place (inside CIDR, key,
//! proposals, DPD, startup action). The connection keeps its id and both outside addresses; the
//! modified tunnel's endpoint is replaced, so that tunnel is down while the connection answers
//! `modifying`, and the other tunnel carries on.
//!
//! Sources: the EC2 API reference for ModifyVpnTunnelOptions (VpnConnectionId,
//! VpnTunnelOutsideIpAddress, TunnelOptions as a ModifyVpnTunnelOptionsSpecification, the answer
//! a VpnConnection); terraform-provider-aws `waitVPNConnectionUpdated` (pending `modifying`,
//! target `available`) and its one-tunnel-at-a-time `modifyVPNTunnelOptions`; the AWS
//! Site-to-Site VPN user guide ("Modify Site-to-Site VPN tunnel options": the tunnel is
//! unavailable for a few minutes while its endpoint is replaced).

use super::vpn_connection::{apply_options, parse_inside_cidr, parse_key, write_vpn};
use super::*;

impl Ec2 {
    pub(super) fn modify_vpn_tunnel_options(&mut self, p: &Params) -> Result<Xml, Ec2Error> {
        let id = p.get("VpnConnectionId").unwrap_or_default().to_owned();
        let outside: Ipv4Addr = p
            .get("VpnTunnelOutsideIpAddress")
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| {
                err(
                    "MissingParameter",
                    "The request must contain the parameter VpnTunnelOutsideIpAddress",
                )
            })?;
        let options = p.under("TunnelOptions");
        let index = self
            .vpns
            .iter()
            .position(|v| v.id == id && v.life.propagated() && v.life.live())
            .ok_or_else(|| {
                err(
                    "InvalidVpnConnectionID.NotFound",
                    format!("The vpnConnection ID '{id}' does not exist"),
                )
            })?;
        let vpn = &self.vpns[index];
        // EC2's common client error for a resource in the wrong state ("API error codes",
        // IncorrectState): a connection takes one modification at a time, and none before it is
        // available.
        let state = vpn.shown_state();
        if state != "available" {
            return Err(err(
                "IncorrectState",
                format!(
                    "The VPN connection {id} is {state}; modify its tunnels when it is available"
                ),
            ));
        }
        let Some(tunnel) = vpn.tunnels.iter().position(|t| t.outside_ip == outside) else {
            return Err(err(
                "InvalidParameterValue",
                format!("The VPN connection {id} has no tunnel with outside IP address {outside}"),
            ));
        };
        let mut changed = vpn.tunnels[tunnel].clone();
        if let Some(text) = options.get("TunnelInsideCidr") {
            let cidr = parse_inside_cidr(text)?;
            // Inside CIDRs are unique per virtual private gateway, as on create.
            let in_use = self.vpns.iter().any(|v| {
                v.life.live()
                    && v.vgw_id == vpn.vgw_id
                    && v.tunnels
                        .iter()
                        .any(|t| t.inside_cidr == cidr && !(v.id == id && t.outside_ip == outside))
            });
            if in_use {
                return Err(err(
                    "InvalidCidr.InUse",
                    format!(
                        "The tunnel inside CIDR {cidr} is already in use on the virtual private gateway {}",
                        vpn.vgw_id
                    ),
                ));
            }
            changed.inside_cidr = cidr;
        }
        if let Some(text) = options.get("PreSharedKey") {
            changed.psk = parse_key(text, tunnel)?;
        }
        apply_options(&mut changed, &options);
        // SkipTunnelReplacement applies only to changes AWS can make without replacing the
        // endpoint; dxvpn changes what needs the replacement, so it is always replaced here.
        changed.telemetry = TunnelTelemetry::default();
        let until = Instant::now() + self.scaled(VPN_TUNNEL_MODIFY);
        let vpn = &mut self.vpns[index];
        vpn.tunnels[tunnel] = changed;
        vpn.modifying = Some(Modifying {
            outside_ip: outside,
            until,
        });
        let vpn = vpn.clone();
        let cgw = self.cgws.iter().find(|c| c.id == vpn.cgw_id);
        let vgw_asn = self
            .vgws
            .iter()
            .find(|g| g.id == vpn.vgw_id)
            .map_or(0, |g| g.asn);
        let ends = (
            cgw.map_or(Ipv4Addr::UNSPECIFIED, |c| c.ip),
            cgw.map_or(0, |c| c.asn),
            vgw_asn,
        );
        let mut x = Xml::new();
        x.element("vpnConnection", |x| write_vpn(x, &vpn, ends, self.seed));
        Ok(x)
    }
}
