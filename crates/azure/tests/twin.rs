//! dxvpn-azure against the Azure twin with the real azure_mgmt_network: ensure both shapes,
//! converge with zero mutating calls on a re-run, delete back to the seed, surface an operation's
//! error, honour throttling, reuse an existing gateway, and never show a key.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dxvpn_azure::{Azure, AzureError, azure_resources};
use dxvpn_plan::{Outputs, Plan};
use dxvpn_test_support::azure_count;
use dxvpn_tunnel::psk::PresharedKey;
use dxvpn_twin_azure::{AzureScenario, AzureTwin, Fault, FaultKind, SeedGateway};

/// What the AWS half hands over: tunnel outside IPs and the keys AWS holds.
const AWS_KEYS: [&str; 4] = [
    "aws_key_c1t1.Abcdefgh12",
    "aws_key_c1t2.Abcdefgh34",
    "aws_key_c2t1.Abcdefgh56",
    "aws_key_c2t2.Abcdefgh78",
];

fn aws_outputs(plan: &Plan) -> Outputs {
    let mut outputs = Outputs::default();
    for t in &plan.tunnels {
        let role = format!("aws.vpn_connection.{}", t.pairing.aws_connection);
        let n = t.pairing.aws_connection * 2 + t.pairing.aws_tunnel;
        outputs.set(
            &role,
            &format!("tunnel{}_outside_ip", t.pairing.aws_tunnel + 1),
            &format!("198.18.1.{}", n + 1),
        );
        outputs.set_key(
            &role,
            t.pairing.aws_tunnel,
            PresharedKey::parse(AWS_KEYS[n]).unwrap(),
        );
    }
    outputs
}

async fn setup_with(
    use_case: &str,
    scenario: AzureScenario,
    extra: &str,
) -> (AzureTwin, Azure, Plan) {
    let twin = dxvpn_test_support::azure_twin(&scenario, 0.0001).await;
    let config = dxvpn_test_support::azure_config(use_case, &twin, &scenario, extra);
    let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
    let azure = Azure::connect(&plan).unwrap();
    (twin, azure, plan)
}

async fn setup(use_case: &str) -> (AzureTwin, Azure, Plan) {
    setup_with(use_case, AzureScenario::default(), "").await
}

async fn ensure_all(azure: &Azure, plan: &Plan, outputs: &mut Outputs) -> Result<(), AzureError> {
    for resource in azure_resources(plan) {
        azure.ensure(plan, resource, outputs).await?;
    }
    Ok(())
}

async fn delete_all(azure: &Azure, plan: &Plan, outputs: &mut Outputs) {
    let resources: Vec<_> = azure_resources(plan).collect();
    for resource in resources.into_iter().rev() {
        azure.delete(plan, resource, outputs).await.unwrap();
    }
}

#[tokio::test]
async fn development_and_high_availability_converge_rerun_quietly_and_delete_to_the_seed() {
    for (use_case, pips, lngs) in [("development", 1, 2), ("high_availability", 2, 4)] {
        let (twin, azure, plan) = setup(use_case).await;
        let mut outputs = aws_outputs(&plan);
        ensure_all(&azure, &plan, &mut outputs).await.unwrap();
        assert_eq!(azure_count(&twin, "publicIPAddresses"), pips, "{use_case}");
        assert_eq!(azure_count(&twin, "virtualNetworkGateways"), 1);
        assert_eq!(azure_count(&twin, "localNetworkGateways"), lngs);
        assert_eq!(azure_count(&twin, "connections"), lngs);
        assert_eq!(
            outputs.get("azure.public_ip.0", "ip_address"),
            Some("198.18.2.1")
        );
        // Every resource is provisioned, and tagged with the deployment and its role.
        for r in twin.inventory()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["seeded"] == false)
        {
            assert_eq!(r["provisioningState"], "Succeeded", "{r}");
            assert_eq!(r["tags"]["dxvpn:deployment"], "dx-test", "{r}");
        }
        // Each connection carries its own tunnel's key.
        let connections = twin.inventory();
        assert!(
            !connections.to_string().contains("aws_key_"),
            "the inventory shows no key"
        );

        let before = twin.mutating_calls();
        let started = Instant::now();
        ensure_all(&azure, &plan, &mut outputs).await.unwrap();
        assert_eq!(
            twin.mutating_calls(),
            before,
            "{use_case}: a converged re-run writes nothing"
        );
        println!("{use_case}: converged re-run took {:?}", started.elapsed());

        delete_all(&azure, &plan, &mut outputs).await;
        assert_eq!(
            twin.live_ids(),
            twin.seed_ids(),
            "{use_case}: back to the seed"
        );
    }
}

