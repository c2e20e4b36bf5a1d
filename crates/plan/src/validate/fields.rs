//! Checks of one field each: its syntax and the cloud's rule for it, reported with the field's
//! path, the rule and a fix.

use super::*;

pub(super) fn cidr(p: &mut Problems, path: &str, text: &str) -> Option<Ipv4Net> {
    match parse_network(text) {
        Ok(net) => Some(net),
        Err(CidrError::Malformed { .. }) => {
            p.add(
                path,
                "cidr-format",
                format!("`{text}` is not an IPv4 network in CIDR notation"),
                "write it as a.b.c.d/len, e.g. 10.1.0.0/16",
            );
            None
        }
        Err(CidrError::HostBitsSet { network, .. }) => {
            p.add(
                path,
                "cidr-host-bits",
                format!("`{text}` has host bits set"),
                format!("did you mean {network}?"),
            );
            None
        }
    }
}

pub(super) fn inside_network(
    p: &mut Problems,
    path: &str,
    net: Ipv4Net,
    outer: Ipv4Net,
    outer_path: &str,
) {
    if !contains(outer, net) {
        p.add(
            path,
            "subnet-inside-network",
            format!("{net} is not inside {outer_path} ({outer})"),
            format!("use a subnet of {outer}, or correct {outer_path}"),
        );
    }
}

pub(super) fn duplicates(p: &mut Problems, path: &str, values: &[String]) {
    let mut seen = BTreeSet::new();
    for (i, v) in values.iter().enumerate() {
        if !seen.insert(v.to_lowercase()) {
            p.add(
                format!("{path}[{i}]"),
                "unique",
                format!("`{v}` is listed twice"),
                "remove the repeated entry",
            );
        }
    }
}

pub(super) fn check_name(p: &mut Problems, name: &str) {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        p.add(
            "name",
            "name-format",
            format!("`{name}` is not a valid deployment name"),
            "use 1-32 lowercase letters, digits and '-', starting with a letter (it prefixes every resource name), e.g. \"dx-dev\"",
        );
    }
}

pub(super) fn check_aws_region(p: &mut Problems, region: &str) {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if !ok {
        p.add(
            "aws.region",
            "aws-region-format",
            format!("`{region}` is not an AWS region code"),
            "use a region code such as eu-south-1 or us-east-1",
        );
    }
}

pub(super) fn check_aws_id(p: &mut Problems, path: &str, prefix: &str, id: &str) {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
    if !ok {
        p.add(
            path,
            "aws-id-format",
            format!("`{id}` is not an AWS {prefix} id"),
            format!(
                "use the id as AWS shows it: {prefix}- followed by 8 or 17 lowercase hex digits"
            ),
        );
    }
}

pub(super) fn asn_value(p: &mut Problems, path: &str, value: i64) -> Option<u32> {
    match u32::try_from(value) {
        Ok(n) => Some(n),
        Err(_) => {
            p.add(
                path,
                "asn-range",
                format!("{value} is not an ASN"),
                "ASNs are whole numbers from 1 to 4294967294",
            );
            None
        }
    }
}

pub(super) fn asn_problem(p: &mut Problems, path: &str, e: AsnError) {
    let (rule, hint) = match e {
        AsnError::NotAwsPrivate(_) => (
            "aws-asn-private",
            "use a private ASN, e.g. 64512 (the AWS default)",
        ),
        AsnError::AzureReserved(_) => (
            "azure-asn-reserved",
            "use a private ASN that Azure does not reserve, e.g. 65000",
        ),
        AsnError::AwsCustomerGatewayReserved(_) => (
            "aws-customer-gateway-asn-reserved",
            "this ASN is also the AWS customer gateways' ASN; use e.g. 65000",
        ),
        AsnError::Unusable(_) => ("asn-range", "ASNs are whole numbers from 1 to 4294967294"),
        AsnError::Equal(_) => (
            "asn-distinct",
            "give azure.asn a different value, e.g. aws.asn = 64512 and azure.asn = 65000",
        ),
    };
    p.add(path, rule, e.to_string(), hint);
}

pub(super) fn check_guid(p: &mut Problems, path: &str, value: &str) {
    let groups: Vec<&str> = value.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        p.add(
            path,
            "azure-subscription-id-format",
            format!("`{value}` is not a subscription id"),
            "use the GUID shown by `az account show --query id`, e.g. 00000000-0000-0000-0000-000000000000",
        );
    }
}

pub(super) fn check_resource_group(p: &mut Problems, value: &str) {
    let ok = (1..=90).contains(&value.chars().count())
        && !value.ends_with('.')
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    if !ok {
        p.add(
            "azure.resource_group",
            "azure-resource-group-name",
            format!("`{value}` is not a valid resource group name"),
            "use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'",
        );
    }
}

pub(super) fn check_location(p: &mut Problems, value: &str) {
    let ok = (2..=40).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        p.add(
            "azure.location",
            "azure-location-format",
            format!("`{value}` is not an Azure location name"),
            "use the short name from `az account list-locations -o table`, e.g. italynorth",
        );
    }
}

pub(super) fn check_azure_name(p: &mut Problems, path: &str, value: &str) {
    let ok = (2..=64).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        p.add(
            path,
            "azure-name-format",
            format!("`{value}` is not a valid Azure virtual network name"),
            "use 2-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
        );
    }
}

