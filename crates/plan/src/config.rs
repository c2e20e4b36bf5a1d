//! The config file as written by the user: the contract. Unknown keys are errors.
//!
//! Addresses and names stay strings here so that the validator can report every bad value at
//! once with its path; only the shape (keys, types) is checked while parsing.

use std::collections::BTreeMap;

use dxvpn_tunnel::UseCase;
use dxvpn_tunnel::asn::{DEFAULT_AWS_ASN, DEFAULT_AZURE_ASN};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The config's fields that hold secrets: no error message quotes their values.
pub const SECRET_FIELDS: &[&str] = &["tunnels.preshared_keys"];

/// Whether `path` (as `tunnels.preshared_keys[1]`) is a secret field or inside one.
pub fn is_secret_path(path: &str) -> bool {
    SECRET_FIELDS.iter().any(|field| {
        path.strip_prefix(field)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('[') || rest.starts_with('.'))
    })
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Deployment name: tags every resource (`dxvpn:deployment`) and prefixes resource names.
    pub name: String,
    /// `development` or `high_availability`.
    pub use_case: UseCase,
    /// The AWS side.
    pub aws: AwsConfig,
    /// The Azure side.
    pub azure: AzureConfig,
    /// Cross-cloud DNS.
    #[serde(default)]
    pub dns: DnsConfig,
    /// Optional tunnel choices; by default dxvpn allocates inside CIDRs and generates keys.
    #[serde(default)]
    pub tunnels: TunnelsConfig,
    /// Free-form tags put on every created resource of both clouds.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Overrides of the price table, by item key (USD per hour or per month, as the table says).
    #[serde(default)]
    pub prices: BTreeMap<String, f64>,
    /// What `dxvpn validate` checks across the clouds.
    #[serde(default)]
    pub validate: ValidateConfig,
    /// Alarms on the tunnels in the clouds' own monitoring (on by default in
    /// high_availability).
    #[serde(default)]
    pub alerts: AlertsConfig,
}

/// `[alerts]`
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A CloudWatch alarm and an Azure metric alert per tunnel (default: on in
    /// high_availability, off in development; giving `sns_topic_arn` or
    /// `azure_action_group_id` turns them on).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// How many minutes a tunnel may be down before its alarm fires (1-10080; default 5).
    #[serde(default)]
    pub tunnel_down_minutes: Option<u32>,
    /// An SNS topic you already have that the alarms notify (`arn:aws:sns:REGION:ACCOUNT:NAME`);
    /// without one the alarms only change state.
    #[serde(default)]
    pub sns_topic_arn: Option<String>,
    /// An Azure action group you already have that the gateway's alerts notify (its ARM id,
    /// `/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Insights/actionGroups/NAME`);
    /// without one the alerts only fire in Azure Monitor.
    #[serde(default)]
    pub azure_action_group_id: Option<String>,
    /// E-mail addresses told when an alarm or alert fires: `up` makes an SNS topic with an
    /// e-mail subscription for each (each address is asked to confirm it) and an Azure action
    /// group with an e-mail receiver for each; `down` deletes both.
    #[serde(default)]
    pub emails: Vec<String>,
}

/// `[aws]`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region, e.g. `eu-south-1`.
    pub region: String,
    /// The existing VPC (`vpc-...`).
    pub vpc_id: String,
    /// The VPC's CIDR.
    pub vpc_cidr: String,
    /// Route tables that receive the Azure routes through propagation.
    pub route_table_ids: Vec<String>,
    /// Private subnets, for DNS resolver endpoints; same order as `private_subnet_cidrs`.
    #[serde(default)]
    pub private_subnet_ids: Vec<String>,
    /// CIDRs of `private_subnet_ids`, in the same order.
    #[serde(default)]
    pub private_subnet_cidrs: Vec<String>,
    /// Amazon-side ASN of the virtual private gateway.
    #[serde(default = "default_aws_asn")]
    pub asn: i64,
    /// Private DNS zones hosted on AWS, resolved from Azure.
    #[serde(default)]
    pub private_dns_zones: Vec<String>,
    /// Another EC2 / Route 53 Resolver endpoint, e.g. the lab's AWS twin.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// `[azure]`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// Subscription id (a GUID).
    pub subscription_id: String,
    /// Resource group of the VNet and of everything dxvpn creates on Azure.
    pub resource_group: String,
    /// Region, e.g. `italynorth`.
    pub location: String,
    /// The existing VNet.
    pub vnet_name: String,
    /// The VNet's address space (one prefix).
    pub vnet_cidr: String,
    /// The existing `GatewaySubnet` (/27 or larger).
    pub gateway_subnet_cidr: String,
    /// Subnets already in the VNet, so that resolver subnets avoid them.
    #[serde(default)]
    pub used_subnet_cidrs: Vec<String>,
    /// Azure VPN gateway ASN; also the ASN of the AWS customer gateways.
    #[serde(default = "default_azure_asn")]
    pub asn: i64,
    /// Gateway SKU; default `VpnGw1AZ` (development) or `VpnGw2AZ` (high availability).
    #[serde(default)]
    pub sku: Option<String>,
    /// Private DNS zones hosted on Azure, resolved from AWS.
    #[serde(default)]
    pub private_dns_zones: Vec<String>,
    /// Use this gateway instead of creating one (never modified beyond connections, never deleted).
    #[serde(default)]
    pub existing_gateway_id: Option<String>,
    /// Public IPs of `existing_gateway_id`, one per instance.
    #[serde(default)]
    pub existing_gateway_public_ips: Vec<String>,
    /// Another Azure Resource Manager endpoint, e.g. the lab's Azure twin.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// How DNS queries cross between the clouds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnsMode {
    /// Small forwarder hosts receive queries from the other cloud (cheap; development default).
    Forwarder,
    /// Managed inbound endpoints (Route 53 Resolver, Azure DNS private resolver) receive them.
    Managed,
}

