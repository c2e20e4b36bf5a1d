//! Checked inputs -> the resources of both clouds and their dependencies.
//!
//! Dependencies are data dependencies only: a resource depends on another when it needs one of
//! its outputs (an id, an address, a key). That is what lets the deploy engine start the AWS
//! customer gateways as soon as the Azure public IPs exist, long before the Azure gateway is built.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dxvpn_cidr::nth_host;
use dxvpn_tunnel::policy::IpsecPolicy;

use crate::config::DnsMode;
use crate::model::{ACTION_GROUP_ROLE, ALERT_TOPIC_ROLE};
use crate::model::{
    Action, Cloud, Deferred, DnsForwarding, DnsPlan, EndpointDirection, ForwarderSetup,
    GatewayInstance, Plan, PskSource, Resource, Spec,
};
use crate::validate::{Checked, CreatedHost, ProfileChoice};

/// Collects resources with their tags and names.
struct Builder<'a> {
    checked: &'a Checked,
    resources: Vec<Resource>,
}

impl Builder<'_> {
    fn add(
        &mut self,
        cloud: Cloud,
        role: &str,
        name_suffix: &str,
        depends_on: &[&str],
        spec: Spec,
    ) {
        let name = format!("{}-{name_suffix}", self.checked.name);
        let mut tags = self.checked.tags.clone();
        tags.insert("dxvpn:deployment".into(), self.checked.name.clone());
        tags.insert("dxvpn:role".into(), role.to_owned());
        if cloud == Cloud::Aws {
            tags.insert("Name".into(), name.clone());
            // Gateways and customer gateways belong to no VPC in EC2: the tag scopes every
            // lookup to the configured one, so that a same-named deployment in another VPC of
            // the account is neither adopted nor deleted.
            tags.insert("dxvpn:vpc".into(), self.checked.aws.vpc_id.clone());
        }
        self.resources.push(Resource {
            role: role.to_owned(),
            cloud,
            name,
            action: Action::Create,
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            tags,
            spec,
        });
    }

    fn reference(&mut self, cloud: Cloud, role: &str, name: &str, spec: Spec) {
        self.resources.push(Resource {
            role: role.to_owned(),
            cloud,
            name: name.to_owned(),
            action: Action::Reference,
            depends_on: Vec::new(),
            tags: BTreeMap::new(),
            spec,
        });
    }
}

