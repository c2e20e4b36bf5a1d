//! The topology as a Mermaid flowchart: both clouds, gateways, every tunnel with its inside
//! addresses and BGP ASNs, and the DNS forwarding arrows.

use std::fmt::Write;

use crate::model::{Action, Cloud, Deferred, Plan, Spec};

/// Renders `plan` as a Mermaid `flowchart LR`.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    let aws = &plan.aws;
    let azure = &plan.azure;
    let node = |role: &str| role.replace(['.', '-', ':'], "_");

    let _ = writeln!(
        out,
        "  subgraph aws[\"AWS {} · VPC {} {}\"]",
        aws.region, aws.vpc_id, aws.vpc_cidr
    );
    for r in plan.resources.iter().filter(|r| r.cloud == Cloud::Aws) {
        let label = match &r.spec {
            Spec::VpnGateway { amazon_side_asn } => {
                format!("Virtual private gateway<br/>AS {amazon_side_asn}")
            }
            Spec::CustomerGateway { bgp_asn, .. } => {
                format!("Customer gateway {}<br/>AS {bgp_asn}", index(&r.role))
            }
            Spec::VpnConnection { connection, .. } => format!("VPN connection {}", connection + 1),
            Spec::RoutePropagation { route_table_id } => {
                format!("Route table {route_table_id}<br/>propagation on")
            }
            Spec::ResolverEndpoint { direction, .. } => {
                format!("Route 53 Resolver<br/>{direction:?} endpoint")
            }
            Spec::DnsForwarder { ip, .. } => format!("DNS forwarder<br/>{ip}"),
            Spec::ForwarderInstance {
                ip, instance_type, ..
            } => {
                format!("DNS forwarder host<br/>{instance_type} {ip}")
            }
            Spec::Vpc { cidr, .. } => format!("VPC {cidr}<br/>resolver {}", aws.vpc_resolver_ip),
            _ => continue,
        };
        let _ = writeln!(out, "    {}[\"{label}\"]", node(&r.role));
    }
    out.push_str("  end\n");

    let _ = writeln!(
        out,
        "  subgraph azure[\"Azure {} · VNet {} {}\"]",
        azure.location, azure.vnet_name, azure.vnet_cidr
    );
    let gateway = plan
        .resources
        .iter()
        .find(|r| r.role == "azure.vpn_gateway");
    if let Some(Spec::VirtualNetworkGateway {
        sku,
        asn,
        instances,
        active_active,
    }) = gateway.map(|g| &g.spec)
    {
        let existing = if gateway.is_some_and(|g| g.action == Action::Reference) {
            " (existing)"
        } else {
            ""
        };
        let mode = if *active_active {
            "active-active"
        } else {
            "active-standby"
        };
        let _ = writeln!(
            out,
            "    subgraph azure_vpn_gateway[\"VPN gateway {sku}{existing}<br/>AS {asn} · {mode}\"]"
        );
        for (i, instance) in instances.iter().enumerate() {
            let ip = match &instance.public_ip {
                Deferred::Known(ip) => ip.to_string(),
                Deferred::After { .. } => format!("public IP {}", i + 1),
            };
            let _ = writeln!(
                out,
                "      azure_instance_{i}[\"Instance {} · {}<br/>{ip}\"]",
                i + 1,
                instance.ip_configuration
            );
        }
        out.push_str("    end\n");
    }
    for r in plan.resources.iter().filter(|r| r.cloud == Cloud::Azure) {
        let label = match &r.spec {
            Spec::VirtualNetwork { cidr, .. } => {
                format!("VNet {cidr}<br/>resolver {}", azure.azure_resolver_ip)
            }
            Spec::DnsInboundEndpoint { private_ip, .. } => {
                format!("DNS resolver<br/>inbound endpoint {private_ip}")
            }
            Spec::DnsOutboundEndpoint { .. } => "DNS resolver<br/>outbound endpoint".to_owned(),
            Spec::DnsForwarder { ip, .. } => format!("DNS forwarder<br/>{ip}"),
            Spec::ForwarderInstance {
                ip, instance_type, ..
            } => format!("DNS forwarder VM<br/>{instance_type} {ip}"),
            _ => continue,
        };
        let _ = writeln!(out, "    {}[\"{label}\"]", node(&r.role));
    }
    out.push_str("  end\n");

    // AWS wiring.
    out.push_str("  aws_vpc --- aws_vpn_gateway\n");
    for r in &plan.resources {
        match &r.spec {
            Spec::VpnConnection { connection, .. } => {
                let _ = writeln!(out, "  aws_vpn_gateway --- {}", node(&r.role));
                let _ = writeln!(
                    out,
                    "  aws_customer_gateway_{connection} --- {}",
                    node(&r.role)
                );
            }
            Spec::RoutePropagation { .. } => {
                let _ = writeln!(out, "  aws_vpn_gateway -.-> {}", node(&r.role));
            }
            _ => {}
        }
    }
    out.push_str("  azure_vnet --- azure_vpn_gateway\n");

    // Tunnels.
    for t in &plan.tunnels {
        let p = &t.pairing;
        let _ = writeln!(
            out,
            "  aws_vpn_connection_{} <==>|\"{} {}<br/>AWS {} AS {} ⇄ Azure {} AS {}\"| azure_instance_{}",
            p.aws_connection,
            t.key,
            p.inside_cidr,
            p.aws_inside_ip,
            aws.asn,
            p.azure_inside_ip,
            azure.asn,
            p.azure_instance
        );
    }

    // DNS forwarding.
    for f in &plan.dns.forwarding {
        let _ = writeln!(
            out,
            "  {} -.->|\"DNS {}\"| {}",
            node(&f.via),
            f.zones.join(", "),
            node(&f.receiver)
        );
    }
    out
}

fn index(role: &str) -> usize {
    role.rsplit('.')
        .next()
        .and_then(|i| i.parse::<usize>().ok())
        .map_or(0, |i| i + 1)
}
