//! Two deployments of one name in two VPCs of one account: each `up` makes its own resources,
//! and `down` of one leaves the other whole. Gateways and customer gateways belong to no VPC
//! in EC2, so a lookup by the deployment's tags alone would adopt the other VPC's.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use dxvpn_aws::{Aws, Outputs, aws_resources};
use dxvpn_plan::Plan;
use dxvpn_test_support::{aws_live, ec2_client, iam_client, loopback, resolver_client};
use dxvpn_twin_aws::{AwsScenario, AwsTwin, OtherVpc};

fn net(cidr: &str) -> dxvpn_cidr::Ipv4Net {
    cidr.parse().unwrap()
}

/// What the Azure side would have produced: its public IPs, another gateway's for each VPC
/// (EC2 answers a customer gateway create with the same address and ASN with the existing one).
fn azure_outputs(plan: &Plan) -> Outputs {
    let third = if plan.aws.vpc_cidr.to_string().starts_with("10.0.") {
        2
    } else {
        3
    };
    let mut outputs = Outputs::default();
    for i in 0..plan.use_case.azure_instances() {
        outputs.set(
            &format!("azure.public_ip.{i}"),
            "ip_address",
            &format!("198.18.{third}.{}", i + 1),
        );
    }
    outputs
}

async fn up(aws: &Aws, plan: &Plan) -> Outputs {
    let mut outputs = azure_outputs(plan);
    for resource in aws_resources(plan) {
        aws.ensure(plan, resource, &mut outputs).await.unwrap();
    }
    outputs
}

async fn down(aws: &Aws, plan: &Plan, outputs: &mut Outputs) {
    let resources: Vec<_> = aws_resources(plan).collect();
    for resource in resources.into_iter().rev() {
        aws.delete(plan, resource, outputs).await.unwrap();
    }
}

/// The VGW attached to `vpc`, and the VPN connections using it.
fn attached(twin: &AwsTwin, vpc: &str) -> usize {
    twin.inventory()["vpn_gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g.to_string().contains(vpc) && g["state"] == "available")
        .count()
}

#[tokio::test]
async fn a_namesake_in_another_vpc_is_neither_adopted_nor_deleted() {
    let scenario = AwsScenario {
        other_vpcs: vec![OtherVpc {
            vpc_cidr: net("10.2.0.0/16"),
            subnet_cidrs: vec![net("10.2.1.0/24"), net("10.2.2.0/24")],
        }],
        ..AwsScenario::default()
    };
    let twin = AwsTwin::start(loopback(), &scenario, 0.0005).await.unwrap();
    eprintln!("AWS twin seed {}", twin.seeded.seed);
    let (s, other) = (&twin.seeded, &twin.seeded.other_vpcs[0]);
    let config_a = dxvpn_test_support::aws_config("development", &twin);
    let config_b = config_a
        .replace(&s.vpc_id, &other.vpc_id)
        .replace(&s.route_table_ids[0], &other.route_table_ids[0])
        .replace(&s.route_table_ids[1], &other.route_table_ids[1])
        .replace(&s.subnet_ids[0], &other.subnet_ids[0])
        .replace(&s.subnet_ids[1], &other.subnet_ids[1])
        .replace("10.0.", "10.2.");
    let plan_a = dxvpn_plan::plan_from_toml(&config_a).unwrap();
    let plan_b = dxvpn_plan::plan_from_toml(&config_b).unwrap();
    assert_eq!(plan_a.name, plan_b.name, "one name, two VPCs");
    let aws = Aws::from_clients(
        ec2_client(&twin.endpoint),
        resolver_client(&twin.endpoint),
        iam_client(&twin.endpoint),
        dxvpn_test_support::cloudwatch_client(&twin.endpoint),
        dxvpn_test_support::sns_client(&twin.endpoint),
    );

    let mut outputs_a = up(&aws, &plan_a).await;
    let mut outputs_b = up(&aws, &plan_b).await;
    assert_eq!(aws_live(&twin, "vpn_gateways"), 2, "B made its own gateway");
    assert_eq!(aws_live(&twin, "vpn_connections"), 2);
    assert_ne!(
        outputs_a.get("aws.vpn_gateway", "id"),
        outputs_b.get("aws.vpn_gateway", "id")
    );
    assert_eq!(attached(&twin, &s.vpc_id), 1);
    assert_eq!(attached(&twin, &other.vpc_id), 1);

    down(&aws, &plan_b, &mut outputs_b).await;
    assert_eq!(aws_live(&twin, "vpn_gateways"), 1, "A's gateway stays");
    assert_eq!(
        aws_live(&twin, "vpn_connections"),
        1,
        "A's connection stays"
    );
    assert_eq!(attached(&twin, &s.vpc_id), 1);
    // A is whole: a re-run of its up finds everything and writes nothing.
    let before = twin.inventory()["calls"].clone();
    up(&aws, &plan_a).await;
    let after = twin.inventory()["calls"].clone();
    let creates = |calls: &serde_json::Value| {
        calls
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                k.starts_with("Create") || k.starts_with("Attach") || k.starts_with("Enable")
            })
            .map(|(_, v)| v.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        creates(&before),
        creates(&after),
        "A converged: nothing created"
    );
    down(&aws, &plan_a, &mut outputs_a).await;
    assert_eq!(aws_live(&twin, "vpn_gateways"), 0);
}
