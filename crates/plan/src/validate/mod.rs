//! Config -> typed, checked inputs, or every problem at once.
//!
//! Each check names the config path, a stable rule id, what is wrong and a fix. Checks that need
//! a value which is itself invalid are skipped rather than reported twice.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use dxvpn_cidr::inside::{InsideCidrError, check_inside_cidr};
use dxvpn_cidr::{CidrError, Ipv4Net, contains, free_subnets, nth_host, overlaps, parse_network};
use dxvpn_tunnel::asn::{self, AsnError};
use dxvpn_tunnel::psk::{PresharedKey, PskError};
use dxvpn_tunnel::{UseCase, pair_tunnels};

use crate::config::{Config, DnsMode, TargetConfig};
use crate::cost::PriceTable;
use crate::model::{
    AwsSide, AwsSubnet, AzureSide, Cloud, ExistingGateway, PskSource, Tunnel, ValidateTarget,
};
use crate::problem::Problems;

mod alerts;
mod fields;
mod forwarder;

pub use fields::is_dns_name;
use fields::*;
pub(crate) use forwarder::{
    AwsForwarder, CreatedHost, DEFAULT_INSTANCE_TYPE, DEFAULT_VM_SIZE, ProfileChoice,
    aws_service_zones, check_aws_forwarder, check_azure_forwarder_host,
};

/// Tags dxvpn sets itself on every resource: `dxvpn:deployment`, `dxvpn:role`, and on AWS
/// `dxvpn:vpc` and `Name`.
pub(crate) const OWN_TAGS: usize = 4;
/// Both clouds allow 50 tags per resource.
const MAX_TAGS: usize = 50;
/// Azure resolver endpoints refuse subnets in 10.0.1.0 - 10.0.16.255 (a platform reservation),
/// written here as the CIDRs that cover exactly that range.
const AZURE_RESOLVER_FORBIDDEN: [Ipv4Net; 5] = [
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 1, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 2, 0), 23),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 4, 0), 22),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 8, 0), 21),
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 16, 0), 24),
];
/// Size of each Azure DNS resolver / forwarder subnet.
pub(crate) const DNS_SUBNET_PREFIX: u8 = 28;

/// Checked inputs, ready to be turned into resources.
#[derive(Debug)]
pub(crate) struct Checked {
    pub name: String,
    pub use_case: UseCase,
    pub aws: AwsSide,
    pub azure: AzureSide,
    pub tunnels: Vec<Tunnel>,
    pub dns_mode: DnsMode,
    pub aws_forwarder: AwsForwarder,
    /// AWS service domains forwarded from the VNet with the AWS zones.
    pub aws_service_zones: Vec<String>,
    /// The Azure forwarder host the user already runs, if any (else one in a new subnet).
    pub azure_forwarder_ip: Option<Ipv4Addr>,
    /// The VM `up` creates when `azure_forwarder_ip` is not given.
    pub azure_forwarder_host: CreatedHost,
    /// Free /28s for the Azure DNS side: [0] receives queries (inbound endpoint or forwarder),
    /// [1] sends them (outbound endpoint).
    pub azure_dns_subnets: Vec<Ipv4Net>,
    pub tags: BTreeMap<String, String>,
    pub prices: PriceTable,
    pub warnings: Problems,
    pub validate_targets: Vec<ValidateTarget>,
    /// The tunnel alarms `up` creates, if any.
    pub alerts: Option<alerts::Alerts>,
}

