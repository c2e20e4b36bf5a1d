//! The validated plan: what exists, what dxvpn will create, how it depends, what it costs.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dxvpn_cidr::Ipv4Net;
use dxvpn_tunnel::policy::IpsecPolicy;
use dxvpn_tunnel::psk::PresharedKey;
use dxvpn_tunnel::{TunnelPairing, UseCase};
use serde::Serialize;

use crate::config::{DnsMode, ForwarderProgram};
use crate::cost::CostEstimate;
use crate::problem::Problem;

/// Everything `dxvpn up` will do, derived from a valid config. Contains no secret in its
/// serialized form: user-given pre-shared keys are kept in memory only.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Deployment name (`dxvpn:deployment` tag value).
    pub name: String,
    /// The shape of the deployment.
    pub use_case: UseCase,
    /// The AWS side as given and derived.
    pub aws: AwsSide,
    /// The Azure side as given and derived.
    pub azure: AzureSide,
    /// Every tunnel, in order connection 1 tunnel 1, connection 1 tunnel 2, ...
    pub tunnels: Vec<Tunnel>,
    /// The IKE/IPsec policy set on both sides of every tunnel.
    pub ipsec_policy: IpsecPolicy,
    /// Every resource of both clouds, in dependency order (a resource comes after its inputs).
    pub resources: Vec<Resource>,
    /// Cross-cloud DNS forwarding, one entry per direction.
    pub dns: DnsPlan,
    /// Monthly cost estimate.
    pub cost: CostEstimate,
    /// Things that work but deserve attention.
    pub warnings: Vec<Problem>,
    /// Hosts `dxvpn validate` reaches across, from `[[validate.targets]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validate_targets: Vec<ValidateTarget>,
}

impl Plan {
    /// The resource with role key `role`, e.g. `aws.vpn_connection.0`.
    pub fn resource(&self, role: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.role == role)
    }

    /// The forwarder host dxvpn creates in `cloud` (a [`Spec::ForwarderInstance`]), if any.
    pub fn forwarder_instance(&self, cloud: Cloud) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.cloud == cloud && matches!(r.spec, Spec::ForwarderInstance { .. }))
    }

    /// The tunnels of the VPN connection `connection_role` (`aws.vpn_connection.N`).
    pub fn tunnels_of<'a>(&'a self, connection_role: &'a str) -> impl Iterator<Item = &'a Tunnel> {
        self.tunnels
            .iter()
            .filter(move |t| t.connection_role() == connection_role)
    }

    /// Tunnel `index` (0 or 1) of the VPN connection `connection_role`.
    pub fn tunnel_of(&self, connection_role: &str, index: usize) -> Option<&Tunnel> {
        self.tunnels
            .iter()
            .find(|t| t.connection_role() == connection_role && t.pairing.aws_tunnel == index)
    }
}

/// The AWS side.
#[derive(Debug, Clone, Serialize)]
pub struct AwsSide {
    /// Region.
    pub region: String,
    /// Existing VPC.
    pub vpc_id: String,
    /// The VPC's CIDR.
    pub vpc_cidr: Ipv4Net,
    /// The VPC's own resolver (VPC base + 2).
    pub vpc_resolver_ip: Ipv4Addr,
    /// Route tables that get the Azure routes through propagation.
    pub route_table_ids: Vec<String>,
    /// Private subnets, for resolver endpoints and forwarders.
    pub private_subnets: Vec<AwsSubnet>,
    /// Amazon-side ASN.
    pub asn: u32,
    /// Zones hosted on AWS.
    pub private_dns_zones: Vec<String>,
    /// Non-default API endpoint (the lab's twin).
    pub endpoint_url: Option<String>,
}

/// An existing AWS subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsSubnet {
    /// `subnet-...`
    pub id: String,
    /// Its CIDR.
    pub cidr: Ipv4Net,
}

/// The Azure side.
#[derive(Debug, Clone, Serialize)]
pub struct AzureSide {
    /// Subscription.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub location: String,
    /// Existing VNet.
    pub vnet_name: String,
    /// Its address space.
    pub vnet_cidr: Ipv4Net,
    /// Existing GatewaySubnet.
    pub gateway_subnet_cidr: Ipv4Net,
    /// Azure's resolver address, reachable from inside the VNet only.
    pub azure_resolver_ip: Ipv4Addr,
    /// Gateway ASN.
    pub asn: u32,
    /// Gateway SKU.
    pub sku: String,
    /// Two instances (high availability) or one.
    pub active_active: bool,
    /// Zones hosted on Azure.
    pub private_dns_zones: Vec<String>,
    /// Set when an existing gateway is used instead of a new one.
    pub existing_gateway: Option<ExistingGateway>,
    /// Non-default ARM endpoint (the lab's twin).
    pub endpoint: Option<String>,
}

