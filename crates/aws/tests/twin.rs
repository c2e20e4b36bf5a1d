//! dxvpn-aws against the AWS twin with the real aws-sdk-ec2: ensure both shapes, converge with
//! zero mutating calls on a re-run, delete back to the seed, and survive a fault at every
//! mutating call without leaving a duplicate.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use dxvpn_aws::{Aws, Outputs, aws_resources};
use dxvpn_plan::Plan;
use dxvpn_test_support::{ec2_client, iam_client, resolver_client};
use dxvpn_twin_aws::{AwsTwin, Fault, FaultKind};

async fn setup(use_case: &str) -> (AwsTwin, Aws, Plan) {
    let twin = dxvpn_test_support::aws_twin(0.0005).await;
    let plan =
        dxvpn_plan::plan_from_toml(&dxvpn_test_support::aws_config(use_case, &twin)).unwrap();
    let ec2 = ec2_client(&twin.endpoint);
    let resolver = resolver_client(&twin.endpoint);
    let iam = iam_client(&twin.endpoint);
    let cloudwatch = dxvpn_test_support::cloudwatch_client(&twin.endpoint);
    let sns = dxvpn_test_support::sns_client(&twin.endpoint);
    (
        twin,
        Aws::from_clients(ec2, resolver, iam, cloudwatch, sns),
        plan,
    )
}

/// What the Azure side would have produced: its public IPs.
fn azure_outputs(plan: &Plan) -> Outputs {
    let mut outputs = Outputs::default();
    for i in 0..plan.use_case.azure_instances() {
        outputs.set(
            &format!("azure.public_ip.{i}"),
            "ip_address",
            &format!("198.18.2.{}", i + 1),
        );
    }
    outputs
}

async fn ensure_all(aws: &Aws, plan: &Plan) -> Result<Outputs, dxvpn_aws::AwsError> {
    let mut outputs = azure_outputs(plan);
    for resource in aws_resources(plan) {
        aws.ensure(plan, resource, &mut outputs).await?;
    }
    Ok(outputs)
}

fn counts(twin: &AwsTwin) -> (usize, usize, usize, usize) {
    let inv = twin.inventory();
    let len = |k: &str| inv[k].as_array().unwrap().len();
    let propagating = inv["route_tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["propagating_vgws"].as_array().unwrap().len())
        .sum();
    (
        len("vpn_gateways"),
        len("customer_gateways"),
        len("vpn_connections"),
        propagating,
    )
}

fn without_calls(mut inventory: serde_json::Value) -> serde_json::Value {
    inventory.as_object_mut().unwrap().remove("calls");
    inventory
}

/// AWS answers a connection's tunnels in no promised order. Whatever the order, each tunnel's
/// outside address and key land on the planned tunnel with the same inside CIDR (whose Azure
/// local network gateway reads them), over seeds under which the twin answers both orders.
#[tokio::test]
async fn tunnels_are_paired_by_inside_cidr_whatever_order_aws_answers() {
    for seed in 1..=6 {
        let twin = dxvpn_test_support::aws_twin_seeded(0.0005, seed).await;
        let config = dxvpn_test_support::aws_config("high_availability", &twin);
        let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
        let ec2 = ec2_client(&twin.endpoint);
        let aws = Aws::from_clients(
            ec2.clone(),
            resolver_client(&twin.endpoint),
            iam_client(&twin.endpoint),
            dxvpn_test_support::cloudwatch_client(&twin.endpoint),
            dxvpn_test_support::sns_client(&twin.endpoint),
        );
        let outputs = ensure_all(&aws, &plan).await.unwrap();
        for t in &plan.tunnels {
            let role = format!("aws.vpn_connection.{}", t.pairing.aws_connection);
            let out = ec2
                .describe_vpn_connections()
                .vpn_connection_ids(outputs.get(&role, "id").unwrap())
                .send()
                .await
                .unwrap();
            let cidr = t.pairing.inside_cidr.to_string();
            let answered = out.vpn_connections()[0]
                .options()
                .unwrap()
                .tunnel_options()
                .iter()
                .find(|o| o.tunnel_inside_cidr() == Some(cidr.as_str()))
                .unwrap();
            let output = ["tunnel1_outside_ip", "tunnel2_outside_ip"][t.pairing.aws_tunnel];
            assert_eq!(
                outputs.get(&role, output),
                answered.outside_ip_address(),
                "seed {seed}, {}: another tunnel's address",
                t.key
            );
            // Compared without printing: a key never goes into a message.
            let key = outputs.key(&role, t.pairing.aws_tunnel).map(|k| k.expose());
            assert!(
                key == answered.pre_shared_key(),
                "seed {seed}, {}: another tunnel's key",
                t.key
            );
        }
    }
}

#[tokio::test]
async fn both_shapes_converge_rerun_without_mutating_and_delete_back_to_the_seed() {
    for use_case in ["development", "high_availability"] {
        let (twin, aws, plan) = setup(use_case).await;
        let seed = without_calls(twin.inventory());
        let outputs = ensure_all(&aws, &plan).await.unwrap();
        let connections = plan.use_case.aws_connections();
        assert_eq!(
            counts(&twin),
            (1, connections, connections, 2),
            "{use_case}"
        );
        let inv = twin.inventory();
        assert_eq!(
            inv["vpn_gateways"][0]["attachments"][0]["state"],
            "attached"
        );
        for c in 0..connections {
            let role = format!("aws.vpn_connection.{c}");
            for (t, output) in ["tunnel1_outside_ip", "tunnel2_outside_ip"]
                .iter()
                .enumerate()
            {
                assert!(
                    outputs
                        .get(&role, output)
                        .is_some_and(|ip| ip.starts_with("198.18.1.")),
                    "{role} {output}"
                );
                assert!(
                    outputs.key(&role, t).is_some(),
                    "{role} key {t} read back from AWS"
                );
            }
        }

        // A converged re-run changes nothing.
        let before = twin.mutating_calls();
        let again = ensure_all(&aws, &plan).await.unwrap();
        assert_eq!(
            twin.mutating_calls(),
            before,
            "{use_case}: a converged re-run made mutating calls"
        );
        assert_eq!(
            again.get("aws.vpn_connection.0", "id"),
            outputs.get("aws.vpn_connection.0", "id")
        );

        // Down: everything dxvpn made is gone, what existed before is untouched.
        let mut outputs = again;
        for resource in aws_resources(&plan).collect::<Vec<_>>().into_iter().rev() {
            aws.delete(&plan, resource, &mut outputs).await.unwrap();
        }
        assert_eq!(
            without_calls(twin.inventory()),
            seed,
            "{use_case}: inventory back to its seed"
        );
        twin.stop().await;
    }
}

#[tokio::test]
async fn a_fault_at_each_mutating_call_then_a_rerun_converges_without_duplicates() {
    // A clean run's mutating calls: VGW, attach, 2 propagations, CGW, VPN connection.
    let (twin, aws, plan) = setup("development").await;
    ensure_all(&aws, &plan).await.unwrap();
    let clean_calls = twin.mutating_calls();
    twin.stop().await;
    assert!(clean_calls >= 6);

    // Negative control: the hazard is real. The SDK's own retry after a lost answer makes a
    // second VPN gateway, which is why dxvpn-aws creates without it and observes by tags instead.
    let (twin, _, _) = setup("development").await;
    twin.inject(Fault {
        action: "CreateVpnGateway".into(),
        at_call: 1,
        kind: FaultKind::Drop,
        after_effect: true,
    });
    let plain = ec2_client(&twin.endpoint);
    plain
        .create_vpn_gateway()
        .r#type(aws_sdk_ec2::types::GatewayType::Ipsec1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        counts(&twin).0,
        2,
        "a retried create duplicates: the test below would catch it"
    );
    twin.stop().await;

    for k in 1..=clean_calls {
        for kind in [FaultKind::Drop, FaultKind::ServerError] {
            let (twin, aws, plan) = setup("development").await;
            // The answer is lost after the work is done: the worst case for duplicates.
            twin.inject(Fault {
                action: "*".into(),
                at_call: k,
                kind: kind.clone(),
                after_effect: true,
            });
            let _first = ensure_all(&aws, &plan).await;
            ensure_all(&aws, &plan)
                .await
                .unwrap_or_else(|e| panic!("call {k} {kind:?}: the re-run did not converge: {e}"));
            assert_eq!(
                counts(&twin),
                (1, 1, 1, 2),
                "call {k} {kind:?}: duplicates or missing resources"
            );
            twin.stop().await;
        }
    }
}

