//! What the lab reads of the EC2 inventory (tunnels with keys, in memory only) and writes back
//! (telemetry from the daemons), and the tamper test hook.

use dxvpn_twin_kit::faults::Tamper;
use dxvpn_twin_kit::views::AwsView;

use super::*;
use crate::cloudwatch::TunnelSample;

impl Ec2 {
    /// The tunnels as AWS holds them, keys included, for the lab's data plane (in memory only).
    pub(crate) fn lab_view(&self) -> AwsView {
        use dxvpn_twin_kit::views::{AwsTunnelParams, AwsVpnView};
        let Some(vpc) = self.vpcs.first() else {
            return AwsView::default();
        };
        let attached: Vec<&Vgw> = self
            .vgws
            .iter()
            .filter(|g| {
                g.life.live()
                    && g.attachments
                        .iter()
                        .any(|a| a.vpc_id == vpc.id && a.state() == "attached")
            })
            .collect();
        let vpns = self
            .vpns
            .iter()
            .filter(|v| v.life.state() == "available")
            .filter_map(|v| {
                let vgw = attached.iter().find(|g| g.id == v.vgw_id)?;
                let cgw = self.cgws.iter().find(|c| c.id == v.cgw_id)?;
                Some(AwsVpnView {
                    id: v.id.clone(),
                    index: v
                        .tags
                        .get("dxvpn:role")
                        .and_then(|r| r.strip_prefix("aws.vpn_connection."))
                        .and_then(|n| n.parse().ok()),
                    vgw_asn: vgw.asn,
                    customer_gateway: (cgw.ip, cgw.asn),
                    // The tunnel a modification is replacing has no endpoint until it ends.
                    tunnels: v
                        .tunnels
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| v.modifying_tunnel() != Some(t.outside_ip))
                        .map(|(n, t)| AwsTunnelParams {
                            number: n + 1,
                            outside_ip: t.outside_ip,
                            inside_cidr: t.inside_cidr,
                            psk: t.psk.clone(),
                        })
                        .collect(),
                })
            })
            .collect();
        let host_rtb = self.route_tables.first();
        AwsView {
            vpc_cidr: Some(vpc.cidr),
            host_subnet: self.subnets.first().map(|s| s.cidr),
            host_route_propagation: host_rtb.is_some_and(|r| {
                r.propagating_vgws
                    .iter()
                    .any(|g| attached.iter().any(|a| a.id == *g))
            }),
            vpns,
            instances: self.running_instances(&vpc.id),
            host_filter: self.host_filter(),
        }
    }

    fn running_instances(&self, vpc_id: &str) -> Vec<dxvpn_twin_kit::views::VmView> {
        self.instances
            .iter()
            .filter(|i| i.vpc_id == vpc_id && i.state().1 == "running")
            .map(|i| dxvpn_twin_kit::views::VmView {
                id: i.id.clone(),
                private_ip: i.private_ip,
                user_data: i.user_data.clone(),
            })
            .collect()
    }

    /// Replaces every tunnel's telemetry; tunnels not named read DOWN.
    pub(crate) fn set_telemetry(&mut self, reports: &BTreeMap<Ipv4Addr, TunnelTelemetry>) {
        for t in self.vpns.iter_mut().flat_map(|v| v.tunnels.iter_mut()) {
            t.telemetry = reports.get(&t.outside_ip).copied().unwrap_or_default();
        }
    }

    /// Test hook: AWS now holds another key for this tunnel (or another customer gateway ASN
    /// for its connection), as if someone changed it behind dxvpn's back. False when no live
    /// tunnel has that outside address.
    pub(crate) fn tamper(&mut self, tamper: &Tamper) -> bool {
        let ip = tamper.outside_ip();
        let Some(vpn) = self
            .vpns
            .iter_mut()
            .find(|v| v.life.live() && v.tunnels.iter().any(|t| t.outside_ip == ip))
        else {
            return false;
        };
        match tamper {
            Tamper::Psk { .. } => {
                for t in vpn.tunnels.iter_mut().filter(|t| t.outside_ip == ip) {
                    t.psk = PresharedKey::generate();
                }
            }
            Tamper::PeerAsn { asn, .. } => {
                let cgw_id = vpn.cgw_id.clone();
                for c in self.cgws.iter_mut().filter(|c| c.id == cgw_id) {
                    c.asn = *asn;
                }
            }
        }
        true
    }
}

impl Ec2 {
    /// Each live VPN connection's tunnels as AWS/VPN publishes them: `TunnelState` ("For
    /// static VPNs, 0 indicates DOWN and 1 indicates UP. For BGP VPNs, 1 indicates ESTABLISHED
    /// and 0 is used for all other states", Site-to-Site VPN user guide, "Monitoring with
    /// CloudWatch") and the byte counters behind `TunnelDataIn`/`TunnelDataOut`.
    pub(crate) fn tunnel_states(&self) -> Vec<TunnelSample> {
        self.vpns
            .iter()
            .filter(|v| v.life.live())
            .flat_map(|v| {
                v.tunnels.iter().map(move |t| {
                    let up = t.telemetry.ipsec_up && (v.static_routes_only || t.telemetry.bgp_up);
                    TunnelSample {
                        vpn_id: v.id.clone(),
                        outside_ip: t.outside_ip,
                        state: f64::from(u8::from(up)),
                        bytes_in: t.telemetry.bytes_in,
                        bytes_out: t.telemetry.bytes_out,
                    }
                })
            })
            .collect()
    }
}