/// `[dns]`
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Default `forwarder` for development, `managed` for high availability.
    #[serde(default)]
    pub mode: Option<DnsMode>,
    /// Forwarder mode: address of a forwarder host you already run in the VPC (default: `up`
    /// creates one at host .123 of the first private subnet, its 10th host in a smaller one).
    #[serde(default)]
    pub aws_forwarder_ip: Option<String>,
    /// Forwarder mode: address of a forwarder host you already run in the VNet (default: `up`
    /// creates a VM at the 4th host of a new /28 subnet, with its network security group).
    #[serde(default)]
    pub azure_forwarder_ip: Option<String>,
    /// Forwarder mode, when `aws_forwarder_ip` is not given: the EC2 instance type of the
    /// forwarder host `up` creates (default `t3.micro`, as the original module).
    #[serde(default)]
    pub aws_forwarder_instance_type: Option<String>,
    /// Forwarder mode: the image of that host, as the public SSM parameter that names the
    /// newest one (default Amazon Linux 2023 for x86_64) or an AMI id (`ami-...`).
    #[serde(default)]
    pub aws_forwarder_image: Option<String>,
    /// Forwarder mode: the IAM instance profile of that host. Left out, `up` creates one whose
    /// role has AWS's `AmazonSSMManagedInstanceCore` policy (Session Manager, as the original
    /// module); the name of an instance profile you already have uses that one; `none` gives the
    /// host no profile (and so no Session Manager).
    #[serde(default)]
    pub aws_forwarder_instance_profile: Option<String>,
    /// Forwarder mode, when `azure_forwarder_ip` is not given: the VM size of the forwarder host
    /// `up` creates in the VNet (default `Standard_B1ls`, the smallest Linux size).
    #[serde(default)]
    pub azure_forwarder_vm_size: Option<String>,
    /// Forwarder mode: the marketplace image of that VM as a URN `publisher:offer:sku:version`
    /// (default `Canonical:ubuntu-24_04-lts:server:latest`).
    #[serde(default)]
    pub azure_forwarder_image: Option<String>,
    /// Forwarder mode: the program the hosts dxvpn creates run (default `unbound`).
    #[serde(default)]
    pub forwarder_program: Option<ForwarderProgram>,
    /// Whether the VNet also forwards AWS's own service domains to AWS, as the original module
    /// does (EC2 instance names under `compute.internal` and the region's domain, RDS and
    /// ElastiCache endpoints, `aws`, `internal.aws`, `aws.local`), whenever it forwards the AWS
    /// zones (default true).
    #[serde(default)]
    pub aws_service_zones: Option<bool>,
}

/// The forwarder program a host dxvpn creates runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForwarderProgram {
    /// Unbound, from the distribution's own repository.
    #[default]
    Unbound,
}

/// `[validate]`
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// Hosts to reach from the other cloud: `[[validate.targets]]`.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
}

/// `[[validate.targets]]`: a host in one cloud that the other cloud must reach.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The cloud the host lives in: `aws` or `azure`; it is checked from the other one.
    pub cloud: crate::model::Cloud,
    /// Its private address: pinged, and the answer `name` must give.
    #[serde(default)]
    pub address: Option<String>,
    /// Its private DNS name, resolved from the other cloud.
    #[serde(default)]
    pub name: Option<String>,
    /// TCP ports that must accept a connection at `address`.
    #[serde(default)]
    pub tcp_ports: Vec<u16>,
    /// Ping `address` (default true; false where ICMP is filtered on purpose).
    #[serde(default = "yes")]
    pub ping: bool,
}

fn yes() -> bool {
    true
}

/// `[tunnels]`
// Debug is written by hand below: it shows how many keys were given, never a key.
#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TunnelsConfig {
    /// Inside /30s in tunnel order (connection 1 tunnel 1, connection 1 tunnel 2, ...).
    #[serde(default)]
    pub inside_cidrs: Vec<String>,
    /// Pre-shared keys in tunnel order. Better left out: dxvpn generates them and keeps none on disk.
    #[serde(default)]
    pub preshared_keys: Vec<String>,
}

impl std::fmt::Debug for TunnelsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelsConfig")
            .field("inside_cidrs", &self.inside_cidrs)
            .field(
                "preshared_keys",
                &format_args!("[{} redacted]", self.preshared_keys.len()),
            )
            .finish()
    }
}

fn default_aws_asn() -> i64 {
    i64::from(DEFAULT_AWS_ASN)
}

fn default_azure_asn() -> i64 {
    i64::from(DEFAULT_AZURE_ASN)
}
