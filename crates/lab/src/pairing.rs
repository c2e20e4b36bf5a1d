//! The data plane that follows from what both twins hold for their tunnels.
//!
//! [`topology`] pairs an AWS tunnel with the Azure
//! connection whose local network gateway points at its outside address, as the clouds pair
//! them on the wire, so a disagreement between the two clouds reaches the daemons unchanged.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;
use dxvpn_netlab::{AwsGateway, AwsTunnelView, AzureGateway, AzureTunnelView, LabTunnel, Topology};
use dxvpn_tunnel::psk::PresharedKey;
use dxvpn_twin_kit::views::{AwsView, AwsVpnView, AzureView};

/// The data plane that both views describe, with the Azure connection name of each tunnel, or
/// None when no tunnel is configured on both sides yet.
#[derive(Debug, Clone)]
pub struct Bound {
    /// What to build.
    pub topology: Topology,
    /// Tunnel key -> Azure connection name.
    pub connections: Vec<(String, String)>,
    /// Changes whenever anything the daemons are configured from changes (keys included,
    /// hashed in memory).
    pub fingerprint: u64,
}

/// Pairs the two clouds' tunnels; None while no tunnel exists on both sides.
pub fn topology(aws: &AwsView, azure: &AzureView) -> Option<Bound> {
    let gateway = azure.gateway.as_ref()?;
    let (vpc_cidr, vpc_subnet) = (aws.vpc_cidr?, aws.host_subnet?);
    let (vnet_cidr, vnet_subnet) = (azure.vnet_cidr?, azure.host_subnet?);
    let mut vpns: Vec<&AwsVpnView> = aws.vpns.iter().collect();
    vpns.sort_by_key(|v| (v.index.unwrap_or(usize::MAX), v.id.clone()));
    let mut tunnels = Vec::new();
    let mut connections = Vec::new();
    for (c, vpn) in vpns.iter().enumerate() {
        let Some(instance) = gateway
            .instances
            .iter()
            .position(|i| i.public_ip == vpn.customer_gateway.0)
        else {
            continue;
        };
        let ipconfig = &gateway.instances[instance];
        for params in &vpn.tunnels {
            let Some(conn) = azure
                .connections
                .iter()
                .find(|z| z.peer_outside_ip == params.outside_ip)
            else {
                continue;
            };
            let custom_bgp_ip = conn
                .custom_bgp
                .iter()
                .find(|(id, _)| *id == ipconfig.ip_configuration_id)
                .map(|(_, ip)| *ip)
                .or_else(|| ipconfig.apipa.first().copied());
            let (Some(custom_bgp_ip), Some(peer_bgp_ip)) = (custom_bgp_ip, conn.peer_bgp_ip) else {
                continue;
            };
            // A key the daemons cannot take is a key that cannot match: a fresh one stands in.
            let azure_psk = conn.psk.clone().unwrap_or_else(PresharedKey::generate);
            // The index comes from a tag anyone may write: no value of it may overflow.
            let key = format!(
                "c{}t{}",
                vpn.index.unwrap_or(c).saturating_add(1),
                params.number
            );
            connections.push((key.clone(), conn.name.clone()));
            tunnels.push(LabTunnel {
                key,
                azure_instance: instance,
                aws: AwsTunnelView {
                    outside_ip: params.outside_ip,
                    inside_cidr: params.inside_cidr,
                    psk: params.psk.clone(),
                    customer_gateway_ip: vpn.customer_gateway.0,
                    customer_gateway_asn: vpn.customer_gateway.1,
                },
                azure: AzureTunnelView {
                    custom_bgp_ip,
                    peer_outside_ip: conn.peer_outside_ip,
                    peer_bgp_ip,
                    peer_asn: conn.peer_asn,
                    psk: azure_psk,
                },
            });
        }
    }
    if tunnels.is_empty() {
        return None;
    }
    let vgw_asn = vpns.first().map_or(0, |v| v.vgw_asn);
    let topology = Topology {
        aws: AwsGateway {
            asn: vgw_asn,
            vpc_cidr,
            host_subnet: vpc_subnet,
            host_ip: host_ip(vpc_subnet),
            route_propagation: aws.host_route_propagation,
        },
        azure: AzureGateway {
            asn: gateway.asn,
            vnet_cidr,
            host_subnet: vnet_subnet,
            host_ip: host_ip(vnet_subnet),
            public_ips: gateway.instances.iter().map(|i| i.public_ip).collect(),
        },
        tunnels,
    };
    let fingerprint = fingerprint(&topology);
    Some(Bound {
        topology,
        connections,
        fingerprint,
    })
}

