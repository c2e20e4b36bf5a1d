//! ARM serialises writes on a virtual network (409 `AnotherOperationInProgress`): dxvpn-azure
//! writes one subnet at a time and waits out a write somebody else started.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;

use dxvpn_azure::Azure;
use dxvpn_plan::model::Spec;
use dxvpn_plan::{Outputs, Plan};
use dxvpn_twin_azure::{AzureScenario, AzureTwin};
use serde_json::json;

/// A twin where a subnet write takes 5 s x 0.05 = 250 ms, so that writes started together
/// overlap for certain, and a plan with managed DNS on both sides (two delegated subnets).
async fn setup() -> (AzureTwin, Azure, Plan) {
    let scenario = AzureScenario::default();
    let twin = dxvpn_test_support::azure_twin(&scenario, 0.05).await;
    let config = dxvpn_test_support::azure_config(
        "high_availability",
        &twin,
        &scenario,
        r#"private_dns_zones = ["azure.internal"]"#,
    )
    .replace(
        "route_table_ids = [\"rtb-0123456789abcdef0\"]",
        r#"route_table_ids = ["rtb-0123456789abcdef0"]
private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
private_subnet_cidrs = ["10.0.1.0/24", "10.0.2.0/24"]
private_dns_zones = ["aws.internal"]"#,
    );
    let plan = dxvpn_plan::plan_from_toml(&config).unwrap();
    let azure = Azure::connect(&plan).unwrap();
    (twin, azure, plan)
}

fn subnets(plan: &Plan) -> Vec<&dxvpn_plan::model::Resource> {
    plan.resources
        .iter()
        .filter(|r| matches!(r.spec, Spec::Subnet { .. }))
        .collect()
}

#[tokio::test]
async fn subnets_ensured_at_once_are_written_one_at_a_time_and_each_once() {
    let (twin, azure, plan) = setup().await;
    let subnets = subnets(&plan);
    assert_eq!(subnets.len(), 2, "managed DNS needs two delegated subnets");
    let before = twin.mutating_calls();
    let (a, b) = tokio::join!(
        async {
            let mut outputs = Outputs::default();
            azure.ensure(&plan, subnets[0], &mut outputs).await
        },
        async {
            let mut outputs = Outputs::default();
            azure.ensure(&plan, subnets[1], &mut outputs).await
        },
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(
        dxvpn_test_support::azure_count(&twin, "virtualNetworks/subnets"),
        AzureScenario::default().subnets.len() + 2
    );
    // Two writes, and no refused one: dxvpn waited for its own first write.
    assert_eq!(twin.mutating_calls() - before, 2);
}

#[tokio::test]
async fn a_subnet_write_somebody_else_started_is_waited_out() {
    let (twin, azure, plan) = setup().await;
    // Another tool writes a subnet of the same VNet; ARM refuses dxvpn's write meanwhile.
    let s = &twin.seeded;
    let vnet = AzureScenario::default().vnet_name;
    let url = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/other?api-version=2024-03-01",
        twin.endpoint, s.subscription_id, s.resource_group
    );
    let http = reqwest::Client::new();
    let put = || {
        http.put(&url)
            .bearer_auth("other-tool")
            .json(&json!({"properties": {"addressPrefix": "10.1.200.0/24"}}))
            .send()
    };
    assert_eq!(put().await.unwrap().status(), 201);
    // The negative control: while it runs, a second write is refused with ARM's 409.
    let refused = put().await.unwrap();
    assert_eq!(refused.status(), 409);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AnotherOperationInProgress");

    let subnet = subnets(&plan)[0];
    let mut outputs = Outputs::default();
    tokio::time::timeout(
        Duration::from_secs(30),
        azure.ensure(&plan, subnet, &mut outputs),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        outputs.get(&subnet.role, "provisioning_state"),
        Some("Succeeded")
    );
}
