//! The ARM resource types the Azure twin serves, their paths, API versions and real durations.

use std::time::Duration;

/// A resource type of the twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    PublicIp,
    VirtualNetwork,
    Subnet,
    Gateway,
    LocalGateway,
    Connection,
    DnsResolver,
    InboundEndpoint,
    OutboundEndpoint,
    Ruleset,
    ForwardingRule,
    VnetLink,
    SecurityGroup,
    NetworkInterface,
    /// Microsoft.Compute's, the only type of another provider.
    VirtualMachine,
}

/// API version of Microsoft.Network's networking resources.
pub(crate) const NETWORK_API: &str = "2024-03-01";
/// API version of the DNS private resolver.
pub(crate) const DNS_API: &str = "2022-07-01";

/// Microsoft.Network's stable api-versions from 2023 on (azure-rest-api-specs,
/// specification/network/resource-manager/Microsoft.Network/stable). What the Python SDK sends
/// confirms the newest: azure-mgmt-network 29.0 sends 2024-07-01, 30.0 2024-10-01, 31.0
/// 2025-07-01, 32.0 2025-09-01, 33.0 2026-01-01 and 33.1 2026-03-01 (2025-05-01 for a few
/// operations), in their operations modules.
const NETWORK_API_VERSIONS: [&str; 18] = [
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    NETWORK_API,
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
    "2025-01-01",
    "2025-03-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2026-01-01",
    "2026-03-01",
];

/// Microsoft.Compute's stable api-versions for virtual machines from 2023 on (azure-rest-api-specs,
/// specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable).
const COMPUTE_API_VERSIONS: [&str; 6] = [
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
];

/// Microsoft.Network/dnsResolvers' api-versions (azure-rest-api-specs,
/// specification/dnsresolver/resource-manager/Microsoft.Network).
const DNS_API_VERSIONS: [&str; 4] = [
    "2020-04-01-preview",
    DNS_API,
    "2023-07-01-preview",
    "2025-05-01",
];

const ALL: [Kind; 15] = [
    Kind::SecurityGroup,
    Kind::NetworkInterface,
    Kind::VirtualMachine,
    Kind::PublicIp,
    Kind::VirtualNetwork,
    Kind::Subnet,
    Kind::Gateway,
    Kind::LocalGateway,
    Kind::Connection,
    Kind::DnsResolver,
    Kind::InboundEndpoint,
    Kind::OutboundEndpoint,
    Kind::Ruleset,
    Kind::ForwardingRule,
    Kind::VnetLink,
];

impl Kind {
    /// The type path under the provider, e.g. `virtualNetworks/subnets`.
    pub(crate) fn type_path(self) -> &'static str {
        match self {
            Kind::PublicIp => "publicIPAddresses",
            Kind::VirtualNetwork => "virtualNetworks",
            Kind::Subnet => "virtualNetworks/subnets",
            Kind::Gateway => "virtualNetworkGateways",
            Kind::LocalGateway => "localNetworkGateways",
            Kind::Connection => "connections",
            Kind::DnsResolver => "dnsResolvers",
            Kind::InboundEndpoint => "dnsResolvers/inboundEndpoints",
            Kind::OutboundEndpoint => "dnsResolvers/outboundEndpoints",
            Kind::Ruleset => "dnsForwardingRulesets",
            Kind::ForwardingRule => "dnsForwardingRulesets/forwardingRules",
            Kind::VnetLink => "dnsForwardingRulesets/virtualNetworkLinks",
            Kind::SecurityGroup => "networkSecurityGroups",
            Kind::NetworkInterface => "networkInterfaces",
            Kind::VirtualMachine => "virtualMachines",
        }
    }

    /// The resource provider: `Microsoft.Network`, or `Microsoft.Compute` for VMs.
    pub(crate) fn provider(self) -> &'static str {
        match self {
            Kind::VirtualMachine => "Microsoft.Compute",
            _ => "Microsoft.Network",
        }
    }

    /// The full type string ARM reports, e.g. `Microsoft.Network/virtualNetworks/subnets`.
    pub(crate) fn type_name(self) -> String {
        format!("{}/{}", self.provider(), self.type_path())
    }

    /// The kind whose provider and type path are these (case-insensitive).
    pub(crate) fn from_type_path(provider: &str, path: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| {
            k.provider().eq_ignore_ascii_case(provider) && k.type_path().eq_ignore_ascii_case(path)
        })
    }

    /// The last segment of the type, used to name calls (`PUT virtualNetworkGateways`).
    pub(crate) fn short(self) -> &'static str {
        let path = self.type_path();
        path.rsplit('/').next().unwrap_or(path)
    }

    /// A DNS private resolver type (its own API version and conventions).
    pub(crate) fn is_dns(self) -> bool {
        matches!(
            self,
            Kind::DnsResolver
                | Kind::InboundEndpoint
                | Kind::OutboundEndpoint
                | Kind::Ruleset
                | Kind::ForwardingRule
                | Kind::VnetLink
        )
    }

    /// The api-versions the twin answers: ARM answers every published one, and clients send
    /// their own (azure_mgmt_network 0.21: 2024-03-01; the Python azure-mgmt-network 33.1:
    /// 2026-03-01, azure-mgmt-dnsresolver 1.1: 2025-05-01). Every member the twin renders
    /// exists in all of them, so one shape serves all.
    pub(crate) fn api_versions(self) -> &'static [&'static str] {
        if self.is_dns() {
            &DNS_API_VERSIONS
        } else if self == Kind::VirtualMachine {
            &COMPUTE_API_VERSIONS
        } else {
            &NETWORK_API_VERSIONS
        }
    }

    /// Tracked resources have a location; proxy resources (children) do not.
    pub(crate) fn tracked(self) -> bool {
        !matches!(self, Kind::Subnet | Kind::ForwardingRule | Kind::VnetLink)
    }

    /// Forwarding rules are written synchronously; everything else is a long-running operation.
    pub(crate) fn synchronous(self) -> bool {
        self == Kind::ForwardingRule
    }

    /// How long a create takes in Azure (field notes), before scaling.
    pub(crate) fn create_time(self) -> Duration {
        let secs = match self {
            Kind::PublicIp | Kind::VirtualNetwork => 10,
            Kind::Subnet => 5,
            // "often 45 minutes or more" (Microsoft); azurerm says 30 to 60.
            Kind::Gateway => 40 * 60,
            Kind::LocalGateway => 30,
            Kind::Connection => 90,
            Kind::DnsResolver => 120,
            Kind::InboundEndpoint | Kind::OutboundEndpoint => 240,
            Kind::Ruleset | Kind::VnetLink => 60,
            Kind::ForwardingRule => 0,
            Kind::SecurityGroup | Kind::NetworkInterface => 10,
            // A guess: a small Linux VM from a marketplace image takes a minute or two.
            Kind::VirtualMachine => 90,
        };
        Duration::from_secs(secs)
    }

    /// How long an update of an existing resource takes.
    pub(crate) fn update_time(self) -> Duration {
        match self {
            Kind::Gateway => Duration::from_secs(10 * 60),
            other => other.create_time().min(Duration::from_secs(60)),
        }
    }

    /// How long a delete takes.
    pub(crate) fn delete_time(self) -> Duration {
        let secs = match self {
            Kind::Gateway => 20 * 60,
            Kind::Connection | Kind::LocalGateway | Kind::VnetLink | Kind::VirtualMachine => 60,
            Kind::InboundEndpoint | Kind::OutboundEndpoint => 180,
            Kind::ForwardingRule => 0,
            _ => 30,
        };
        Duration::from_secs(secs)
    }
}