pub(crate) fn check(config: Config) -> Result<Checked, Problems> {
    let mut p = Problems::default();
    let mut warnings = Problems::default();
    let use_case = config.use_case;

    check_name(&mut p, &config.name);

    // AWS
    let a = &config.aws;
    check_aws_region(&mut p, &a.region);
    check_aws_id(&mut p, "aws.vpc_id", "vpc", &a.vpc_id);
    let vpc_cidr = cidr(&mut p, "aws.vpc_cidr", &a.vpc_cidr);
    if a.route_table_ids.is_empty() {
        p.add(
            "aws.route_table_ids",
            "required",
            "no route table is given, so no AWS subnet would get a route to Azure",
            "list the route tables of the subnets that must reach Azure, e.g. [\"rtb-0123456789abcdef0\"]",
        );
    }
    for (i, id) in a.route_table_ids.iter().enumerate() {
        check_aws_id(&mut p, &format!("aws.route_table_ids[{i}]"), "rtb", id);
    }
    duplicates(&mut p, "aws.route_table_ids", &a.route_table_ids);
    for (i, id) in a.private_subnet_ids.iter().enumerate() {
        check_aws_id(
            &mut p,
            &format!("aws.private_subnet_ids[{i}]"),
            "subnet",
            id,
        );
    }
    duplicates(&mut p, "aws.private_subnet_ids", &a.private_subnet_ids);
    if a.private_subnet_ids.len() != a.private_subnet_cidrs.len() {
        p.add(
            "aws.private_subnet_cidrs",
            "subnet-count-mismatch",
            format!(
                "{} subnet id(s) but {} CIDR(s)",
                a.private_subnet_ids.len(),
                a.private_subnet_cidrs.len()
            ),
            "give one CIDR per subnet id, in the same order",
        );
    }
    let mut subnet_cidrs: Vec<Option<Ipv4Net>> = Vec::new();
    for (i, text) in a.private_subnet_cidrs.iter().enumerate() {
        let path = format!("aws.private_subnet_cidrs[{i}]");
        let net = cidr(&mut p, &path, text);
        if let (Some(net), Some(vpc)) = (net, vpc_cidr) {
            inside_network(&mut p, &path, net, vpc, "aws.vpc_cidr");
        }
        if let Some(net) = net
            && let Some(j) = subnet_cidrs
                .iter()
                .position(|o| o.is_some_and(|o| overlaps(o, net)))
        {
            p.add(
                &path,
                "subnet-overlap",
                format!("{net} overlaps aws.private_subnet_cidrs[{j}]"),
                "AWS subnets never overlap: copy the CIDRs from the console or `aws ec2 describe-subnets`",
            );
        }
        subnet_cidrs.push(net);
    }
    let aws_asn = asn_value(&mut p, "aws.asn", a.asn);
    if let Some(n) = aws_asn
        && let Err(e) = asn::check_aws_gateway_asn(n)
    {
        asn_problem(&mut p, "aws.asn", e);
    }
    let aws_zones = zones(&mut p, "aws.private_dns_zones", &a.private_dns_zones);
    check_endpoint(&mut p, "aws.endpoint_url", a.endpoint_url.as_deref());

    // Azure
    let z = &config.azure;
    check_guid(&mut p, "azure.subscription_id", &z.subscription_id);
    check_resource_group(&mut p, &z.resource_group);
    check_location(&mut p, &z.location);
    check_azure_name(&mut p, "azure.vnet_name", &z.vnet_name);
    let vnet_cidr = cidr(&mut p, "azure.vnet_cidr", &z.vnet_cidr);
    if let (Some(vpc), Some(vnet)) = (vpc_cidr, vnet_cidr)
        && overlaps(vpc, vnet)
    {
        p.add(
            "azure.vnet_cidr",
            "networks-overlap",
            format!("the VNet {vnet} overlaps the VPC {vpc}; packets for the other cloud would stay local"),
            "the two networks must not share addresses: pick a VNet range outside aws.vpc_cidr (e.g. 10.51.0.0/16 beside 10.1.0.0/16)",
        );
    }
    let gateway_subnet = cidr(&mut p, "azure.gateway_subnet_cidr", &z.gateway_subnet_cidr);
    if let Some(gw) = gateway_subnet {
        if let Some(vnet) = vnet_cidr {
            inside_network(
                &mut p,
                "azure.gateway_subnet_cidr",
                gw,
                vnet,
                "azure.vnet_cidr",
            );
        }
        if gw.prefix_len() > 27 {
            p.add(
                "azure.gateway_subnet_cidr",
                "gateway-subnet-size",
                format!("GatewaySubnet {gw} is smaller than /27"),
                "Azure needs a GatewaySubnet of /27 or larger for VPN gateways (active-active and coexistence need the room)",
            );
        }
    }
    let mut used_subnets: Vec<Ipv4Net> = gateway_subnet.into_iter().collect();
    for (i, text) in z.used_subnet_cidrs.iter().enumerate() {
        let path = format!("azure.used_subnet_cidrs[{i}]");
        if let Some(net) = cidr(&mut p, &path, text) {
            if let Some(vnet) = vnet_cidr {
                inside_network(&mut p, &path, net, vnet, "azure.vnet_cidr");
            }
            used_subnets.push(net);
        }
    }
    let azure_asn = asn_value(&mut p, "azure.asn", z.asn);
    if let Some(n) = azure_asn
        && let Err(e) = asn::check_azure_gateway_asn(n)
    {
        asn_problem(&mut p, "azure.asn", e);
    }
    if let (Some(aws), Some(azure)) = (aws_asn, azure_asn)
        && let Err(e) = asn::check_asn_pair(aws, azure)
    {
        asn_problem(&mut p, "azure.asn", e);
    }
    let sku = check_sku(
        &mut p,
        &mut warnings,
        z.sku.as_deref(),
        use_case,
        z.existing_gateway_id.is_some(),
    );
    let azure_zones = zones(&mut p, "azure.private_dns_zones", &z.private_dns_zones);
    check_endpoint(&mut p, "azure.endpoint", z.endpoint.as_deref());
    let existing_gateway = check_existing_gateway(
        &mut p,
        z.existing_gateway_id.as_deref(),
        &z.existing_gateway_public_ips,
        use_case,
    );

    // DNS
    check_forwarding_loops(&mut p, &aws_zones, &azure_zones);
    let dns_mode = config.dns.mode.unwrap_or(match use_case {
        UseCase::Development => DnsMode::Forwarder,
        UseCase::HighAvailability => DnsMode::Managed,
    });
    let any_dns = !aws_zones.is_empty() || !azure_zones.is_empty();
    // Route 53 Resolver endpoints need two IPs in two subnets; the forwarder host needs one.
    if any_dns && a.private_subnet_ids.len() < 2 {
        p.add(
            "aws.private_subnet_ids",
            "dns-endpoint-subnets",
            format!(
                "{} private subnet(s) given; Route 53 Resolver endpoints need addresses in 2 subnets",
                a.private_subnet_ids.len()
            ),
            "list two private subnets (ideally in two availability zones) with their CIDRs, or leave both private_dns_zones lists empty",
        );
    }
    let aws_forwarder = check_aws_forwarder(&mut p, &config.dns, &subnet_cidrs);
    let azure_forwarder_host = check_azure_forwarder_host(&mut p, &config.dns);
    let azure_forwarder_ip = config.dns.azure_forwarder_ip.as_deref().and_then(|text| {
        address_in(
            &mut p,
            ("dns.azure_forwarder_ip", "forwarder-in-vnet", text),
            |ip| {
                vnet_cidr.is_some_and(|v| v.contains(ip))
                    && !gateway_subnet.is_some_and(|g| g.contains(ip))
            },
            |ip| format!("{ip} is not in azure.vnet_cidr outside the GatewaySubnet"),
            "give the address of the forwarder VM or container in the VNet",
        )
    });
    let mut azure_dns_subnets = Vec::new();
    if any_dns && let Some(vnet) = vnet_cidr {
        let mut blocked = used_subnets.clone();
        blocked.extend(AZURE_RESOLVER_FORBIDDEN);
        match free_subnets(vnet, &blocked, DNS_SUBNET_PREFIX, 2) {
            Ok(found) => azure_dns_subnets = found,
            Err(e) => p.add(
                "azure.vnet_cidr",
                "dns-resolver-subnets-free",
                format!("{e}: the DNS resolver (or forwarder) needs two free /28 subnets in the VNet"),
                "add an address prefix with free space to the VNet, free two /28s, or leave both private_dns_zones lists empty",
            ),
        }
    }
    if dns_mode == DnsMode::Managed && use_case == UseCase::Development && any_dns {
        warnings.add(
            "dns.mode",
            "cost-managed-dns-in-development",
            "managed inbound endpoints cost about 330 USD a month more than forwarder hosts",
            "use dns.mode = \"forwarder\" for development unless you need the managed service",
        );
    }

    let validate_targets = check_validate_targets(
        &mut p,
        &mut warnings,
        &config.validate.targets,
        [(vpc_cidr, &aws_zones), (vnet_cidr, &azure_zones)],
    );

    // Tunnels
    let tunnels = check_tunnels(&mut p, &mut warnings, &config, use_case);
    let alerts = alerts::check_alerts(&mut p, &config.alerts, use_case, &a.region);
    check_tags(&mut p, &config.tags);
    let prices = PriceTable::with_overrides(&mut p, &config.prices);

    if !p.is_empty() {
        return Err(p);
    }
    // Every Option below is Some when no problem was recorded; fall back defensively anyway.
    let (Some(vpc_cidr), Some(vnet_cidr), Some(gateway_subnet), Some(aws_asn), Some(azure_asn)) =
        (vpc_cidr, vnet_cidr, gateway_subnet, aws_asn, azure_asn)
    else {
        return Err(p);
    };
    if use_case == UseCase::Development && existing_gateway.is_none() {
        warnings.add(
            "use_case",
            "active-standby-apipa",
            "the development gateway is active-standby with two custom APIPA addresses on one instance; dxvpn names each tunnel's own address on its connection so that BGP runs on both",
            "if your gateway accepts only one custom APIPA address, BGP runs on tunnel 1 only; high_availability avoids this",
        );
    }
    let private_subnets = a
        .private_subnet_ids
        .iter()
        .zip(subnet_cidrs.iter().flatten())
        .map(|(id, cidr)| AwsSubnet {
            id: id.clone(),
            cidr: *cidr,
        })
        .collect();
    Ok(Checked {
        name: config.name.clone(),
        use_case,
        aws: AwsSide {
            region: a.region.clone(),
            vpc_id: a.vpc_id.clone(),
            vpc_cidr,
            vpc_resolver_ip: nth_host(vpc_cidr, 2).unwrap_or(vpc_cidr.network()),
            route_table_ids: a.route_table_ids.clone(),
            private_subnets,
            asn: aws_asn,
            private_dns_zones: aws_zones,
            endpoint_url: a.endpoint_url.clone(),
        },
        azure: AzureSide {
            subscription_id: z.subscription_id.to_lowercase(),
            resource_group: z.resource_group.clone(),
            location: z.location.clone(),
            vnet_name: z.vnet_name.clone(),
            vnet_cidr,
            gateway_subnet_cidr: gateway_subnet,
            azure_resolver_ip: Ipv4Addr::new(168, 63, 129, 16),
            asn: azure_asn,
            sku,
            active_active: use_case == UseCase::HighAvailability,
            private_dns_zones: azure_zones,
            existing_gateway,
            endpoint: z.endpoint.clone(),
        },
        tunnels,
        dns_mode,
        aws_forwarder,
        aws_service_zones: aws_service_zones(&config.dns, &a.region),
        azure_forwarder_ip,
        azure_forwarder_host,
        azure_dns_subnets,
        tags: config.tags.clone(),
        prices,
        warnings,
        validate_targets,
        alerts,
    })
}

