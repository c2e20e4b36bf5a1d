//! The Azure resource types dxvpn writes, and the typed client of each.

use dxvpn_plan::model::Spec;

/// The Azure resource types dxvpn writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    PublicIp,
    Gateway,
    LocalGateway,
    Connection,
    Subnet,
    DnsResolver,
    InboundEndpoint,
    OutboundEndpoint,
    Ruleset,
    ForwardingRule,
    VnetLink,
    SecurityGroup,
    /// The forwarder VM's interface: no plan resource of its own, written with the VM.
    NetworkInterface,
    /// Microsoft.Compute, written as JSON (`forwarder_vm`).
    VirtualMachine,
    /// Microsoft.Insights, written as JSON (`alerts`).
    MetricAlert,
    /// Microsoft.Insights, written as JSON (`alerts`).
    ActionGroup,
}

impl Kind {
    pub(crate) fn of(spec: &Spec) -> Option<Kind> {
        match spec {
            Spec::PublicIp { .. } => Some(Kind::PublicIp),
            Spec::VirtualNetworkGateway { .. } => Some(Kind::Gateway),
            Spec::LocalNetworkGateway { .. } => Some(Kind::LocalGateway),
            Spec::GatewayConnection { .. } => Some(Kind::Connection),
            Spec::Subnet { .. } => Some(Kind::Subnet),
            Spec::DnsResolver { .. } => Some(Kind::DnsResolver),
            Spec::DnsInboundEndpoint { .. } => Some(Kind::InboundEndpoint),
            Spec::DnsOutboundEndpoint { .. } => Some(Kind::OutboundEndpoint),
            Spec::DnsForwardingRuleset { .. } => Some(Kind::Ruleset),
            Spec::DnsForwardingRule { .. } => Some(Kind::ForwardingRule),
            Spec::DnsVnetLink { .. } => Some(Kind::VnetLink),
            Spec::NetworkSecurityGroup { .. } => Some(Kind::SecurityGroup),
            Spec::ForwarderInstance { .. } => Some(Kind::VirtualMachine),
            Spec::TunnelAlert { .. } | Spec::TrafficAlert { .. } => Some(Kind::MetricAlert),
            Spec::ActionGroup { .. } => Some(Kind::ActionGroup),
            _ => None,
        }
    }

    pub(crate) fn type_path(self) -> &'static str {
        match self {
            Kind::PublicIp => "publicIPAddresses",
            Kind::Gateway => "virtualNetworkGateways",
            Kind::LocalGateway => "localNetworkGateways",
            Kind::Connection => "connections",
            Kind::Subnet => "virtualNetworks/subnets",
            Kind::DnsResolver => "dnsResolvers",
            Kind::InboundEndpoint => "dnsResolvers/inboundEndpoints",
            Kind::OutboundEndpoint => "dnsResolvers/outboundEndpoints",
            Kind::Ruleset => "dnsForwardingRulesets",
            Kind::ForwardingRule => "dnsForwardingRulesets/forwardingRules",
            Kind::VnetLink => "dnsForwardingRulesets/virtualNetworkLinks",
            Kind::SecurityGroup => "networkSecurityGroups",
            Kind::NetworkInterface => "networkInterfaces",
            Kind::VirtualMachine => "virtualMachines",
            Kind::MetricAlert => "metricAlerts",
            Kind::ActionGroup => "actionGroups",
        }
    }

    /// Whether ARM reports the type's `provisioningState`: a metric alert has none, its PUT
    /// ends when it answers.
    pub(crate) fn provisions(self) -> bool {
        !matches!(self, Kind::MetricAlert | Kind::ActionGroup)
    }

    /// The provider and api-version of a type no typed client of the owner's set writes: it is
    /// read and written as JSON by id.
    pub(crate) fn json_api(self) -> Option<(&'static str, &'static str)> {
        match self {
            Kind::VirtualMachine => Some((
                "Microsoft.Compute",
                crate::forwarder_vm::COMPUTE_API_VERSION,
            )),
            Kind::MetricAlert => Some((
                "Microsoft.Insights",
                crate::alerts::METRIC_ALERTS_API_VERSION,
            )),
            Kind::ActionGroup => Some((
                "Microsoft.Insights",
                crate::alerts::ACTION_GROUPS_API_VERSION,
            )),
            _ => None,
        }
    }

    /// Whether the typed client is azure_mgmt_network's gateway family (`get(rg, name, sub)`):
    /// the gateways' types, and the security group and network interface.
    pub(crate) fn is_gateway_family(self) -> bool {
        matches!(
            self,
            Kind::PublicIp
                | Kind::Gateway
                | Kind::LocalGateway
                | Kind::Connection
                | Kind::SecurityGroup
                | Kind::NetworkInterface
        )
    }
}

/// Runs `$call` with the typed client of `$kind` as `$client` and its model type as `$model`:
/// the four resource types share every call's shape but not their Rust types.
macro_rules! per_kind {
    ($self:ident, $kind:expr, |$client:ident, $model:ident| $call:expr) => {
        match $kind {
            Kind::PublicIp => {
                #[allow(dead_code)]
                type $model = models::PublicIpAddress;
                let $client = $self.network.public_ip_addresses_client();
                $call
            }
            Kind::Gateway => {
                #[allow(dead_code)]
                type $model = models::VirtualNetworkGateway;
                let $client = $self.network.virtual_network_gateways_client();
                $call
            }
            Kind::LocalGateway => {
                #[allow(dead_code)]
                type $model = models::LocalNetworkGateway;
                let $client = $self.network.local_network_gateways_client();
                $call
            }
            Kind::Connection => {
                #[allow(dead_code)]
                type $model = models::VirtualNetworkGatewayConnection;
                let $client = $self.network.virtual_network_gateway_connections_client();
                $call
            }
            Kind::SecurityGroup => {
                #[allow(dead_code)]
                type $model = models::NetworkSecurityGroup;
                let $client = $self.network.network_security_groups_client();
                $call
            }
            Kind::NetworkInterface => {
                #[allow(dead_code)]
                type $model = models::NetworkInterface;
                let $client = $self.network.network_interfaces_client();
                $call
            }
            _ => unreachable!("DNS kinds go through the dns module, JSON kinds through json_call"),
        }
    };
}