pub(super) fn check_endpoint(p: &mut Problems, path: &str, value: Option<&str>) {
    let Some(url) = value else {
        return;
    };
    if let Some(rest) = url.strip_prefix("http://") {
        // Keys (a connection's sharedKey, EC2's PreSharedKey) and bearer tokens cross in
        // these calls: in clear only to this machine.
        if !is_loopback_authority(rest) {
            p.add(
                path,
                "endpoint-plain-http",
                format!("`{url}` would send keys and tokens in clear to a host off this machine"),
                "use https://, or an endpoint on loopback (127.0.0.1, [::1] or localhost), as the lab's twins are",
            );
        }
    } else if !url.starts_with("https://") {
        p.add(
            path,
            "endpoint-url",
            format!("`{url}` is not an http(s) URL"),
            "write the full URL, e.g. https://ec2.eu-south-1.amazonaws.com or http://127.0.0.1:4566, or remove the key to use the cloud's own endpoint",
        );
    }
}

/// Whether a URL's authority (what follows `http://`) names this machine.
fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) const SKUS_AZ: [&str; 5] = ["VpnGw1AZ", "VpnGw2AZ", "VpnGw3AZ", "VpnGw4AZ", "VpnGw5AZ"];
pub(super) const SKUS_NON_AZ: [&str; 5] = ["VpnGw1", "VpnGw2", "VpnGw3", "VpnGw4", "VpnGw5"];

pub(super) fn check_sku(
    p: &mut Problems,
    warnings: &mut Problems,
    sku: Option<&str>,
    use_case: UseCase,
    existing: bool,
) -> String {
    let Some(sku) = sku else {
        return match use_case {
            UseCase::Development => "VpnGw1AZ",
            UseCase::HighAvailability => "VpnGw2AZ",
        }
        .to_owned();
    };
    if SKUS_AZ.contains(&sku) {
        return sku.to_owned();
    }
    if SKUS_NON_AZ.contains(&sku) {
        if !existing {
            warnings.add(
                "azure.sku",
                "azure-sku-non-az",
                format!("{sku} is a non-AZ SKU; Azure no longer creates new non-AZ VPN gateways (since 2025-01-01)"),
                format!("use {sku}AZ"),
            );
        }
        return sku.to_owned();
    }
    let why = if sku == "Basic" {
        "the Basic SKU has no BGP and no custom APIPA addresses".to_owned()
    } else {
        format!("`{sku}` is not a VPN gateway SKU")
    };
    p.add("azure.sku", "azure-gateway-sku", why, "use VpnGw1AZ (development) or VpnGw2AZ (high availability); VpnGw1AZ-VpnGw5AZ are accepted");
    sku.to_owned()
}

pub(super) fn check_existing_gateway(
    p: &mut Problems,
    id: Option<&str>,
    public_ips: &[String],
    use_case: UseCase,
) -> Option<ExistingGateway> {
    let Some(id) = id else {
        if !public_ips.is_empty() {
            p.add(
                "azure.existing_gateway_public_ips",
                "existing-gateway-public-ips",
                "public IPs are given but azure.existing_gateway_id is not",
                "set azure.existing_gateway_id, or remove the public IPs to let dxvpn create the gateway",
            );
        }
        return None;
    };
    let segments: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    let id_ok = segments.len() == 8
        && segments[0].eq_ignore_ascii_case("subscriptions")
        && segments[2].eq_ignore_ascii_case("resourceGroups")
        && segments[4].eq_ignore_ascii_case("providers")
        && segments[5].eq_ignore_ascii_case("Microsoft.Network")
        && segments[6].eq_ignore_ascii_case("virtualNetworkGateways")
        && !segments[7].is_empty()
        && id.starts_with('/');
    if !id_ok {
        p.add(
            "azure.existing_gateway_id",
            "azure-resource-id-format",
            format!("`{id}` is not a virtual network gateway id"),
            "use the full id: /subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworkGateways/<name>",
        );
    }
    let wanted = use_case.azure_instances();
    if public_ips.len() != wanted {
        p.add(
            "azure.existing_gateway_public_ips",
            "existing-gateway-public-ips",
            format!(
                "{} public IP(s) given; {} needs {wanted} (one per gateway instance)",
                public_ips.len(),
                use_case.as_str()
            ),
            if wanted == 2 {
                "high availability needs an active-active gateway: list both instances' public IPs"
            } else {
                "list the gateway's public IP"
            },
        );
    }
    let mut ips = Vec::new();
    for (i, text) in public_ips.iter().enumerate() {
        let path = format!("azure.existing_gateway_public_ips[{i}]");
        match text.parse::<Ipv4Addr>() {
            Ok(ip) if is_public(ip) => ips.push(ip),
            Ok(ip) => p.add(
                &path,
                "public-ip",
                format!("{ip} is not a public address"),
                "AWS customer gateways need the gateway instance's public IP (Azure portal: the gateway's Public IP addresses)",
            ),
            Err(_) => p.add(&path, "ip-format", format!("`{text}` is not an IPv4 address"), "write it as a.b.c.d"),
        }
    }
    Some(ExistingGateway {
        id: id.to_owned(),
        public_ips: ips,
    })
}

pub(super) fn is_public(ip: Ipv4Addr) -> bool {
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast())
}

/// Lower-cases zone names and strips a trailing dot; reports bad names and repeats.
pub(super) fn zones(p: &mut Problems, path: &str, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let zone = name.trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&zone) {
            p.add(
                &path,
                "dns-zone-name",
                format!("`{name}` is not a DNS zone name"),
                "use labels of letters, digits and '-' separated by dots, e.g. aws.internal",
            );
        } else if out.contains(&zone) {
            p.add(
                &path,
                "unique",
                format!("`{name}` is listed twice"),
                "remove the repeated zone",
            );
        } else {
            out.push(zone);
        }
    }
    out
}

/// Labels of letters, digits and '-' (not at either end), 1 to 63 long, 253 in all.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