#[tokio::test]
async fn a_changed_key_or_a_drifted_gateway_is_written_again() {
    let (twin, azure, plan) = setup("development").await;
    let mut outputs = aws_outputs(&plan);
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    let before = twin.mutating_calls();
    // AWS's key for tunnel 1 changed: only that connection is rewritten.
    outputs.set_key(
        "aws.vpn_connection.0",
        0,
        PresharedKey::parse("rotated_key.Zyxwvuts99").unwrap(),
    );
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    assert_eq!(twin.mutating_calls(), before + 1);
    // A PUT would not change it (ARM keeps an existing connection's key): SetSharedKey did.
    let calls = &twin.inventory()["calls"];
    assert_eq!(calls["PUT connections"], 2);
    assert_eq!(calls["PUT sharedkey"], 1);
    let s = &twin.seeded;
    let connection = &plan.resource("azure.connection.c1t1").unwrap().name;
    let held = dxvpn_test_support::azure_raw_get(
        &twin,
        &format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/connections/{connection}/sharedkey",
            s.subscription_id, s.resource_group
        ),
    )
    .await;
    // Compared without printing: a key never goes into a message.
    assert!(
        held["value"] == "rotated_key.Zyxwvuts99",
        "Azure does not hold the new key ({})",
        held["error"]
    );
    // Converged: a re-run writes nothing.
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    assert_eq!(twin.mutating_calls(), before + 1);
}

#[tokio::test]
async fn an_operation_that_fails_reports_azures_code_and_message() {
    let (twin, azure, plan) = setup("development").await;
    twin.inject(Fault {
        action: "PUT virtualNetworkGateways".into(),
        at_call: 1,
        kind: FaultKind::LroFailed {
            code: "VpnGatewayProvisioningFailed".into(),
            message: "Gateway provisioning failed in zone 2 (injected).".into(),
        },
        after_effect: false,
    });
    let mut outputs = aws_outputs(&plan);
    let err = ensure_all(&azure, &plan, &mut outputs).await.unwrap_err();
    match &err {
        AzureError::OperationFailed {
            role,
            code,
            message,
            ..
        } => {
            assert_eq!(role, "azure.vpn_gateway");
            assert_eq!(code, "VpnGatewayProvisioningFailed");
            assert_eq!(message, "Gateway provisioning failed in zone 2 (injected).");
        }
        other => panic!("expected the operation's error, got {other:?}"),
    }
    assert!(err.to_string().contains("VpnGatewayProvisioningFailed"));
    // A re-run rewrites the failed gateway and converges.
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    assert_eq!(azure_count(&twin, "virtualNetworkGateways"), 1);
}

