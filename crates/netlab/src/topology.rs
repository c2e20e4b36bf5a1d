//! What the lab builds: both gateways, their tunnels, and each cloud's own view of each tunnel.
//!
//! AWS and Azure are configured separately, so each keeps its own copy of a tunnel's pre-shared
//! key, inside addresses and peer ASN. The lab configures each side's daemons from that side's
//! view only: when dxvpn writes a mismatch into one cloud, the tunnel or its BGP session stays
//! down, as it would in the clouds.

use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;
use dxvpn_cidr::inside::{aws_inside_ip, azure_inside_ip};
use dxvpn_tunnel::psk::PresharedKey;
use dxvpn_tunnel::{UseCase, pair_tunnels};
use serde::{Deserialize, Serialize};

use crate::NetlabError;

/// The lab's stand-in for the internet: AWS tunnel outside addresses and Azure public IPs.
pub const LAB_INTERNET: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15);

/// The whole data plane.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The AWS virtual private gateway and the VPC behind it.
    pub aws: AwsGateway,
    /// The Azure VPN gateway and the VNet behind it.
    pub azure: AzureGateway,
    /// Every tunnel, AWS connection 1 tunnel 1 first.
    pub tunnels: Vec<LabTunnel>,
}

/// AWS side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwsGateway {
    /// Amazon-side ASN of the VGW.
    pub asn: u32,
    /// The VPC range the VGW advertises.
    pub vpc_cidr: Ipv4Net,
    /// Subnet of the VPC host.
    pub host_subnet: Ipv4Net,
    /// The VPC host, the source of cross-cloud pings.
    pub host_ip: Ipv4Addr,
    /// Whether the host's route table learns the VGW's routes (AWS route propagation).
    pub route_propagation: bool,
}

/// Azure side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AzureGateway {
    /// Gateway ASN.
    pub asn: u32,
    /// The VNet range the gateway advertises.
    pub vnet_cidr: Ipv4Net,
    /// Subnet of the VNet host.
    pub host_subnet: Ipv4Net,
    /// The VNet host.
    pub host_ip: Ipv4Addr,
    /// One public IP per gateway instance.
    pub public_ips: Vec<Ipv4Addr>,
}

/// One tunnel, as each cloud has it configured.
#[derive(Debug, Clone)]
pub struct LabTunnel {
    /// `c1t1`, ...
    pub key: String,
    /// Azure instance that terminates the tunnel.
    pub azure_instance: usize,
    /// What AWS has: the VPN connection's tunnel options and its customer gateway.
    pub aws: AwsTunnelView,
    /// What Azure has: the connection and its local network gateway.
    pub azure: AzureTunnelView,
}

/// AWS's view of a tunnel.
#[derive(Debug, Clone)]
pub struct AwsTunnelView {
    /// The tunnel's outside address (AWS allocates it).
    pub outside_ip: Ipv4Addr,
    /// `TunnelInsideCidr`: AWS takes the first host, expects the peer on the second.
    pub inside_cidr: Ipv4Net,
    /// `PreSharedKey`.
    pub psk: PresharedKey,
    /// The customer gateway's public IP (the Azure instance's).
    pub customer_gateway_ip: Ipv4Addr,
    /// The customer gateway's ASN.
    pub customer_gateway_asn: u32,
}

/// Azure's view of a tunnel.
#[derive(Debug, Clone)]
pub struct AzureTunnelView {
    /// `gatewayCustomBgpIpAddresses` of the connection: the gateway's APIPA address.
    pub custom_bgp_ip: Ipv4Addr,
    /// Local network gateway `gatewayIpAddress`: the AWS tunnel's outside address.
    pub peer_outside_ip: Ipv4Addr,
    /// Local network gateway `bgpSettings.bgpPeeringAddress`.
    pub peer_bgp_ip: Ipv4Addr,
    /// Local network gateway `bgpSettings.asn`.
    pub peer_asn: u32,
    /// Connection `sharedKey`.
    pub psk: PresharedKey,
}