/// The SDK retries an authorize whose answer was lost; when the first try took effect, EC2
/// refuses the retry with `InvalidPermission.Duplicate`. One run must still converge (this
/// failed the 20%-faults chaos runs in CI): the rule is there, so only what is still missing
/// is asked for. The control: the same fault without the effect is a plain retry.
#[tokio::test]
async fn an_authorize_whose_answer_was_lost_still_converges_in_one_run() {
    for after_effect in [true, false] {
        let twin = dxvpn_test_support::aws_twin(0.0005).await;
        let config = dxvpn_test_support::aws_config("development", &twin).replace(
            "[azure]\n",
            "private_dns_zones = [\"aws.internal\"]\n[azure]\nprivate_dns_zones = [\"azure.internal\"]\n",
        );
        let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
        let aws = Aws::from_clients(
            ec2_client(&twin.endpoint),
            resolver_client(&twin.endpoint),
            iam_client(&twin.endpoint),
            dxvpn_test_support::cloudwatch_client(&twin.endpoint),
            dxvpn_test_support::sns_client(&twin.endpoint),
        );
        twin.inject(Fault {
            action: "AuthorizeSecurityGroupIngress".into(),
            at_call: 1,
            kind: FaultKind::Drop,
            after_effect,
        });
        let group = plan.resource("aws.dns_security_group").unwrap();
        aws.ensure(&plan, group, &mut Outputs::default())
            .await
            .unwrap_or_else(|e| panic!("after_effect {after_effect}: {e}"));
        let calls = twin.inventory()["calls"]["AuthorizeSecurityGroupIngress"]
            .as_u64()
            .unwrap_or_default();
        assert!(
            calls >= 2,
            "after_effect {after_effect}: the fault was not hit: {}",
            twin.inventory()["calls"]
        );
        twin.stop().await;
    }
}

#[tokio::test]
async fn keys_never_reach_logs_errors_or_debug_output() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (twin, aws, plan) = setup("high_availability").await;
    let outputs = ensure_all(&aws, &plan).await.unwrap();
    let keys: Vec<String> = (0..2)
        .flat_map(|c| (0..2).map(move |t| (c, t)))
        .map(|(c, t)| {
            outputs
                .key(&format!("aws.vpn_connection.{c}"), t)
                .unwrap()
                .expose()
                .to_owned()
        })
        .collect();
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.len() > 1000, "trace logging was captured");
    let shown = format!("{logged}\n{outputs:?}");
    for key in &keys {
        assert!(
            !shown.contains(key.as_str()),
            "a key leaked into logs or Debug output"
        );
    }
    twin.stop().await;
}