/// `[[validate.targets]]`: each host inside its cloud's network, each name well formed and
/// (a warning otherwise) inside a zone of that cloud that the other cloud forwards.
/// `sides` is (network, zones) of AWS then Azure.
fn check_validate_targets(
    p: &mut Problems,
    warnings: &mut Problems,
    targets: &[TargetConfig],
    sides: [(Option<Ipv4Net>, &[String]); 2],
) -> Vec<ValidateTarget> {
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let path = format!("validate.targets[{i}]");
        let (network, zones) = match t.cloud {
            Cloud::Aws => sides[0],
            Cloud::Azure => sides[1],
        };
        let network_key = match t.cloud {
            Cloud::Aws => "aws.vpc_cidr",
            Cloud::Azure => "azure.vnet_cidr",
        };
        let before = p.errors.len();
        if t.address.is_none() && t.name.is_none() {
            p.add(
                &path,
                "target-empty",
                "a target needs an address, a name, or both",
                "add address = \"10.1.1.10\" (pinged) and/or name = \"vm1.azure.internal\" (resolved)",
            );
        }
        let address = t.address.as_deref().and_then(|text| {
            address_in(
                p,
                (&format!("{path}.address"), "target-in-cloud", text),
                |ip| network.is_none_or(|n| n.contains(ip)),
                |ip| {
                    format!(
                        "{ip} is not in {network_key}, so it is not in {}",
                        t.cloud.as_str()
                    )
                },
                &format!("give a private address of a host in {network_key}, or change `cloud`"),
            )
        });
        let name = t
            .name
            .as_deref()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        if let Some(n) = &name {
            if !is_dns_name(n) {
                p.add(
                    format!("{path}.name"),
                    "dns-name",
                    format!("`{n}` is not a DNS name"),
                    "use labels of letters, digits and '-' separated by dots, e.g. vm1.azure.internal",
                );
            } else if !zones
                .iter()
                .any(|z| n == z || n.ends_with(&format!(".{z}")))
            {
                warnings.add(
                    format!("{path}.name"),
                    "name-outside-forwarded-zones",
                    format!(
                        "`{n}` is in none of {}.private_dns_zones, so the other cloud does not forward it",
                        t.cloud.as_str()
                    ),
                    format!("add its zone to {}.private_dns_zones, or expect this lookup to fail", t.cloud.as_str()),
                );
            }
        }
        if !t.tcp_ports.is_empty() && t.address.is_none() {
            p.add(
                format!("{path}.tcp_ports"),
                "tcp-needs-address",
                "TCP ports are checked at the target's address, and none is given",
                "add address = \"...\" to this target",
            );
        }
        if let Some(j) = t.tcp_ports.iter().position(|port| *port == 0) {
            p.add(
                format!("{path}.tcp_ports[{j}]"),
                "port-range",
                "port 0 cannot be connected to",
                "use a port from 1 to 65535 that the host listens on, e.g. 22",
            );
        }
        if p.errors.len() == before {
            out.push(ValidateTarget {
                cloud: t.cloud,
                address,
                name,
                tcp_ports: t.tcp_ports.clone(),
                ping: t.ping,
            });
        }
    }
    out
}