pub(crate) fn build(checked: Checked) -> Plan {
    let mut b = Builder {
        checked: &checked,
        resources: Vec::new(),
    };
    let c = &checked;
    let connections = c.use_case.aws_connections();

    // Existing networks, referenced so that the graph and `down` know what is not ours.
    b.reference(
        Cloud::Aws,
        "aws.vpc",
        &c.aws.vpc_id,
        Spec::Vpc {
            vpc_id: c.aws.vpc_id.clone(),
            cidr: c.aws.vpc_cidr,
        },
    );
    b.reference(
        Cloud::Azure,
        "azure.vnet",
        &c.azure.vnet_name,
        Spec::VirtualNetwork {
            name: c.azure.vnet_name.clone(),
            cidr: c.azure.vnet_cidr,
        },
    );

    // Azure public IPs first: they feed the AWS customer gateways.
    let public_ip = |i: usize| format!("azure.public_ip.{i}");
    if c.azure.existing_gateway.is_none() {
        for i in 0..connections {
            b.add(
                Cloud::Azure,
                &public_ip(i),
                &format!("pip-{}", i + 1),
                &["azure.vnet"],
                Spec::PublicIp {
                    instance: i,
                    sku: "Standard".into(),
                    allocation: "Static".into(),
                    zones: if c.azure.sku.ends_with("AZ") {
                        vec!["1".into(), "2".into(), "3".into()]
                    } else {
                        vec![]
                    },
                },
            );
        }
    }
    let gateway_ip = |i: usize| -> Deferred<Ipv4Addr> {
        match &c.azure.existing_gateway {
            Some(g) => Deferred::Known(
                g.public_ips
                    .get(i)
                    .copied()
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
            ),
            None => Deferred::after(&public_ip(i), "ip_address"),
        }
    };

    // AWS gateway side.
    b.add(
        Cloud::Aws,
        "aws.vpn_gateway",
        "vgw",
        &[],
        Spec::VpnGateway {
            amazon_side_asn: c.aws.asn,
        },
    );
    b.add(
        Cloud::Aws,
        "aws.vpn_gateway_attachment",
        "vgw-attachment",
        &["aws.vpn_gateway", "aws.vpc"],
        Spec::VpnGatewayAttachment {
            vpc_id: c.aws.vpc_id.clone(),
        },
    );
    for rtb in &c.aws.route_table_ids {
        b.add(
            Cloud::Aws,
            &format!("aws.route_propagation.{rtb}"),
            &format!("propagation-{rtb}"),
            &["aws.vpn_gateway_attachment"],
            Spec::RoutePropagation {
                route_table_id: rtb.clone(),
            },
        );
    }
    for i in 0..connections {
        let cgw = format!("aws.customer_gateway.{i}");
        let pip_role = public_ip(i);
        let cgw_deps: Vec<&str> = if c.azure.existing_gateway.is_none() {
            vec![pip_role.as_str()]
        } else {
            vec![]
        };
        b.add(
            Cloud::Aws,
            &cgw,
            &format!("cgw-{}", i + 1),
            &cgw_deps,
            Spec::CustomerGateway {
                bgp_asn: c.azure.asn,
                ip_address: gateway_ip(i),
            },
        );
        let tunnels = c
            .tunnels
            .iter()
            .filter(|t| t.pairing.aws_connection == i)
            .map(|t| t.key.clone())
            .collect();
        b.add(
            Cloud::Aws,
            &format!("aws.vpn_connection.{i}"),
            &format!("vpn-{}", i + 1),
            &["aws.vpn_gateway", &cgw],
            Spec::VpnConnection {
                connection: i,
                tunnels,
                static_routes_only: false,
            },
        );
    }

    // An alarm per tunnel on what AWS reports of it, telling the topic made for the
    // addresses given.
    if let Some(alerts) = &c.alerts {
        let topic = !alerts.emails.is_empty();
        if topic {
            b.add(
                Cloud::Aws,
                ALERT_TOPIC_ROLE,
                "alerts",
                &[],
                Spec::AlertTopic {
                    emails: alerts.emails.clone(),
                },
            );
        }
        for t in &c.tunnels {
            let connection = format!("aws.vpn_connection.{}", t.pairing.aws_connection);
            let mut depends = vec![connection.as_str()];
            if topic {
                depends.push(ALERT_TOPIC_ROLE);
            }
            b.add(
                Cloud::Aws,
                &format!("aws.tunnel_alarm.{}", t.key),
                &format!("{}-tunnel-down", t.key),
                &depends,
                Spec::TunnelAlarm {
                    tunnel: t.key.clone(),
                    minutes: alerts.minutes,
                    actions: alerts.sns_topic_arn.iter().cloned().collect(),
                    notify_alert_topic: topic,
                },
            );
        }
    }

    // Azure gateway.
    let gateway_role = "azure.vpn_gateway";
    let instances = (0..c.use_case.azure_instances())
        .map(|i| GatewayInstance {
            ip_configuration: format!("vpnConfig{}", i + 1),
            public_ip: gateway_ip(i),
            custom_bgp_ip_addresses: c
                .tunnels
                .iter()
                .filter(|t| t.pairing.azure_instance == i)
                .map(|t| t.pairing.azure_inside_ip)
                .collect(),
        })
        .collect();
    let gateway_spec = Spec::VirtualNetworkGateway {
        sku: c.azure.sku.clone(),
        active_active: c.azure.active_active,
        asn: c.azure.asn,
        instances,
    };
    match &c.azure.existing_gateway {
        Some(g) => b.reference(Cloud::Azure, gateway_role, &g.id, gateway_spec),
        None => {
            let pips: Vec<String> = (0..connections).map(public_ip).collect();
            let mut deps: Vec<&str> = pips.iter().map(String::as_str).collect();
            deps.push("azure.vnet");
            b.add(Cloud::Azure, gateway_role, "vpngw", &deps, gateway_spec);
        }
    }

    // One local network gateway and one connection per AWS tunnel.
    for t in &c.tunnels {
        let vpn = format!("aws.vpn_connection.{}", t.pairing.aws_connection);
        let lng = format!("azure.local_network_gateway.{}", t.key);
        let tunnel_output = if t.pairing.aws_tunnel == 0 {
            "tunnel1_outside_ip"
        } else {
            "tunnel2_outside_ip"
        };
        b.add(
            Cloud::Azure,
            &lng,
            &format!("lng-{}", t.key),
            &[&vpn],
            Spec::LocalNetworkGateway {
                tunnel: t.key.clone(),
                gateway_ip_address: Deferred::after(&vpn, tunnel_output),
                bgp_asn: c.aws.asn,
                bgp_peering_address: t.pairing.aws_inside_ip,
            },
        );
        let shared_key = match t.psk {
            PskSource::Config => Deferred::Known(PskSource::Config),
            PskSource::Generated => Deferred::after(&vpn, "preshared_keys"),
        };
        b.add(
            Cloud::Azure,
            &format!("azure.connection.{}", t.key),
            &format!("conn-{}", t.key),
            &[gateway_role, &lng, &vpn],
            Spec::GatewayConnection {
                tunnel: t.key.clone(),
                azure_instance: t.pairing.azure_instance,
                custom_bgp_ip_address: t.pairing.azure_inside_ip,
                enable_bgp: true,
                shared_key,
            },
        );
    }

    // And a metric alert per tunnel on what Azure reports of its BGP session, telling the
    // action group made for the addresses given.
    if let Some(alerts) = &c.alerts {
        let group = !alerts.emails.is_empty();
        if group {
            b.add(
                Cloud::Azure,
                ACTION_GROUP_ROLE,
                "alerts",
                &[],
                Spec::ActionGroup {
                    short_name: "dxvpn".into(),
                    emails: alerts.emails.clone(),
                },
            );
        }
        for t in &c.tunnels {
            let mut depends = vec![gateway_role];
            if group {
                depends.push(ACTION_GROUP_ROLE);
            }
            b.add(
                Cloud::Azure,
                &format!("azure.tunnel_alert.{}", t.key),
                &format!("{}-bgp-down", t.key),
                &depends,
                Spec::TunnelAlert {
                    tunnel: t.key.clone(),
                    peer: t.pairing.aws_inside_ip,
                    window_minutes: crate::model::alert_window_minutes(alerts.minutes),
                    action_groups: alerts.azure_action_group_id.iter().cloned().collect(),
                    notify_action_group: group,
                },
            );
            let connection = format!("azure.connection.{}", t.key);
            let mut depends = depends.clone();
            depends.push(&connection);
            let connection_name = b
                .resources
                .iter()
                .find(|r| r.role == connection)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            b.add(
                Cloud::Azure,
                &format!("azure.traffic_alert.{}", t.key),
                &format!("{}-no-traffic", t.key),
                &depends,
                Spec::TrafficAlert {
                    tunnel: t.key.clone(),
                    connection: connection_name,
                    window_minutes: crate::model::alert_window_minutes(alerts.minutes),
                    action_groups: alerts.azure_action_group_id.iter().cloned().collect(),
                    notify_action_group: group,
                },
            );
        }
    }

    let dns = build_dns(&mut b);
    let resources = b.resources;
    let cost = crate::cost::estimate(&checked, &resources);
    Plan {
        name: checked.name.clone(),
        use_case: checked.use_case,
        aws: checked.aws.clone(),
        azure: checked.azure.clone(),
        tunnels: checked.tunnels.clone(),
        ipsec_policy: IpsecPolicy::default(),
        resources,
        dns,
        cost,
        warnings: checked.warnings.errors.clone(),
        validate_targets: checked.validate_targets.clone(),
    }
}