#[tokio::test]
async fn throttling_with_retry_after_is_honoured() {
    let (twin, azure, plan) = setup("development").await;
    twin.inject(Fault {
        action: "PUT publicIPAddresses".into(),
        at_call: 1,
        kind: FaultKind::Throttle,
        after_effect: false,
    });
    let started = Instant::now();
    let mut outputs = aws_outputs(&plan);
    azure
        .ensure(
            &plan,
            plan.resource("azure.public_ip.0").unwrap(),
            &mut outputs,
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(twin.inventory()["calls"]["PUT publicIPAddresses"], 2);
    assert_eq!(azure_count(&twin, "publicIPAddresses"), 1);
}

#[tokio::test]
async fn an_existing_gateway_is_used_extended_and_never_deleted() {
    let (twin, azure, plan, gw) = with_existing_gateway().await;
    let ip = twin.seeded.existing_gateway_ips[0];
    let mut outputs = aws_outputs(&plan);
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    assert_eq!(
        azure_count(&twin, "publicIPAddresses"),
        1,
        "no public IP of dxvpn's"
    );
    assert_eq!(azure_count(&twin, "connections"), 2);
    assert_eq!(
        twin.inventory()["calls"]["PUT virtualNetworkGateways"],
        1,
        "only the APIPA addresses were added"
    );
    let before = twin.mutating_calls();
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    assert_eq!(twin.mutating_calls(), before);
    delete_all(&azure, &plan, &mut outputs).await;
    assert!(
        twin.live_ids().contains(&gw.to_ascii_lowercase()),
        "the existing gateway stays"
    );
    assert_eq!(azure_count(&twin, "connections"), 0);

    // A gateway of the wrong shape is refused with what to do.
    let extra = format!(
        "existing_gateway_id = \"{gw}\"\nexisting_gateway_public_ips = [\"{ip}\", \"198.18.2.9\"]"
    );
    let (_twin, azure, plan) = setup_with("high_availability", twin_scenario(), &extra).await;
    let err = azure
        .ensure(
            &plan,
            plan.resource("azure.vpn_gateway").unwrap(),
            &mut outputs,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AzureError::ExistingGateway { .. }), "{err:?}");
    assert!(err.to_string().contains("active-active"), "{err}");
}

/// A twin holding the owner's gateway (`corp-vpngw`), and a development plan that uses it.
async fn with_existing_gateway() -> (AzureTwin, Azure, Plan, String) {
    // A first twin tells the gateway's id and address; a twin of the same scenario has them too.
    let probe = AzureTwin::start("127.0.0.1:0".parse().unwrap(), &twin_scenario(), 0.0001)
        .await
        .unwrap();
    let gw = probe.seeded.existing_gateway_id.clone().unwrap();
    let ip = probe.seeded.existing_gateway_ips[0];
    probe.stop().await;
    let extra = format!("existing_gateway_id = \"{gw}\"\nexisting_gateway_public_ips = [\"{ip}\"]");
    let (twin, azure, plan) = setup_with("development", twin_scenario(), &extra).await;
    (twin, azure, plan, gw)
}