/// A zone forwarded both ways (or nested inside one forwarded the other way) loops between
/// the clouds' resolvers until the query times out.
fn check_forwarding_loops(p: &mut Problems, aws: &[String], azure: &[String]) {
    let within = |a: &str, b: &str| a == b || a.ends_with(&format!(".{b}"));
    for (j, az) in azure.iter().enumerate() {
        if let Some(aw) = aws.iter().find(|aw| within(az, aw) || within(aw, az)) {
            p.add(
                format!("azure.private_dns_zones[{j}]"),
                "dns-forwarding-loop",
                format!("`{az}` (Azure) and `{aw}` (AWS) overlap, so queries would be forwarded back and forth between the clouds"),
                "each zone must live in one cloud: remove it from one of the two private_dns_zones lists",
            );
        }
    }
}

/// An address that must parse and satisfy `inside`; a problem at `path` otherwise.
pub(super) fn address_in(
    p: &mut Problems,
    (path, rule, text): (&str, &'static str, &str),
    inside: impl Fn(&Ipv4Addr) -> bool,
    outside: impl Fn(Ipv4Addr) -> String,
    fix: &str,
) -> Option<Ipv4Addr> {
    match text.parse::<Ipv4Addr>() {
        Ok(ip) if inside(&ip) => Some(ip),
        Ok(ip) => {
            p.add(path, rule, outside(ip), fix);
            None
        }
        Err(_) => {
            p.add(
                path,
                "ip-format",
                format!("`{text}` is not an IPv4 address"),
                "write it as a.b.c.d",
            );
            None
        }
    }
}

fn check_tunnels(
    p: &mut Problems,
    warnings: &mut Problems,
    config: &Config,
    use_case: UseCase,
) -> Vec<Tunnel> {
    let wanted = use_case.tunnel_count();
    let t = &config.tunnels;
    for (path, len) in [
        ("tunnels.inside_cidrs", t.inside_cidrs.len()),
        ("tunnels.preshared_keys", t.preshared_keys.len()),
    ] {
        if len != 0 && len != wanted {
            p.add(
                path,
                "tunnel-count",
                format!("{len} value(s) given; {} has {wanted} tunnels", use_case.as_str()),
                format!("give exactly {wanted} values in tunnel order (connection 1 tunnel 1 first), or none to let dxvpn choose"),
            );
        }
    }
    let mut chosen: Vec<Ipv4Net> = Vec::new();
    for (i, text) in t.inside_cidrs.iter().enumerate() {
        let path = format!("tunnels.inside_cidrs[{i}]");
        let Some(net) = cidr(p, &path, text) else {
            continue;
        };
        if let Err(e) = check_inside_cidr(net) {
            let (rule, hint) = match e {
                InsideCidrError::NotSlash30(_) => (
                    "inside-cidr-slash30",
                    "each tunnel needs exactly one /30, e.g. 169.254.21.0/30",
                ),
                InsideCidrError::OutsideAzureApipa(_) => (
                    "inside-cidr-apipa",
                    "Azure accepts custom BGP addresses only in 169.254.21.0-169.254.22.255, e.g. 169.254.21.0/30",
                ),
                InsideCidrError::AwsReserved(_) => (
                    "inside-cidr-aws-reserved",
                    "AWS reserves 169.254.0.0/30-169.254.5.0/30 and 169.254.169.252/30; use 169.254.21.0/30 and up",
                ),
            };
            p.add(&path, rule, e.to_string(), hint);
        }
        if let Some(j) = chosen.iter().position(|c| overlaps(*c, net)) {
            p.add(
                &path,
                "inside-cidr-unique",
                format!("{net} overlaps tunnels.inside_cidrs[{j}]"),
                "every tunnel needs its own /30",
            );
        }
        chosen.push(net);
    }
    let mut keys = Vec::new();
    for (i, key) in t.preshared_keys.iter().enumerate() {
        let path = format!("tunnels.preshared_keys[{i}]");
        match PresharedKey::parse(key) {
            Ok(k) => keys.push(k),
            Err(e) => {
                let hint = match e {
                    PskError::Length(_) => {
                        "use 8 to 64 characters, or remove preshared_keys to let dxvpn generate them"
                    }
                    PskError::Character { .. } => {
                        "use only letters, digits, '.' and '_' ('+' and '/' are refused by AWS)"
                    }
                    PskError::LeadingZero => "do not start the key with 0",
                };
                p.add(&path, "psk-aws-rules", e.to_string(), hint);
            }
        }
    }
    if keys.len() == wanted
        && keys
            .iter()
            .enumerate()
            .any(|(i, k)| keys[i + 1..].contains(k))
    {
        warnings.add(
            "tunnels.preshared_keys",
            "psk-reused",
            "the same key is used on several tunnels",
            "give each tunnel its own key, or let dxvpn generate them",
        );
    }
    let usable_chosen = chosen.len() == wanted && t.inside_cidrs.len() == wanted;
    let pairs = match pair_tunnels(use_case, if usable_chosen { &chosen } else { &[] }) {
        Ok(pairs) => pairs,
        Err(_) => return Vec::new(), // unreachable with at most 4 tunnels and nothing taken
    };
    let use_keys = keys.len() == wanted && t.preshared_keys.len() == wanted;
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, pairing)| Tunnel {
            key: pairing.key(),
            pairing,
            psk: if use_keys {
                PskSource::Config
            } else {
                PskSource::Generated
            },
            preshared_key: if use_keys { keys.get(i).cloned() } else { None },
        })
        .collect()
}

