//! dxvpn-aws against the AWS twin with the real aws-sdk-ec2: ensure both shapes, converge with
//! zero mutating calls on a re-run, delete back to the seed, and survive a fault at every
//! mutating call without leaving a duplicate.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use dxvpn_aws::{Aws, Outputs, aws_resources};
use dxvpn_lab::aws_twin::{AwsScenario, AwsTwin, Fault, FaultKind};
use dxvpn_plan::Plan;

async fn setup(use_case: &str) -> (AwsTwin, Aws, Plan) {
    let twin = AwsTwin::start(
        "127.0.0.1:0".parse().unwrap(),
        &AwsScenario::default(),
        0.0005,
    )
    .await
    .unwrap();
    let s = &twin.seeded;
    let config = format!(
        r#"name = "dx-test"
use_case = "{use_case}"
[aws]
region = "eu-south-1"
vpc_id = "{vpc}"
vpc_cidr = "10.0.0.0/16"
route_table_ids = ["{rtb0}", "{rtb1}"]
private_subnet_ids = ["{sn0}", "{sn1}"]
private_subnet_cidrs = ["10.0.1.0/24", "10.0.2.0/24"]
endpoint_url = "{endpoint}"
[azure]
subscription_id = "00000000-0000-0000-0000-000000000000"
resource_group = "dx-rg"
location = "italynorth"
vnet_name = "dx-vnet"
vnet_cidr = "10.51.0.0/16"
gateway_subnet_cidr = "10.51.255.0/27"
"#,
        vpc = s.vpc_id,
        rtb0 = s.route_table_ids[0],
        rtb1 = s.route_table_ids[1],
        sn0 = s.subnet_ids[0],
        sn1 = s.subnet_ids[1],
        endpoint = twin.endpoint
    );
    let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
    let ec2 = client(&twin.endpoint);
    let resolver = resolver_client(&twin.endpoint);
    (twin, Aws::from_clients(ec2, resolver), plan)
}

/// A plain SDK client for the twin, with the SDK's default retry.
fn client(endpoint: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                "AKIDLAB",
                "lab-secret",
                None,
                None,
                "dxvpn-lab",
            ))
            .build(),
    )
}

/// A plain Route 53 Resolver client for the same twin.
fn resolver_client(endpoint: &str) -> aws_sdk_route53resolver::Client {
    aws_sdk_route53resolver::Client::from_conf(
        aws_sdk_route53resolver::Config::builder()
            .behavior_version(aws_sdk_route53resolver::config::BehaviorVersion::latest())
            .region(aws_sdk_route53resolver::config::Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_route53resolver::config::Credentials::new(
                "AKIDLAB",
                "lab-secret",
                None,
                None,
                "dxvpn-lab",
            ))
            .build(),
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
    let plain = client(&twin.endpoint);
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

/// Route 53 Resolver's rules as the twin enforces them, seen through the real SDK: two
/// addresses per endpoint, CREATING then OPERATIONAL, no rule deleted while associated, no
/// security group deleted while an endpoint uses it, and not-found as ResourceNotFoundException.
#[tokio::test]
async fn the_resolver_twin_enforces_route53_rules_through_the_real_sdk() {
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    use aws_sdk_route53resolver::types::{
        IpAddressRequest, ResolverEndpointDirection, RuleTypeOption, TargetAddress,
    };
    let twin = AwsTwin::start(
        "127.0.0.1:0".parse().unwrap(),
        &AwsScenario::default(),
        0.01, // an endpoint takes 1.8 s, an association 0.3 s
    )
    .await
    .unwrap();
    let (ec2, r53) = (client(&twin.endpoint), resolver_client(&twin.endpoint));
    let s = &twin.seeded;
    let sg = ec2
        .create_security_group()
        .group_name("dns")
        .description("dns")
        .vpc_id(&s.vpc_id)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    let ip = |subnet: &str| {
        IpAddressRequest::builder()
            .subnet_id(subnet)
            .build()
            .unwrap()
    };

    let one = r53
        .create_resolver_endpoint()
        .creator_request_id("one")
        .security_group_ids(&sg)
        .direction(ResolverEndpointDirection::Outbound)
        .ip_addresses(ip(&s.subnet_ids[0]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(one.code(), Some("InvalidParameterException"), "{one:?}");

    let endpoint = r53
        .create_resolver_endpoint()
        .creator_request_id("two")
        .security_group_ids(&sg)
        .direction(ResolverEndpointDirection::Outbound)
        .ip_addresses(ip(&s.subnet_ids[0]))
        .ip_addresses(ip(&s.subnet_ids[1]))
        .send()
        .await
        .unwrap()
        .resolver_endpoint
        .unwrap();
    assert_eq!(endpoint.status().unwrap().as_str(), "CREATING");
    assert_eq!(endpoint.host_vpc_id(), Some(s.vpc_id.as_str()));
    let id = endpoint.id().unwrap().to_owned();
    let started = std::time::Instant::now();
    loop {
        let e = r53
            .get_resolver_endpoint()
            .resolver_endpoint_id(&id)
            .send()
            .await
            .unwrap()
            .resolver_endpoint
            .unwrap();
        if e.status().unwrap().as_str() == "OPERATIONAL" {
            break;
        }
        assert!(started.elapsed().as_secs() < 10, "never OPERATIONAL");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ips = r53
        .list_resolver_endpoint_ip_addresses()
        .resolver_endpoint_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(ips.ip_addresses().len(), 2);
    assert!(ips.ip_addresses().iter().all(|a| a.ip().is_some()));

    let rule = r53
        .create_resolver_rule()
        .creator_request_id("rule")
        .rule_type(RuleTypeOption::Forward)
        .domain_name("azure.internal")
        .target_ips(TargetAddress::builder().ip("10.1.0.4").build())
        .resolver_endpoint_id(&id)
        .send()
        .await
        .unwrap()
        .resolver_rule
        .unwrap();
    let rule_id = rule.id().unwrap().to_owned();
    assert_eq!(rule.target_ips()[0].port(), Some(53));
    r53.associate_resolver_rule()
        .resolver_rule_id(&rule_id)
        .vpc_id(&s.vpc_id)
        .send()
        .await
        .unwrap();
    let in_use = r53
        .delete_resolver_rule()
        .resolver_rule_id(&rule_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(in_use.code(), Some("ResourceInUseException"), "{in_use:?}");
    let sg_in_use = ec2
        .delete_security_group()
        .group_id(&sg)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sg_in_use.code(),
        Some("DependencyViolation"),
        "{sg_in_use:?}"
    );
    let missing = r53
        .get_resolver_rule()
        .resolver_rule_id("rslvr-rr-0000000000000000f")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
}