impl Topology {
    /// A consistent topology for `use_case`: Microsoft's tunnel table, one fresh key per tunnel
    /// (the same on both sides), AWS ASN 64512, Azure ASN 65000, VPC 10.1.0.0/16, VNet 10.51.0.0/16.
    pub fn for_use_case(use_case: UseCase) -> Self {
        let pairs = pair_tunnels(use_case, &[]).unwrap_or_default();
        let public_ips: Vec<Ipv4Addr> = (0..use_case.azure_instances())
            .map(|i| Ipv4Addr::new(198, 18, 2, i as u8 + 1))
            .collect();
        let (aws_asn, azure_asn) = (64512, 65000);
        let tunnels = pairs
            .iter()
            .map(|p| {
                let outside_ip = Ipv4Addr::new(
                    198,
                    18,
                    1,
                    (10 * (p.aws_connection + 1) + p.aws_tunnel + 1) as u8,
                );
                let psk = PresharedKey::generate();
                let pip = public_ips[p.azure_instance];
                LabTunnel {
                    key: p.key(),
                    azure_instance: p.azure_instance,
                    aws: AwsTunnelView {
                        outside_ip,
                        inside_cidr: p.inside_cidr,
                        psk: psk.clone(),
                        customer_gateway_ip: pip,
                        customer_gateway_asn: azure_asn,
                    },
                    azure: AzureTunnelView {
                        custom_bgp_ip: p.azure_inside_ip,
                        peer_outside_ip: outside_ip,
                        peer_bgp_ip: p.aws_inside_ip,
                        peer_asn: aws_asn,
                        psk,
                    },
                }
            })
            .collect();
        Topology {
            aws: AwsGateway {
                asn: aws_asn,
                vpc_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 0, 0), 16),
                host_subnet: Ipv4Net::new_assert(Ipv4Addr::new(10, 1, 1, 0), 24),
                host_ip: Ipv4Addr::new(10, 1, 1, 10),
                route_propagation: true,
            },
            azure: AzureGateway {
                asn: azure_asn,
                vnet_cidr: Ipv4Net::new_assert(Ipv4Addr::new(10, 51, 0, 0), 16),
                host_subnet: Ipv4Net::new_assert(Ipv4Addr::new(10, 51, 1, 0), 24),
                host_ip: Ipv4Addr::new(10, 51, 1, 10),
                public_ips,
            },
            tunnels,
        }
    }

    /// Number of Azure gateway instances.
    pub fn azure_instances(&self) -> usize {
        self.azure.public_ips.len()
    }

    /// The tunnel with key `key`.
    pub fn tunnel_mut(&mut self, key: &str) -> Option<&mut LabTunnel> {
        self.tunnels.iter_mut().find(|t| t.key == key)
    }

    /// Reads a topology file (TOML). Keys are optional per tunnel and generated when absent.
    pub fn from_toml(text: &str) -> Result<Self, NetlabError> {
        let file: TopologyFile =
            toml::from_str(text).map_err(|e| NetlabError::Topology(e.message().to_owned()))?;
        let mut topology = Topology::for_use_case(file.use_case);
        topology.aws.route_propagation = file.route_propagation.unwrap_or(true);
        if let Some(asn) = file.aws_asn {
            topology.aws.asn = asn;
            topology
                .tunnels
                .iter_mut()
                .for_each(|t| t.azure.peer_asn = asn);
        }
        if let Some(asn) = file.azure_asn {
            topology.azure.asn = asn;
            topology
                .tunnels
                .iter_mut()
                .for_each(|t| t.aws.customer_gateway_asn = asn);
        }
        for (i, given) in file.tunnels.iter().enumerate() {
            let Some(tunnel) = topology.tunnels.get_mut(i) else {
                return Err(NetlabError::Topology(format!(
                    "tunnels[{i}]: {} has {} tunnels",
                    file.use_case.as_str(),
                    i
                )));
            };
            if let Some(cidr) = given.inside_cidr {
                tunnel.aws.inside_cidr = cidr;
                tunnel.azure.custom_bgp_ip = azure_inside_ip(cidr);
                tunnel.azure.peer_bgp_ip = aws_inside_ip(cidr);
            }
            if let Some(key) = &given.psk {
                let psk = PresharedKey::parse(key)
                    .map_err(|e| NetlabError::Topology(format!("tunnels[{i}].psk: {e}")))?;
                tunnel.aws.psk = psk.clone();
                tunnel.azure.psk = psk;
            }
        }
        Ok(topology)
    }
}

/// A topology without its keys, kept in the run directory so that `dxvpn lab status` and
/// `down` can reattach to a running lab.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TopologyRecord {
    aws: AwsGateway,
    azure: AzureGateway,
    tunnels: Vec<TunnelRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TunnelRecord {
    key: String,
    azure_instance: usize,
    aws_outside_ip: Ipv4Addr,
    aws_inside_cidr: Ipv4Net,
    customer_gateway_ip: Ipv4Addr,
    customer_gateway_asn: u32,
    azure_custom_bgp_ip: Ipv4Addr,
    azure_peer_outside_ip: Ipv4Addr,
    azure_peer_bgp_ip: Ipv4Addr,
    azure_peer_asn: u32,
}