/// The instance profile `up` creates for the AWS forwarder host, as the original module's: a
/// role EC2 assumes with AWS's `AmazonSSMManagedInstanceCore`, so that Session Manager reaches
/// the host with no key or open port. Answers its name.
fn add_forwarder_profile(b: &mut Builder<'_>, c: &Checked) -> String {
    let suffix = crate::forwarder_host::aws_profile_suffix(&c.aws.vpc_id);
    let partition = if c.aws.region.starts_with("cn-") {
        "aws-cn"
    } else if c.aws.region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    let name = crate::forwarder_host::aws_profile_name(&c.name, &c.aws.vpc_id);
    b.add(
        Cloud::Aws,
        crate::forwarder_host::AWS_PROFILE_ROLE,
        &suffix,
        &[],
        Spec::InstanceProfile {
            name: name.clone(),
            policy_arns: vec![format!(
                "arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
            )],
        },
    );
    name
}

/// What the AWS forwarder host answers: the Azure zones go to Azure's receiver (when AWS asks
/// Azure at all), every other name to the VPC resolver, for the VPC and the VNet only.
fn aws_forwarder_setup(
    c: &Checked,
    host: &CreatedHost,
    azure_receiver: Option<Ipv4Addr>,
) -> ForwarderSetup {
    let forwards = match azure_receiver {
        Some(target) => c
            .azure
            .private_dns_zones
            .iter()
            .map(|zone| (zone.clone(), vec![target]))
            .collect(),
        None => Vec::new(),
    };
    ForwarderSetup {
        program: host.program,
        forwards,
        upstream: c.aws.vpc_resolver_ip,
        allow: vec![c.aws.vpc_cidr, c.azure.vnet_cidr],
        listen: c.aws_forwarder.ip,
    }
}