/// The custom APIPA addresses of the gateway's first instance, as ARM answers them.
fn first_custom_addresses(gateway: &serde_json::Value) -> Vec<String> {
    gateway["properties"]["bgpSettings"]["bgpPeeringAddresses"][0]["customBgpIpAddresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip.as_str().unwrap().to_owned())
        .collect()
}

/// An existing gateway is read, modified and written back whole: a member the typed model lacks,
/// the owner's tags and the owner's own APIPA addresses survive `up` and `down`, and `down`
/// removes exactly the addresses `up` added (recorded in a tag), not one the owner had set.
#[tokio::test]
async fn an_existing_gateway_keeps_what_it_had_and_loses_only_what_up_added() {
    let (twin, azure, plan, gw) = with_existing_gateway().await;
    let dxvpn_plan::model::Spec::VirtualNetworkGateway { instances, .. } =
        &plan.resource("azure.vpn_gateway").unwrap().spec
    else {
        panic!("the plan's gateway is not a gateway");
    };
    let planned: Vec<String> = instances[0]
        .custom_bgp_ip_addresses
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(planned.len() >= 2, "{planned:?}");

    // The owner's gateway: one APIPA address of its own, one of those the plan needs, a tag, and
    // a member of a newer api-version (2024-05-01) that the 2024-03-01 model does not have.
    let owners = "169.254.21.30".to_owned();
    let mut gateway = dxvpn_test_support::azure_raw_get(&twin, &gw).await;
    gateway["properties"]["bgpSettings"]["bgpPeeringAddresses"][0]["customBgpIpAddresses"] =
        serde_json::json!([owners, planned[0]]);
    gateway["properties"]["enableHighBandwidthVpnGateway"] = serde_json::json!(true);
    gateway["tags"] = serde_json::json!({"owner": "network-team"});
    dxvpn_test_support::azure_raw_put(&twin, &gw, &gateway).await;

    // Negative control: the typed model's round trip loses the member, so the checks below
    // would catch a write through it.
    let typed: azure_mgmt_network::package_2024_03::models::VirtualNetworkGateway =
        serde_json::from_value(dxvpn_test_support::azure_raw_get(&twin, &gw).await).unwrap();
    assert!(
        serde_json::to_value(typed).unwrap()["properties"]
            .get("enableHighBandwidthVpnGateway")
            .is_none(),
        "the typed model kept the member: this test proves nothing"
    );

    let mut outputs = aws_outputs(&plan);
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    let after_up = dxvpn_test_support::azure_raw_get(&twin, &gw).await;
    let mut wanted: Vec<String> = vec![owners.clone()];
    wanted.extend(planned.iter().cloned());
    let mut have = first_custom_addresses(&after_up);
    have.sort();
    wanted.sort();
    assert_eq!(have, wanted, "the owner's address kept, the plan's added");
    assert_eq!(
        after_up["properties"]["enableHighBandwidthVpnGateway"],
        true
    );
    assert_eq!(after_up["tags"]["owner"], "network-team");
    let tag = format!("dxvpn:apipa:{}", plan.name);
    assert_eq!(
        after_up["tags"][&tag],
        planned[1..].join(" "),
        "only the address the gateway lacked is recorded as added"
    );
    let before = twin.mutating_calls();
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    assert_eq!(
        twin.mutating_calls(),
        before,
        "a converged re-run writes nothing"
    );

    delete_all(&azure, &plan, &mut outputs).await;
    let after_down = dxvpn_test_support::azure_raw_get(&twin, &gw).await;
    assert_eq!(
        first_custom_addresses(&after_down),
        vec![owners, planned[0].clone()],
        "down removed what up added, and only that"
    );
    assert!(after_down["tags"].get(&tag).is_none(), "the record is gone");
    assert_eq!(after_down["tags"]["owner"], "network-team");
    assert_eq!(
        after_down["properties"]["enableHighBandwidthVpnGateway"],
        true
    );
    assert_eq!(azure_count(&twin, "connections"), 0);
}

fn twin_scenario() -> AzureScenario {
    AzureScenario {
        existing_gateway: Some(SeedGateway {
            name: "corp-vpngw".into(),
            active_active: false,
            asn: 65000,
        }),
        ..AzureScenario::default()
    }
}

#[tokio::test]
async fn a_resource_of_another_deployment_is_not_taken_over() {
    let (twin, azure, plan) = setup("development").await;
    // Same resource name, other owner: written through a plan with another deployment name.
    let other = plan_with_name(&plan, "someone-else");
    let mut stolen = plan.resource("azure.public_ip.0").unwrap().clone();
    stolen
        .tags
        .insert("dxvpn:deployment".into(), other.name.clone());
    let mut outputs = Outputs::default();
    azure.ensure(&other, &stolen, &mut outputs).await.unwrap();
    let err = azure
        .ensure(
            &plan,
            plan.resource("azure.public_ip.0").unwrap(),
            &mut outputs,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AzureError::NotOurs { .. }), "{err:?}");
    // Nor deleted.
    assert!(
        azure
            .delete(
                &plan,
                plan.resource("azure.public_ip.0").unwrap(),
                &mut outputs
            )
            .await
            .is_err()
    );
    assert_eq!(azure_count(&twin, "publicIPAddresses"), 1);
}

fn plan_with_name(plan: &Plan, name: &str) -> Plan {
    let mut p = plan.clone();
    p.name = name.to_owned();
    p
}