/// An Azure VPN gateway that dxvpn uses but does not own.
#[derive(Debug, Clone, Serialize)]
pub struct ExistingGateway {
    /// Its ARM resource id.
    pub id: String,
    /// One public IP per instance.
    pub public_ips: Vec<Ipv4Addr>,
}

/// A host in one cloud that the other must reach (`[[validate.targets]]`, checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidateTarget {
    /// The cloud it lives in; it is checked from the other one.
    pub cloud: Cloud,
    /// Its private address.
    pub address: Option<Ipv4Addr>,
    /// Its private DNS name (lower case, no final dot).
    pub name: Option<String>,
    /// TCP ports that must accept a connection at `address`.
    pub tcp_ports: Vec<u16>,
    /// Ping `address`.
    pub ping: bool,
}

impl Tunnel {
    /// The role of the AWS VPN connection it belongs to.
    pub fn connection_role(&self) -> String {
        format!("aws.vpn_connection.{}", self.pairing.aws_connection)
    }
}

/// One tunnel of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Tunnel {
    /// `c1t1`, `c1t2`, `c2t1`, `c2t2`.
    pub key: String,
    /// Pairing and inside addresses.
    #[serde(flatten)]
    pub pairing: TunnelPairing,
    /// Where the pre-shared key comes from.
    pub psk: PskSource,
    /// A user-given key; never serialized.
    #[serde(skip)]
    pub preshared_key: Option<PresharedKey>,
}

/// Where a tunnel's pre-shared key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PskSource {
    /// Generated by dxvpn at `up` (CSPRNG), stored only in the clouds.
    Generated,
    /// Given in the config file.
    Config,
}

/// Which cloud a resource lives in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
}

impl Cloud {
    /// `aws` or `azure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
        }
    }

    /// The cloud across the tunnels.
    pub fn other(self) -> Cloud {
        match self {
            Cloud::Aws => Cloud::Azure,
            Cloud::Azure => Cloud::Aws,
        }
    }
}

/// What dxvpn does with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// dxvpn creates, tags and eventually deletes it.
    Create,
    /// It exists already; dxvpn reads it and never deletes it.
    Reference,
}

/// One resource of either cloud.
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    /// Stable role key, e.g. `aws.vpn_connection.1`; the `dxvpn:role` tag value.
    pub role: String,
    /// Cloud.
    pub cloud: Cloud,
    /// Name given to the resource (Azure resource name, AWS `Name` tag).
    pub name: String,
    /// Create or reference.
    pub action: Action,
    /// Role keys of the resources whose outputs this one needs.
    pub depends_on: Vec<String>,
    /// Tags to set (empty for referenced resources).
    pub tags: BTreeMap<String, String>,
    /// Kind and kind-specific attributes.
    #[serde(flatten)]
    pub spec: Spec,
}

impl Resource {
    /// The kind, as in `resources[].kind`.
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }
}

/// A value known now, or an output of another resource that exists only after it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Deferred<T> {
    /// Known at plan time.
    Known(T),
    /// Output `output` of resource `from`, known at `up`.
    After {
        /// Role key of the resource that produces the value.
        from: String,
        /// Which output.
        output: &'static str,
    },
}

impl<T> Deferred<T> {
    /// The output of another resource.
    pub fn after(from: &str, output: &'static str) -> Self {
        Deferred::After {
            from: from.to_owned(),
            output,
        }
    }
}

/// Direction of a Route 53 Resolver endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EndpointDirection {
    /// Receives queries from outside the VPC.
    Inbound,
    /// Sends queries out of the VPC.
    Outbound,
}