/// What the Azure forwarder host `up` creates at `ip` runs: the AWS zones (and AWS's service
/// domains) to the AWS forwarder host, every other name to Azure's resolver.
fn azure_forwarder_setup(c: &Checked, host: &CreatedHost, ip: Ipv4Addr) -> ForwarderSetup {
    let forwards = aws_zones_and_services(c)
        .into_iter()
        .map(|zone| (zone, vec![c.aws_forwarder.ip]))
        .collect();
    ForwarderSetup {
        program: host.program,
        forwards,
        upstream: c.azure.azure_resolver_ip,
        allow: vec![c.aws.vpc_cidr, c.azure.vnet_cidr],
        listen: ip,
    }
}

/// The names the VNet forwards to AWS: the AWS zones, and AWS's own service domains that no
/// zone of the user's already names (none at all when there are no AWS zones).
fn aws_zones_and_services(c: &Checked) -> Vec<String> {
    let mut zones = c.aws.private_dns_zones.clone();
    if zones.is_empty() {
        return zones;
    }
    for zone in &c.aws_service_zones {
        if !zones.contains(zone) {
            zones.push(zone.clone());
        }
    }
    zones
}

/// DNS in both directions. Each direction has a sender (an outbound endpoint with rules) in the
/// asking cloud and a receiver (inbound endpoint or forwarder host) in the answering cloud.
fn build_dns(b: &mut Builder<'_>) -> DnsPlan {
    let c = b.checked;
    let mut forwarding = Vec::new();
    let aws_asks = !c.azure.private_dns_zones.is_empty(); // AWS resolves Azure zones
    let azure_asks = !c.aws.private_dns_zones.is_empty(); // Azure resolves AWS zones
    if !aws_asks && !azure_asks {
        return DnsPlan {
            mode: c.dns_mode,
            forwarding,
        };
    }
    let managed = c.dns_mode == DnsMode::Managed;
    let subnet_ids: Vec<String> = c
        .aws
        .private_subnets
        .iter()
        .take(2)
        .map(|s| s.id.clone())
        .collect();
    let [receive_subnet, send_subnet] = [c.azure_dns_subnets[0], c.azure_dns_subnets[1]];

    // AWS: a security group for every endpoint, and the receiver for Azure's queries.
    b.add(
        Cloud::Aws,
        "aws.dns_security_group",
        "dns-sg",
        &["aws.vpc"],
        Spec::SecurityGroup {
            vpc_id: c.aws.vpc_id.clone(),
            ingress_cidrs: vec![c.aws.vpc_cidr, c.azure.vnet_cidr],
            ports: "tcp+udp 53".into(),
        },
    );
    // Azure: the resolver exists whenever it sends or (managed) receives.
    let needs_azure_resolver = azure_asks || (aws_asks && managed);
    if needs_azure_resolver {
        b.add(
            Cloud::Azure,
            "azure.dns_resolver",
            "dnsresolver",
            &["azure.vnet"],
            Spec::DnsResolver {
                vnet: c.azure.vnet_name.clone(),
            },
        );
    }

    // Direction AWS -> Azure: AWS outbound endpoint + rules, Azure inbound endpoint or forwarder.
    let mut azure_receiver = None;
    if aws_asks {
        let (receiver, receiver_ip) = if managed {
            let ip = nth_host(receive_subnet, 4).unwrap_or(receive_subnet.network());
            b.add(
                Cloud::Azure,
                "azure.dns_subnet.inbound",
                "snet-dns-inbound",
                &["azure.vnet"],
                Spec::Subnet {
                    cidr: receive_subnet,
                    delegation: "Microsoft.Network/dnsResolvers".into(),
                    security_group: None,
                },
            );
            b.add(
                Cloud::Azure,
                "azure.dns_inbound_endpoint",
                "dns-inbound",
                &["azure.dns_resolver", "azure.dns_subnet.inbound"],
                Spec::DnsInboundEndpoint {
                    subnet: "azure.dns_subnet.inbound".into(),
                    private_ip: ip,
                },
            );
            ("azure.dns_inbound_endpoint", ip)
        } else if let Some(ip) = c.azure_forwarder_ip {
            // The user's own forwarder host, in a subnet that exists already.
            b.add(
                Cloud::Azure,
                "azure.dns_forwarder",
                "dns-forwarder",
                &["azure.vnet"],
                Spec::DnsForwarder {
                    ip,
                    subnet: String::new(),
                    upstream: c.azure.azure_resolver_ip,
                },
            );
            ("azure.dns_forwarder", ip)
        } else {
            // A VM dxvpn creates: its own subnet (undelegated: a NIC may not join a delegated
            // one) behind a network security group that lets only DNS in.
            let ip = nth_host(receive_subnet, 4).unwrap_or(receive_subnet.network());
            b.add(
                Cloud::Azure,
                "azure.dns_forwarder_nsg",
                "nsg-dns-forwarder",
                &["azure.vnet"],
                Spec::NetworkSecurityGroup {
                    ingress_cidrs: vec![c.aws.vpc_cidr, c.azure.vnet_cidr],
                    port: 53,
                },
            );
            b.add(
                Cloud::Azure,
                "azure.dns_subnet.forwarder",
                "snet-dns-forwarder",
                &["azure.vnet", "azure.dns_forwarder_nsg"],
                Spec::Subnet {
                    cidr: receive_subnet,
                    delegation: String::new(),
                    security_group: Some("azure.dns_forwarder_nsg".into()),
                },
            );
            let host = &c.azure_forwarder_host;
            b.add(
                Cloud::Azure,
                "azure.dns_forwarder",
                "dns-forwarder",
                &["azure.dns_subnet.forwarder"],
                Spec::ForwarderInstance {
                    ip,
                    subnet_id: "azure.dns_subnet.forwarder".into(),
                    instance_type: host.instance_type.clone(),
                    image: host.image.clone(),
                    instance_profile: None,
                    setup: azure_forwarder_setup(c, host, ip),
                },
            );
            ("azure.dns_forwarder", ip)
        };
        b.add(
            Cloud::Aws,
            "aws.resolver_endpoint.outbound",
            "resolver-outbound",
            &["aws.dns_security_group"],
            Spec::ResolverEndpoint {
                direction: EndpointDirection::Outbound,
                subnet_ids: subnet_ids.clone(),
            },
        );
        for zone in &c.azure.private_dns_zones {
            let rule = format!("aws.resolver_rule.{zone}");
            b.add(
                Cloud::Aws,
                &rule,
                &format!("rule-{}", zone.replace('.', "-")),
                &["aws.resolver_endpoint.outbound"],
                Spec::ResolverRule {
                    domain_name: zone.clone(),
                    target_ips: Deferred::Known(vec![receiver_ip]),
                },
            );
            b.add(
                Cloud::Aws,
                &format!("aws.resolver_rule_association.{zone}"),
                &format!("rule-assoc-{}", zone.replace('.', "-")),
                &[&rule, "aws.vpc"],
                Spec::ResolverRuleAssociation {
                    vpc_id: c.aws.vpc_id.clone(),
                    rule: rule.clone(),
                },
            );
        }
        azure_receiver = Some(receiver_ip);
        forwarding.push(DnsForwarding {
            from: Cloud::Aws,
            to: Cloud::Azure,
            zones: c.azure.private_dns_zones.clone(),
            via: "aws.resolver_endpoint.outbound".into(),
            receiver: receiver.into(),
            targets: Deferred::Known(vec![receiver_ip]),
        });
    }

    // Direction Azure -> AWS: Azure outbound endpoint + ruleset, AWS inbound endpoint or forwarder.
    if azure_asks {
        let (receiver, targets) = if managed {
            b.add(
                Cloud::Aws,
                "aws.resolver_endpoint.inbound",
                "resolver-inbound",
                &["aws.dns_security_group"],
                Spec::ResolverEndpoint {
                    direction: EndpointDirection::Inbound,
                    subnet_ids: subnet_ids.clone(),
                },
            );
            (
                "aws.resolver_endpoint.inbound",
                Deferred::after("aws.resolver_endpoint.inbound", "ip_addresses"),
            )
        } else {
            let ip = c.aws_forwarder.ip;
            let subnet_id = c
                .aws
                .private_subnets
                .iter()
                .find(|s| s.cidr.contains(&ip))
                .map(|s| s.id.clone())
                .unwrap_or_default();
            let mut host_deps = vec!["aws.dns_security_group"];
            let spec = match &c.aws_forwarder.created {
                Some(host) => Spec::ForwarderInstance {
                    ip,
                    subnet_id,
                    instance_type: host.instance_type.clone(),
                    image: host.image.clone(),
                    instance_profile: match &c.aws_forwarder.profile {
                        ProfileChoice::Create => {
                            host_deps.push(crate::forwarder_host::AWS_PROFILE_ROLE);
                            Some(add_forwarder_profile(b, c))
                        }
                        ProfileChoice::Existing(name) => Some(name.clone()),
                        ProfileChoice::Without => None,
                    },
                    setup: aws_forwarder_setup(c, host, azure_receiver),
                },
                None => Spec::DnsForwarder {
                    ip,
                    subnet: subnet_id,
                    upstream: c.aws.vpc_resolver_ip,
                },
            };
            b.add(
                Cloud::Aws,
                "aws.dns_forwarder",
                "dns-forwarder",
                &host_deps,
                spec,
            );
            ("aws.dns_forwarder", Deferred::Known(vec![ip]))
        };
        b.add(
            Cloud::Azure,
            "azure.dns_subnet.outbound",
            "snet-dns-outbound",
            &["azure.vnet"],
            Spec::Subnet {
                cidr: send_subnet,
                delegation: "Microsoft.Network/dnsResolvers".into(),
                security_group: None,
            },
        );
        b.add(
            Cloud::Azure,
            "azure.dns_outbound_endpoint",
            "dns-outbound",
            &["azure.dns_resolver", "azure.dns_subnet.outbound"],
            Spec::DnsOutboundEndpoint {
                subnet: "azure.dns_subnet.outbound".into(),
            },
        );
        b.add(
            Cloud::Azure,
            "azure.dns_forwarding_ruleset",
            "dns-ruleset",
            &["azure.dns_outbound_endpoint"],
            Spec::DnsForwardingRuleset {
                outbound_endpoint: "azure.dns_outbound_endpoint".into(),
            },
        );
        let zones = aws_zones_and_services(c);
        for zone in &zones {
            let mut deps = vec!["azure.dns_forwarding_ruleset"];
            if managed {
                deps.push(receiver);
            }
            b.add(
                Cloud::Azure,
                &format!("azure.dns_forwarding_rule.{zone}"),
                &format!("fwd-rule-{}", zone.replace('.', "-")),
                &deps,
                Spec::DnsForwardingRule {
                    domain_name: format!("{zone}."),
                    target_ips: targets.clone(),
                },
            );
        }
        b.add(
            Cloud::Azure,
            "azure.dns_vnet_link",
            "dns-vnet-link",
            &["azure.dns_forwarding_ruleset", "azure.vnet"],
            Spec::DnsVnetLink {
                vnet: c.azure.vnet_name.clone(),
            },
        );
        forwarding.push(DnsForwarding {
            from: Cloud::Azure,
            to: Cloud::Aws,
            zones,
            via: "azure.dns_outbound_endpoint".into(),
            receiver: receiver.into(),
            targets,
        });
    }
    DnsPlan {
        mode: c.dns_mode,
        forwarding,
    }
}