/// Collects everything logged, at every level, the SDK's own `log` records included.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the subscriber set below is the thread's default.
#[tokio::test]
async fn no_key_in_trace_logs_errors_or_debug_output() {
    let sink = Sink::default();
    let writer = sink.clone();
    // TRACE everywhere, as the CLI filters it: the one target that logs request bodies held at INFO.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "trace,{}=info",
        dxvpn_azure::SECRET_BEARING_LOG_TARGET
    ));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let _ = tracing_log::LogTracer::init();

    let config_key = "config_given_key.Qrstuv42";
    let extra =
        format!("[tunnels]\npreshared_keys = [\"{config_key}\", \"config_given_key.Qrstuv43\"]");
    let (twin, azure, plan) = setup_with("development", AzureScenario::default(), &extra).await;
    let mut outputs = aws_outputs(&plan);
    // One connection fails validation on the way (the key reaches the twin in the request body).
    twin.inject(Fault {
        action: "PUT connections".into(),
        at_call: 1,
        kind: FaultKind::ServerError,
        after_effect: true,
    });
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    let debug = format!("{azure:?} {outputs:?} {plan:?}");
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("PUT connections") || logs.contains("writing"),
        "the logs were captured"
    );
    for key in [
        config_key,
        "config_given_key.Qrstuv43",
        AWS_KEYS[0],
        AWS_KEYS[1],
    ] {
        if let Some(at) = logs.find(key) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            panic!(
                "a key is in the logs: {}",
                &logs[line_start..(line_start + 300).min(logs.len())].replace(key, "<KEY>")
            );
        }
        assert!(!debug.contains(key), "a key is in Debug output");
    }
    assert!(!twin.inventory().to_string().contains("config_given_key"));
    // The twin holds the config's keys: the connections were written with them.
    assert_eq!(azure_count(&twin, "connections"), 2);
}

/// The negative control of the test above: without the filter, azure_core's transport writes the
/// connection's body, key included, at DEBUG. This is why the filter exists.
#[tokio::test]
async fn without_the_filter_azure_core_logs_the_key() {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (_twin, azure, plan) = setup("development").await;
    let mut outputs = aws_outputs(&plan);
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(AWS_KEYS[0]),
        "azure_core no longer logs request bodies: the filter can go"
    );
}

/// A connection dropped or a 500 after Azure took each write in turn: a re-run converges to
/// exactly the planned resources (ARM writes are idempotent by name).
#[tokio::test]
async fn a_fault_after_every_write_in_turn_still_converges_without_duplicates() {
    for at_call in 1..=6 {
        for kind in [FaultKind::Drop, FaultKind::ServerError] {
            let (twin, azure, plan) = setup("development").await;
            twin.inject(Fault {
                action: "*".into(),
                at_call,
                kind: kind.clone(),
                after_effect: true,
            });
            let mut outputs = aws_outputs(&plan);
            // The SDK's retry may absorb the fault; either way a re-run converges.
            let _ = ensure_all(&azure, &plan, &mut outputs).await;
            ensure_all(&azure, &plan, &mut outputs).await.unwrap();
            let counts = [
                azure_count(&twin, "publicIPAddresses"),
                azure_count(&twin, "virtualNetworkGateways"),
                azure_count(&twin, "localNetworkGateways"),
                azure_count(&twin, "connections"),
            ];
            assert_eq!(counts, [1, 1, 2, 2], "fault {kind:?} after write {at_call}");
            let before = twin.mutating_calls();
            ensure_all(&azure, &plan, &mut outputs).await.unwrap();
            assert_eq!(twin.mutating_calls(), before);
        }
    }
}