/// Per-kind attributes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(missing_docs)] // fields are named after the cloud APIs' own members
pub enum Spec {
    /// The existing VPC.
    Vpc { vpc_id: String, cidr: Ipv4Net },
    /// Virtual private gateway.
    VpnGateway { amazon_side_asn: u32 },
    /// VGW attached to the VPC.
    VpnGatewayAttachment { vpc_id: String },
    /// VGW route propagation into one route table.
    RoutePropagation { route_table_id: String },
    /// Customer gateway for one Azure instance's public IP.
    CustomerGateway {
        bgp_asn: u32,
        ip_address: Deferred<Ipv4Addr>,
    },
    /// VPN connection: two tunnels, BGP (no static routes).
    VpnConnection {
        connection: usize,
        tunnels: Vec<String>,
        static_routes_only: bool,
    },
    /// Azure network security group letting DNS (`port`, UDP and TCP) in from both networks,
    /// on the subnet of the forwarder host dxvpn creates.
    NetworkSecurityGroup {
        ingress_cidrs: Vec<Ipv4Net>,
        port: u16,
    },
    /// Security group letting DNS in from both networks.
    SecurityGroup {
        vpc_id: String,
        ingress_cidrs: Vec<Ipv4Net>,
        ports: String,
    },
    /// Route 53 Resolver endpoint in two private subnets.
    ResolverEndpoint {
        direction: EndpointDirection,
        subnet_ids: Vec<String>,
    },
    /// Route 53 Resolver FORWARD rule.
    ResolverRule {
        domain_name: String,
        target_ips: Deferred<Vec<Ipv4Addr>>,
    },
    /// Association of a rule with the VPC.
    ResolverRuleAssociation { vpc_id: String, rule: String },
    /// A forwarder host the user runs (development DNS path): referenced, never created.
    DnsForwarder {
        ip: Ipv4Addr,
        subnet: String,
        upstream: Ipv4Addr,
    },
    /// A forwarder host dxvpn runs (development): at a fixed address, its cloud-init installs
    /// the forwarder program and writes its rendered configuration (`crate::forwarder_host`).
    /// In AWS an EC2 instance; in Azure a VM with its network interface.
    ForwarderInstance {
        ip: Ipv4Addr,
        /// AWS: the subnet's id; Azure: the role of the subnet dxvpn creates for it.
        subnet_id: String,
        /// An EC2 instance type, or an Azure VM size.
        instance_type: String,
        /// AWS: the public SSM parameter naming the image (or an AMI id); Azure: the image's
        /// URN `publisher:offer:sku:version`.
        image: String,
        /// AWS: the IAM instance profile the instance is launched with (its name), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        instance_profile: Option<String>,
        setup: ForwarderSetup,
    },
    /// An IAM role that EC2 may assume, in an instance profile of the same name, with AWS
    /// managed policies attached (the AWS forwarder host's Session Manager access).
    InstanceProfile {
        /// The role's and the profile's name (IAM names are unique in the account).
        name: String,
        /// The managed policies attached to the role, by ARN.
        policy_arns: Vec<String>,
    },
    /// A CloudWatch alarm on one tunnel's AWS/VPN `TunnelState` (dimensions VpnId and
    /// TunnelIpAddress, Maximum over one-minute periods, below 1): ALARM once the tunnel has
    /// been down for `minutes` periods in a row, AWS's guidance for watching a tunnel.
    TunnelAlarm {
        /// The tunnel's key, `c1t1`, ...
        tunnel: String,
        /// Minutes (one-minute periods) the tunnel may be down before the alarm fires.
        minutes: u32,
        /// SNS topics notified when it fires and when it clears.
        actions: Vec<String>,
        /// Also the topic dxvpn makes (`aws.alert_topic`, its `arn` output).
        notify_alert_topic: bool,
    },
    /// An SNS topic that the tunnel alarms notify, with an e-mail subscription per address
    /// (each address confirms its own; SNS sends nothing to one that has not).
    AlertTopic {
        /// The addresses subscribed.
        emails: Vec<String>,
    },
    /// An Azure Monitor action group that the tunnel alerts notify, with an e-mail receiver
    /// per address.
    ActionGroup {
        /// Its short name, in the e-mails' subject (12 characters at most).
        short_name: String,
        /// The addresses told.
        emails: Vec<String>,
    },
    /// An Azure Monitor metric alert on one tunnel's BGP session: the gateway's `BgpPeerStatus`
    /// for the tunnel's AWS inside address (Maximum over the gateway's instances, below 1),
    /// evaluated every five minutes over `window_minutes`; Azure's counterpart of the tunnel
    /// alarm. BgpPeerStatus unsplit averages in each instance as a peer of 0 (field-notes), so
    /// the alert names its peer.
    TunnelAlert {
        /// The tunnel's key, `c1t1`, ...
        tunnel: String,
        /// The BGP peer the gateway sees over it: AWS's inside address.
        peer: Ipv4Addr,
        /// The alert's window: one Azure offers ([`ALERT_WINDOWS_MINUTES`]).
        window_minutes: u32,
        /// Action groups notified when it fires and resolves, by ARM id.
        action_groups: Vec<String>,
        /// Also the action group dxvpn makes (`azure.action_group`).
        notify_action_group: bool,
    },
    /// An Azure Monitor metric alert on one tunnel's traffic: the gateway's
    /// `TunnelIngressBytes` of the tunnel's connection (dimension ConnectionName), Total at 0
    /// over `window_minutes`. BGP's keepalives cross every tunnel that is up, so no bytes in at
    /// all means the tunnel carries nothing, whatever its status says.
    TrafficAlert {
        /// The tunnel's key, `c1t1`, ...
        tunnel: String,
        /// The Azure connection's name (the ConnectionName dimension).
        connection: String,
        /// The alert's window: one Azure offers ([`ALERT_WINDOWS_MINUTES`]).
        window_minutes: u32,
        /// Action groups notified when it fires and resolves, by ARM id.
        action_groups: Vec<String>,
        /// Also the action group dxvpn makes (`azure.action_group`).
        notify_action_group: bool,
    },
    /// The existing VNet.
    VirtualNetwork { name: String, cidr: Ipv4Net },
    /// Standard static public IP for one gateway instance.
    PublicIp {
        instance: usize,
        sku: String,
        allocation: String,
        zones: Vec<String>,
    },
    /// Route-based VPN gateway with BGP.
    VirtualNetworkGateway {
        sku: String,
        active_active: bool,
        asn: u32,
        instances: Vec<GatewayInstance>,
    },
    /// One per AWS tunnel: its outside IP and BGP peer.
    LocalNetworkGateway {
        tunnel: String,
        gateway_ip_address: Deferred<Ipv4Addr>,
        bgp_asn: u32,
        bgp_peering_address: Ipv4Addr,
    },
    /// IPsec connection for one AWS tunnel, naming its own APIPA address.
    GatewayConnection {
        tunnel: String,
        azure_instance: usize,
        custom_bgp_ip_address: Ipv4Addr,
        enable_bgp: bool,
        shared_key: Deferred<PskSource>,
    },
    /// A subnet dxvpn adds to the VNet.
    Subnet {
        cidr: Ipv4Net,
        /// The service it is delegated to; empty for none (a VM's subnet).
        delegation: String,
        /// The role of the network security group on it, if any.
        security_group: Option<String>,
    },
    /// DNS private resolver in the VNet.
    DnsResolver { vnet: String },
    /// Resolver inbound endpoint with a static address.
    DnsInboundEndpoint {
        subnet: String,
        private_ip: Ipv4Addr,
    },
    /// Resolver outbound endpoint.
    DnsOutboundEndpoint { subnet: String },
    /// Forwarding ruleset.
    DnsForwardingRuleset { outbound_endpoint: String },
    /// One forwarding rule.
    DnsForwardingRule {
        domain_name: String,
        target_ips: Deferred<Vec<Ipv4Addr>>,
    },
    /// Ruleset link to the VNet.
    DnsVnetLink { vnet: String },
}