/// The lab's host in a subnet: the tenth address, as in the fixed lab.
pub fn host_ip(subnet: Ipv4Net) -> Ipv4Addr {
    dxvpn_cidr::nth_host(subnet, 10).unwrap_or(subnet.network())
}

/// Everything but route propagation, which the data plane changes in place.
fn fingerprint(t: &Topology) -> u64 {
    let mut h = DefaultHasher::new();
    (t.aws.asn, t.aws.vpc_cidr, t.aws.host_subnet).hash(&mut h);
    (t.azure.asn, t.azure.vnet_cidr, t.azure.host_subnet).hash(&mut h);
    t.azure.public_ips.hash(&mut h);
    for x in &t.tunnels {
        (&x.key, x.azure_instance).hash(&mut h);
        let a = &x.aws;
        (a.outside_ip, a.inside_cidr, a.psk.expose()).hash(&mut h);
        (a.customer_gateway_ip, a.customer_gateway_asn).hash(&mut h);
        let z = &x.azure;
        (
            z.custom_bgp_ip,
            z.peer_outside_ip,
            z.peer_bgp_ip,
            z.peer_asn,
        )
            .hash(&mut h);
        z.psk.expose().hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxvpn_twin_kit::views::{
        AwsTunnelParams, AzureConnectionView, AzureGatewayView, AzureInstanceView,
    };

    /// One AWS connection with one tunnel (at `number` in its connection) and its Azure peer.
    fn one_tunnel(index: usize, number: usize) -> (AwsView, AzureView) {
        let net = |s: &str| s.parse::<Ipv4Net>().expect("a CIDR");
        let aws = AwsView {
            vpc_cidr: Some(net("10.0.0.0/16")),
            host_subnet: Some(net("10.0.1.0/24")),
            host_route_propagation: true,
            instances: Vec::new(),
            host_filter: None,
            vpns: vec![AwsVpnView {
                id: "vpn-1".into(),
                index: Some(index),
                vgw_asn: 64512,
                customer_gateway: (Ipv4Addr::new(203, 0, 113, 10), 65515),
                tunnels: vec![AwsTunnelParams {
                    number,
                    outside_ip: Ipv4Addr::new(198, 51, 100, 1),
                    inside_cidr: net("169.254.21.0/30"),
                    psk: PresharedKey::generate(),
                }],
            }],
        };
        let azure = AzureView {
            vnet_cidr: Some(net("10.1.0.0/16")),
            host_subnet: Some(net("10.1.1.0/24")),
            gateway: Some(AzureGatewayView {
                asn: 65515,
                instances: vec![AzureInstanceView {
                    ip_configuration_id: "ipconfig1".into(),
                    public_ip: Ipv4Addr::new(203, 0, 113, 10),
                    apipa: vec![Ipv4Addr::new(169, 254, 21, 2)],
                }],
            }),
            connections: vec![AzureConnectionView {
                name: "c1".into(),
                peer_outside_ip: Ipv4Addr::new(198, 51, 100, 1),
                peer_bgp_ip: Some(Ipv4Addr::new(169, 254, 21, 1)),
                peer_asn: 64512,
                psk: None,
                custom_bgp: Vec::new(),
            }],
            vms: Vec::new(),
            host_filter: None,
        };
        (aws, azure)
    }

    /// A `dxvpn:role` tag of `aws.vpn_connection.18446744073709551615` (usize::MAX) is a name,
    /// not a reason to panic: the pairing overflowed adding one to it.
    #[test]
    fn an_index_at_the_top_of_its_range_pairs_without_overflow() {
        let (aws, azure) = one_tunnel(usize::MAX, 1);
        let bound = topology(&aws, &azure).expect("one tunnel on both sides");
        assert_eq!(bound.connections.len(), 1);
        assert!(bound.connections[0].0.starts_with("c18446744073709551615"));
    }

    /// While AWS modifies tunnel 1 only tunnel 2 is in the view: it must keep its name, or
    /// the lab takes it for tunnel 1 with new keys and rebuilds everything.
    #[test]
    fn the_tunnel_left_while_the_other_is_modified_keeps_its_name() {
        let (aws, azure) = one_tunnel(0, 2);
        let bound = topology(&aws, &azure).expect("one tunnel on both sides");
        assert_eq!(bound.topology.tunnels[0].key, "c1t2");
    }
}