fn check_tags(p: &mut Problems, tags: &BTreeMap<String, String>) {
    if tags.len() + OWN_TAGS > MAX_TAGS {
        p.add(
            "tags",
            "tag-count",
            format!("{} tags given; with dxvpn's own {OWN_TAGS} that exceeds the limit of {MAX_TAGS} per resource", tags.len()),
            format!("keep at most {} tags", MAX_TAGS - OWN_TAGS),
        );
    }
    let mut folded = BTreeMap::new();
    for (key, value) in tags {
        let path = format!("tags.{key}");
        let lower = key.to_lowercase();
        if key.is_empty() || key.chars().count() > 127 {
            p.add(
                &path,
                "tag-key-length",
                "tag keys must have 1 to 127 characters (AWS)",
                "shorten the key",
            );
        }
        if value.chars().count() > 256 {
            p.add(
                &path,
                "tag-value-length",
                "tag values may have at most 256 characters (both clouds)",
                "shorten the value",
            );
        }
        if ["aws:", "dxvpn:", "microsoft", "azure", "windows"]
            .iter()
            .any(|r| lower.starts_with(r))
        {
            p.add(
                &path,
                "tag-key-reserved",
                format!("`{key}` starts with a reserved prefix"),
                "keys may not start with aws: (AWS), microsoft/azure/windows (Azure) or dxvpn: (dxvpn's own tags)",
            );
        }
        if key.chars().any(|c| "<>%&\\?/".contains(c)) {
            p.add(
                &path,
                "tag-key-characters",
                format!("`{key}` contains a character Azure refuses in tag names"),
                "remove < > % & \\ ? / from the key",
            );
        }
        if let Some(previous) = folded.insert(lower, key) {
            p.add(
                &path,
                "tag-key-case-duplicate",
                format!(
                    "`{key}` and `{previous}` differ only in case; Azure treats them as one tag"
                ),
                "keep one of them",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_address_check() {
        assert!(is_public("20.1.2.3".parse().unwrap()));
        assert!(!is_public("10.1.2.3".parse().unwrap()));
        assert!(!is_public("169.254.21.1".parse().unwrap()));
    }
}
