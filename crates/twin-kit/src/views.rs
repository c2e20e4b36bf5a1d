//! What each twin publishes of its state, in memory only (never serialized, keys included):
//! each cloud's own copy of a tunnel's key, inside addresses and ASNs, and the DNS endpoints
//! and forwarding rules it applies. The lab's binder reads these to build the data plane; the
//! twins never see what it builds from them.

use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;
use dxvpn_tunnel::psk::PresharedKey;

/// The AWS twin's side: the VPC, its host's route table, every available VPN connection, and
/// the running instances with their user data.
#[derive(Debug, Clone, Default)]
pub struct AwsView {
    /// The VPC's range.
    pub vpc_cidr: Option<Ipv4Net>,
    /// The first private subnet, where the lab puts the VPC host.
    pub host_subnet: Option<Ipv4Net>,
    /// Whether that subnet's route table propagates an attached VGW's routes.
    pub host_route_propagation: bool,
    /// Available VPN connections on an attached VGW.
    pub vpns: Vec<AwsVpnView>,
    /// Running instances of the VPC, with the user data their cloud-init runs.
    pub instances: Vec<VmView>,
    /// What filters the host's traffic: its subnet's network ACL, then its security groups.
    pub host_filter: Option<HostFilter>,
}

/// One running virtual machine: an EC2 instance or an Azure VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmView {
    /// `i-...`, or the Azure VM's id in lower case.
    pub id: String,
    /// Its private address.
    pub private_ip: Ipv4Addr,
    /// The user data (EC2) or custom data (Azure) it was created with, decoded.
    pub user_data: String,
}

/// One VPN connection as AWS holds it.
#[derive(Debug, Clone)]
pub struct AwsVpnView {
    /// `vpn-...`.
    pub id: String,
    /// The connection's index in the plan (`dxvpn:role` tag `aws.vpn_connection.N`), if tagged.
    pub index: Option<usize>,
    /// The VGW's Amazon-side ASN.
    pub vgw_asn: u32,
    /// The customer gateway's address and ASN.
    pub customer_gateway: (Ipv4Addr, u32),
    /// Its two tunnels.
    pub tunnels: Vec<AwsTunnelParams>,
}

/// One AWS tunnel.
#[derive(Debug, Clone)]
pub struct AwsTunnelParams {
    /// Its position in the connection, from 1: a tunnel that a modification takes away
    /// leaves a gap, not a shift, so the other keeps its name.
    pub number: usize,
    /// Outside address (AWS's end).
    pub outside_ip: Ipv4Addr,
    /// `TunnelInsideCidr`.
    pub inside_cidr: Ipv4Net,
    /// The key AWS holds.
    pub psk: PresharedKey,
}

/// The Azure twin's side: the VNet, the gateway and its connections.
#[derive(Debug, Clone, Default)]
pub struct AzureView {
    /// The VNet's range.
    pub vnet_cidr: Option<Ipv4Net>,
    /// The first subnet other than GatewaySubnet, where the lab puts the VNet host.
    pub host_subnet: Option<Ipv4Net>,
    /// The provisioned gateway, if any.
    pub gateway: Option<AzureGatewayView>,
    /// Provisioned connections of that gateway.
    pub connections: Vec<AzureConnectionView>,
    /// Provisioned VMs, with the custom data their cloud-init runs.
    pub vms: Vec<VmView>,
    /// What filters the host's traffic: the NSG on its subnet, then the one on its interface.
    pub host_filter: Option<HostFilter>,
}

/// The VPN gateway.
#[derive(Debug, Clone)]
pub struct AzureGatewayView {
    /// `bgpSettings.asn`.
    pub asn: u32,
    /// Per instance (ipConfiguration, in order): its public IP and custom APIPA addresses.
    pub instances: Vec<AzureInstanceView>,
}

/// One gateway instance.
#[derive(Debug, Clone)]
pub struct AzureInstanceView {
    /// The ipConfiguration's id, lower case.
    pub ip_configuration_id: String,
    /// Its public IP.
    pub public_ip: Ipv4Addr,
    /// `customBgpIpAddresses`.
    pub apipa: Vec<Ipv4Addr>,
}

/// One connection with its local network gateway.
#[derive(Debug, Clone)]
pub struct AzureConnectionView {
    /// Connection name.
    pub name: String,
    /// Local network gateway `gatewayIpAddress`.
    pub peer_outside_ip: Ipv4Addr,
    /// Local network gateway `bgpSettings.bgpPeeringAddress`.
    pub peer_bgp_ip: Option<Ipv4Addr>,
    /// Local network gateway `bgpSettings.asn`.
    pub peer_asn: u32,
    /// The key Azure holds (None when it is not one the lab's daemons can use).
    pub psk: Option<PresharedKey>,
    /// `gatewayCustomBgpIpAddresses`: (ipConfiguration id lower case, address).
    pub custom_bgp: Vec<(String, Ipv4Addr)>,
}

/// What a side's DNS applies, as its twin reads it from the DNS resources: inbound addresses
/// and forwarded zones with their targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsRules {
    /// Inbound endpoint addresses answering queries from the other cloud.
    pub inbound_ips: Vec<Ipv4Addr>,
    /// (zone, targets).
    pub forwards: Vec<(String, Vec<Ipv4Addr>)>,
}

/// The packet filters a cloud applies to one host's network interface, in the order the cloud
/// applies them, each already in its cloud's evaluation order (rule number, priority) with its
/// default rules included: what the lab enforces with nftables so that a rule written through
/// the API drops real packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFilter {
    /// The interface's address: only traffic to and from it is filtered.
    pub address: Ipv4Addr,
    /// Stages a packet to the host passes, in order; all must let it through.
    pub inbound: Vec<FilterStage>,
    /// Stages a packet from the host passes, in order.
    pub outbound: Vec<FilterStage>,
}

/// One filter (a network ACL, a security group, an NSG): the first rule that matches decides;
/// a packet no rule matches is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterStage {
    /// The cloud's name of it, for logs.
    pub name: String,
    /// Stateful filters let the answers of an allowed flow through (security groups, NSGs);
    /// stateless ones judge every packet alone (network ACLs).
    pub stateful: bool,
    /// In evaluation order.
    pub rules: Vec<FilterRule>,
}

/// One rule, on the peer's address (the source inbound, the destination outbound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    /// IP protocol number; None is every protocol.
    pub protocol: Option<u8>,
    /// TCP/UDP destination ports, or ICMP types, inclusive; None is all.
    pub ports: Option<(u16, u16)>,
    /// The peer's address is in one of these.
    pub peers: Vec<Ipv4Net>,
    /// Allow or deny.
    pub allow: bool,
}