/// What a forwarder host dxvpn runs answers: the other cloud's zones go to the other cloud's
/// receivers, the rest to the local cloud resolver, and only these networks are answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwarderSetup {
    /// The program (and distribution package) that forwards.
    pub program: ForwarderProgram,
    /// (zone, targets) forwarded to the other cloud.
    pub forwards: Vec<(String, Vec<Ipv4Addr>)>,
    /// The local cloud's resolver, for every other name.
    pub upstream: Ipv4Addr,
    /// The host's own address, the only one the forwarder listens on: the image's own stub
    /// resolver (systemd-resolved on 127.0.0.53) holds port 53 on loopback.
    pub listen: Ipv4Addr,
    /// Networks whose queries are answered (the VPC and the VNet).
    pub allow: Vec<Ipv4Net>,
}

/// One Azure gateway instance (ipConfiguration).
#[derive(Debug, Clone, Serialize)]
pub struct GatewayInstance {
    /// ipConfiguration name.
    pub ip_configuration: String,
    /// Public IP (role of the public IP resource, or the existing address).
    pub public_ip: Deferred<Ipv4Addr>,
    /// Custom APIPA BGP addresses on this instance, one per tunnel it ends.
    pub custom_bgp_ip_addresses: Vec<Ipv4Addr>,
}

