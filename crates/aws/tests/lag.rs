//! dxvpn-aws against an AWS twin whose reads lag behind its writes (EC2 developer guide,
//! "Eventual consistency in the Amazon EC2 API"): the first `ensure` succeeds with exactly one of
//! everything, even when a create's answer is lost while reads do not show what it made yet.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use dxvpn_aws::{Aws, Outputs, aws_resources};
use dxvpn_test_support::{ec2_client, iam_client, resolver_client};
use dxvpn_twin_aws::{Fault, FaultKind};

/// Seeds whose lag windows differ (each resource draws its own from the seed).
const SEEDS: std::ops::RangeInclusive<u64> = 1..=4;

/// What the Azure side of a development deployment would have produced: its public IP.
fn azure_outputs() -> Outputs {
    let mut outputs = Outputs::default();
    outputs.set("azure.public_ip.0", "ip_address", "198.18.2.1");
    outputs
}

/// Negative control: the lag is real. Right after a create, a describe of the id it answered
/// says `NotFound` under at least one of the seeds, so a client that trusts a first read fails.
#[tokio::test]
async fn a_just_created_gateway_is_not_found_at_first() {
    let mut not_found = 0;
    for seed in SEEDS {
        let twin = dxvpn_test_support::aws_twin_seeded(0.0005, seed).await;
        let ec2 = ec2_client(&twin.endpoint);
        let created = ec2
            .create_vpn_gateway()
            .r#type(aws_sdk_ec2::types::GatewayType::Ipsec1)
            .send()
            .await
            .unwrap();
        let id = created.vpn_gateway().unwrap().vpn_gateway_id().unwrap();
        match ec2.describe_vpn_gateways().vpn_gateway_ids(id).send().await {
            Err(e) => {
                let code = aws_sdk_ec2::error::ProvideErrorMetadata::code(&e);
                assert_eq!(code, Some("InvalidVpnGatewayID.NotFound"), "seed {seed}");
                not_found += 1;
            }
            Ok(out) => assert_eq!(out.vpn_gateways().len(), 1, "seed {seed}"),
        }
        // Eventually the id is known, and a filtered describe lists it.
        tokio::time::sleep(dxvpn_twin_aws::READ_LAG_MAX).await;
        let listed = ec2.describe_vpn_gateways().send().await.unwrap();
        assert_eq!(listed.vpn_gateways().len(), 1, "seed {seed}");
        twin.stop().await;
    }
    assert!(
        not_found > 0,
        "no seed lagged: the tests below prove nothing"
    );
}

/// The first run converges, exactly once, although the answers of the VPN gateway's and the VPN
/// connection's creates are lost after they took effect and reads lag behind both.
#[tokio::test]
async fn a_lost_create_answer_under_lagging_reads_makes_exactly_one() {
    for seed in SEEDS {
        let twin = dxvpn_test_support::aws_twin_seeded(0.0005, seed).await;
        let config = dxvpn_test_support::aws_config("development", &twin);
        let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
        let aws = Aws::from_clients(
            ec2_client(&twin.endpoint),
            resolver_client(&twin.endpoint),
            iam_client(&twin.endpoint),
            dxvpn_test_support::cloudwatch_client(&twin.endpoint),
            dxvpn_test_support::sns_client(&twin.endpoint),
        );
        for action in ["CreateVpnGateway", "CreateVpnConnection"] {
            twin.inject(Fault {
                action: action.into(),
                at_call: 1,
                kind: FaultKind::Drop,
                after_effect: true,
            });
        }
        let mut outputs = azure_outputs();
        for resource in aws_resources(&plan) {
            aws.ensure(&plan, resource, &mut outputs)
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: the first run failed: {e}"));
        }
        let inv = twin.inventory();
        let len = |k: &str| inv[k].as_array().unwrap().len();
        assert_eq!(
            (
                len("vpn_gateways"),
                len("customer_gateways"),
                len("vpn_connections")
            ),
            (1, 1, 1),
            "seed {seed}: one of everything"
        );
        assert_eq!(
            outputs.get("aws.vpn_connection.0", "id"),
            inv["vpn_connections"][0]["id"].as_str(),
            "seed {seed}"
        );
        twin.stop().await;
    }
}