/// The gateway's metric alerts (high availability has them by default): one per tunnel on its
/// BGP peer; a rule changed behind dxvpn's back is a drift that `ensure` writes back; the
/// twin refuses what the metricAlerts reference refuses; a delete of a rule that is not there
/// answers 204; deleting the plan leaves none.
#[tokio::test]
async fn tunnel_alerts_are_made_kept_and_deleted_with_the_gateway() {
    use dxvpn_plan::Drift;
    use dxvpn_test_support::{AzureMethod, azure_raw_query};
    let (twin, azure, plan) = setup("high_availability").await;
    let mut outputs = aws_outputs(&plan);
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    let rules = twin.inventory()["metric_alerts"].clone();
    assert_eq!(rules.as_array().unwrap().len(), 8, "{rules:#}");
    let traffic = plan.resource("azure.traffic_alert.c1t1").unwrap();
    let traffic_path = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Insights/metricAlerts/{}",
        twin.seeded.subscription_id, twin.seeded.resource_group, traffic.name
    );
    let (_, rule) = azure_raw_query(
        &twin,
        AzureMethod::Get,
        &traffic_path,
        "api-version=2018-03-01",
        None,
    )
    .await;
    let criterion = &rule["properties"]["criteria"]["allOf"][0];
    assert_eq!(criterion["metricName"], "TunnelIngressBytes");
    assert_eq!(criterion["timeAggregation"], "Total");
    let connection = &plan.resource("azure.connection.c1t1").unwrap().name;
    assert_eq!(criterion["dimensions"][0]["values"][0], connection.as_str());
    let alert = plan.resource("azure.tunnel_alert.c1t1").unwrap();
    let path = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Insights/metricAlerts/{}",
        twin.seeded.subscription_id, twin.seeded.resource_group, alert.name
    );
    let api = "api-version=2018-03-01";
    let (status, rule) = azure_raw_query(&twin, AzureMethod::Get, &path, api, None).await;
    assert_eq!(status, 200, "{rule}");
    let criterion = &rule["properties"]["criteria"]["allOf"][0];
    assert_eq!(criterion["metricName"], "BgpPeerStatus");
    let peer = plan.tunnels[0].pairing.aws_inside_ip.to_string();
    assert_eq!(criterion["dimensions"][0]["values"][0], peer.as_str());
    assert_eq!(rule["properties"]["windowSize"], "PT5M");

    // Someone widens the window in the portal: dxvpn sees it and puts it back.
    let mut widened = rule.clone();
    widened["properties"]["windowSize"] = "PT1H".into();
    let (status, _) = azure_raw_query(&twin, AzureMethod::Put, &path, api, Some(&widened)).await;
    assert_eq!(status, 200);
    match azure.drift(&plan, alert, &mut outputs).await.unwrap() {
        Drift::Update(fields) => {
            assert!(
                fields.iter().any(|f| f.path.contains("windowSize")),
                "{fields:?}"
            )
        }
        other => panic!("a widened window is an update, not {other:?}"),
    }
    ensure_all(&azure, &plan, &mut outputs).await.unwrap();
    let (_, back) = azure_raw_query(&twin, AzureMethod::Get, &path, api, None).await;
    assert_eq!(back["properties"]["windowSize"], "PT5M");
    assert!(matches!(
        azure.drift(&plan, alert, &mut outputs).await.unwrap(),
        Drift::Same
    ));

    // The reference's refusals (the control: the rule as it is is taken).
    let (status, _) = azure_raw_query(&twin, AzureMethod::Put, &path, api, Some(&back)).await;
    assert_eq!(status, 200);
    let broken = |pointer: &str, value: serde_json::Value| {
        let mut body = back.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    for (what, body) in [
        ("severity 7", broken("/properties/severity", 7.into())),
        ("a window Azure lacks", broken("/properties/windowSize", "PT7M".into())),
        ("a frequency over the window", broken("/properties/evaluationFrequency", "PT1H".into())),
        ("a metric the gateway lacks", broken("/properties/criteria/allOf/0/metricName", "CpuPercent".into())),
        ("a scope that is not there", broken("/properties/scopes/0", "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/virtualNetworkGateways/none".into())),
        ("no location", broken("/location", "".into())),
    ] {
        let (status, answer) = azure_raw_query(&twin, AzureMethod::Put, &path, api, Some(&body)).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{what}: {answer}");
    }
    let (status, _) = azure_raw_query(
        &twin,
        AzureMethod::Get,
        &path,
        "api-version=2021-01-01",
        None,
    )
    .await;
    assert_eq!(status, 400, "an api-version the twin does not serve");

    delete_all(&azure, &plan, &mut outputs).await;
    assert_eq!(twin.inventory()["metric_alerts"], serde_json::json!([]));
    let (status, _) = azure_raw_query(&twin, AzureMethod::Delete, &path, api, None).await;
    assert_eq!(status, 204, "a rule that is not there");
}