impl Spec {
    /// The snake_case kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Vpc { .. } => "vpc",
            Spec::VpnGateway { .. } => "vpn_gateway",
            Spec::VpnGatewayAttachment { .. } => "vpn_gateway_attachment",
            Spec::RoutePropagation { .. } => "route_propagation",
            Spec::CustomerGateway { .. } => "customer_gateway",
            Spec::VpnConnection { .. } => "vpn_connection",
            Spec::SecurityGroup { .. } => "security_group",
            Spec::NetworkSecurityGroup { .. } => "network_security_group",
            Spec::ResolverEndpoint { .. } => "resolver_endpoint",
            Spec::ResolverRule { .. } => "resolver_rule",
            Spec::ResolverRuleAssociation { .. } => "resolver_rule_association",
            Spec::DnsForwarder { .. } => "dns_forwarder",
            Spec::ForwarderInstance { .. } => "forwarder_instance",
            Spec::InstanceProfile { .. } => "instance_profile",
            Spec::TunnelAlarm { .. } => "tunnel_alarm",
            Spec::TunnelAlert { .. } => "tunnel_alert",
            Spec::TrafficAlert { .. } => "traffic_alert",
            Spec::AlertTopic { .. } => "alert_topic",
            Spec::ActionGroup { .. } => "action_group",
            Spec::VirtualNetwork { .. } => "virtual_network",
            Spec::PublicIp { .. } => "public_ip",
            Spec::VirtualNetworkGateway { .. } => "virtual_network_gateway",
            Spec::LocalNetworkGateway { .. } => "local_network_gateway",
            Spec::GatewayConnection { .. } => "gateway_connection",
            Spec::Subnet { .. } => "subnet",
            Spec::DnsResolver { .. } => "dns_resolver",
            Spec::DnsInboundEndpoint { .. } => "dns_inbound_endpoint",
            Spec::DnsOutboundEndpoint { .. } => "dns_outbound_endpoint",
            Spec::DnsForwardingRuleset { .. } => "dns_forwarding_ruleset",
            Spec::DnsForwardingRule { .. } => "dns_forwarding_rule",
            Spec::DnsVnetLink { .. } => "dns_vnet_link",
        }
    }
}

/// Cross-cloud DNS.
#[derive(Debug, Clone, Serialize)]
pub struct DnsPlan {
    /// Forwarder or managed receiving side.
    pub mode: DnsMode,
    /// One entry per direction that has zones.
    pub forwarding: Vec<DnsForwarding>,
}

/// Queries for `zones` asked in `from` are forwarded to `targets` in `to`.
#[derive(Debug, Clone, Serialize)]
pub struct DnsForwarding {
    /// Where the query starts.
    pub from: Cloud,
    /// Where the zones live.
    pub to: Cloud,
    /// Zones forwarded.
    pub zones: Vec<String>,
    /// Role of the resource that sends the queries out (outbound endpoint).
    pub via: String,
    /// Role of the resource that receives them (inbound endpoint or forwarder).
    pub receiver: String,
    /// Addresses the rules point at.
    pub targets: Deferred<Vec<Ipv4Addr>>,
}

/// The windows a metric alert may have, in minutes (`windowSize`: PT1M, PT5M, PT15M, PT30M,
/// PT1H, PT6H, PT12H, P1D; Microsoft.Insights metricAlerts 2018-03-01).
pub const ALERT_WINDOWS_MINUTES: [u32; 8] = [1, 5, 15, 30, 60, 360, 720, 1440];

/// The alert window for a tunnel that may be down `minutes`: the shortest Azure offers that
/// covers them, five minutes at least (the gateway publishes five-minute data, field-notes) and
/// a day at most (Azure's longest).
pub fn alert_window_minutes(minutes: u32) -> u32 {
    ALERT_WINDOWS_MINUTES
        .into_iter()
        .find(|w| *w >= minutes.max(5))
        .unwrap_or(1440)
}

/// The role of the SNS topic the tunnel alarms tell, when `alerts.emails` is given.
pub const ALERT_TOPIC_ROLE: &str = "aws.alert_topic";
/// The role of the action group the tunnel alerts tell, when `alerts.emails` is given.
pub const ACTION_GROUP_ROLE: &str = "azure.action_group";
