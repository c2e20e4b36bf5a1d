//! The dxvpn config file that points a deployment at a running lab: the seeded VPC and VNet,
//! the twins' endpoints, and the lab hosts as DNS forwarders and validate targets.

use dxvpn_twin_aws::AwsTwin;
use dxvpn_twin_azure::AzureTwin;

use dxvpn_netlab::resolvers::{LAB_AWS_ZONE, LAB_AZURE_ZONE};

use crate::LabScenario;
use crate::pairing::host_ip;

/// A dxvpn config file for a deployment named `name` of `use_case` (`development`,
/// `high_availability`) on these twins: their seeded VPC and VNet, and their endpoints.
pub fn lab_config(
    name: &str,
    use_case: &str,
    scenario: &LabScenario,
    aws_twin: &AwsTwin,
    azure_twin: &AzureTwin,
) -> String {
    let aws = scenario.aws.clone().unwrap_or_default();
    let azure = scenario.azure.clone().unwrap_or_default();
    let (a, z) = (&aws_twin.seeded, &azure_twin.seeded);
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let strings = |nets: &[dxvpn_cidr::Ipv4Net]| {
        quoted(&nets.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    let gateway_subnet = azure
        .subnets
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case("GatewaySubnet"))
        .map(|s| s.cidr.to_string())
        .unwrap_or_default();
    let used: Vec<dxvpn_cidr::Ipv4Net> = azure
        .subnets
        .iter()
        .filter(|s| !s.name.eq_ignore_ascii_case("GatewaySubnet"))
        .map(|s| s.cidr)
        .collect();
    // Development uses forwarder hosts, and `up` creates both (an EC2 instance and an Azure
    // VM), which the lab runs as the clouds would: no `dns.*_forwarder_ip` here.    // `dxvpn validate` reaches each host from the other cloud: ping, its name, and TCP 53 (the
    // host's own DNS listener, standing for a service on a VM).
    let targets: String = [
        ("aws", aws.subnet_cidrs.first(), LAB_AWS_ZONE),
        ("azure", used.first(), LAB_AZURE_ZONE),
    ]
    .iter()
    .filter_map(|(cloud, subnet, zone)| {
        subnet.map(|s| {
            format!(
                "\n[[validate.targets]]\ncloud = \"{cloud}\"\naddress = \"{}\"\nname = \"vm1.{zone}\"\ntcp_ports = [53]\n",
                host_ip(*s)
            )
        })
    })
    .collect();
    format!(
        "# dxvpn config for the local lab (written by `dxvpn lab up`): the twins' seeded VPC\n\
         # and VNet. Try: dxvpn plan -c THIS; dxvpn up -c THIS --yes; dxvpn status -c THIS\n\
         name = \"{name}\"\nuse_case = \"{use_case}\"\n\n\
         [aws]\nregion = \"{region}\"\nvpc_id = \"{vpc}\"\nvpc_cidr = \"{vpc_cidr}\"\n\
         route_table_ids = [{rtbs}]\nprivate_subnet_ids = [{subnets}]\n\
         private_subnet_cidrs = [{subnet_cidrs}]\nprivate_dns_zones = [\"{aws_zone}\"]\n\
         endpoint_url = \"{aws_endpoint}\"\n\n\
         [azure]\nsubscription_id = \"{sub}\"\nresource_group = \"{rg}\"\n\
         location = \"{location}\"\nvnet_name = \"{vnet}\"\nvnet_cidr = \"{vnet_cidr}\"\n\
         gateway_subnet_cidr = \"{gateway_subnet}\"\nused_subnet_cidrs = [{used}]\n\
         private_dns_zones = [\"{azure_zone}\"]\nendpoint = \"{azure_endpoint}\"\n{targets}",
        region = aws.region,
        vpc = a.vpc_id,
        vpc_cidr = aws.vpc_cidr,
        rtbs = quoted(&a.route_table_ids),
        subnets = quoted(&a.subnet_ids),
        subnet_cidrs = strings(&aws.subnet_cidrs),
        aws_endpoint = aws_twin.endpoint,
        sub = z.subscription_id,
        rg = z.resource_group,
        location = z.location,
        vnet = azure.vnet_name,
        vnet_cidr = azure.vnet_cidr,
        used = strings(&used),
        azure_endpoint = azure_twin.endpoint,
        aws_zone = LAB_AWS_ZONE,
        azure_zone = LAB_AZURE_ZONE,
    )
}