impl TopologyRecord {
    pub(crate) fn of(t: &Topology) -> Self {
        TopologyRecord {
            aws: t.aws.clone(),
            azure: t.azure.clone(),
            tunnels: t
                .tunnels
                .iter()
                .map(|x| TunnelRecord {
                    key: x.key.clone(),
                    azure_instance: x.azure_instance,
                    aws_outside_ip: x.aws.outside_ip,
                    aws_inside_cidr: x.aws.inside_cidr,
                    customer_gateway_ip: x.aws.customer_gateway_ip,
                    customer_gateway_asn: x.aws.customer_gateway_asn,
                    azure_custom_bgp_ip: x.azure.custom_bgp_ip,
                    azure_peer_outside_ip: x.azure.peer_outside_ip,
                    azure_peer_bgp_ip: x.azure.peer_bgp_ip,
                    azure_peer_asn: x.azure.peer_asn,
                })
                .collect(),
        }
    }

    /// Back to a topology; the keys are stand-ins (the daemons hold the real ones).
    pub(crate) fn into_topology(self) -> Topology {
        let tunnels = self
            .tunnels
            .into_iter()
            .map(|x| {
                let placeholder = PresharedKey::generate();
                LabTunnel {
                    key: x.key,
                    azure_instance: x.azure_instance,
                    aws: AwsTunnelView {
                        outside_ip: x.aws_outside_ip,
                        inside_cidr: x.aws_inside_cidr,
                        psk: placeholder.clone(),
                        customer_gateway_ip: x.customer_gateway_ip,
                        customer_gateway_asn: x.customer_gateway_asn,
                    },
                    azure: AzureTunnelView {
                        custom_bgp_ip: x.azure_custom_bgp_ip,
                        peer_outside_ip: x.azure_peer_outside_ip,
                        peer_bgp_ip: x.azure_peer_bgp_ip,
                        peer_asn: x.azure_peer_asn,
                        psk: placeholder,
                    },
                }
            })
            .collect();
        Topology {
            aws: self.aws,
            azure: self.azure,
            tunnels,
        }
    }
}

/// The topology file: a use case and optional overrides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFile {
    use_case: UseCase,
    #[serde(default)]
    aws_asn: Option<u32>,
    #[serde(default)]
    azure_asn: Option<u32>,
    #[serde(default)]
    route_propagation: Option<bool>,
    #[serde(default)]
    tunnels: Vec<TunnelFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelFile {
    #[serde(default)]
    inside_cidr: Option<Ipv4Net>,
    #[serde(default)]
    psk: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_topologies_are_consistent_on_both_sides() {
        for use_case in [UseCase::Development, UseCase::HighAvailability] {
            let t = Topology::for_use_case(use_case);
            assert_eq!(t.tunnels.len(), use_case.tunnel_count());
            for tunnel in &t.tunnels {
                assert_eq!(tunnel.aws.psk, tunnel.azure.psk);
                assert_eq!(tunnel.azure.peer_outside_ip, tunnel.aws.outside_ip);
                assert_eq!(
                    tunnel.azure.peer_bgp_ip,
                    aws_inside_ip(tunnel.aws.inside_cidr)
                );
                assert_eq!(
                    tunnel.azure.custom_bgp_ip,
                    azure_inside_ip(tunnel.aws.inside_cidr)
                );
                assert_eq!(
                    tunnel.aws.customer_gateway_ip,
                    t.azure.public_ips[tunnel.azure_instance]
                );
                assert!(LAB_INTERNET.contains(&tunnel.aws.outside_ip));
            }
        }
    }

    #[test]
    fn topology_file_overrides_and_rejects_bad_keys() {
        let t = Topology::from_toml("use_case = \"high_availability\"\nazure_asn = 65010\n[[tunnels]]\npsk = \"Lab.Key_0001\"\n").unwrap();
        assert_eq!(t.tunnels[0].aws.psk.expose(), "Lab.Key_0001");
        assert_eq!(t.tunnels[3].aws.customer_gateway_asn, 65010);
        assert!(
            Topology::from_toml(
                "use_case = \"development\"\n[[tunnels]]\npsk = \"bad+key+here\"\n"
            )
            .is_err()
        );
    }
}
