//! `alerts.emails` against both twins with the real SDKs: `up` makes an SNS topic with an
//! e-mail subscription per address and an Azure action group with an e-mail receiver per
//! address, every tunnel alarm tells the topic and every tunnel alert the group; a re-run
//! writes nothing; a changed address is an update of both; `down` leaves no topic, group,
//! alarm or alert. The negative control: the same deployment without addresses makes neither.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;

use dxvpn_deploy::{ChangeKind, Deployer, any_writes};
use dxvpn_plan::Plan;
use dxvpn_test_support::{AzureMethod, azure_raw_query};
use dxvpn_twin_aws::AwsTwin;
use dxvpn_twin_azure::{AzureScenario, AzureTwin};
use serde_json::Value;

fn plan(aws: &AwsTwin, azure: &AzureTwin, alerts: &str) -> Arc<Plan> {
    let config = format!(
        "{}\n[alerts]\n{alerts}\n",
        dxvpn_lab::config::lab_config(
            "dx-alerts",
            "development",
            &dxvpn_lab::LabScenario::default(),
            aws,
            azure,
        )
    );
    Arc::new(dxvpn_plan::plan_from_toml(&config).unwrap())
}

fn emails(addresses: &[&str]) -> String {
    let quoted: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!("emails = [{}]", quoted.join(", "))
}

/// Each alarm's actions, from CloudWatch.
async fn alarm_actions(aws: &AwsTwin) -> Vec<Vec<String>> {
    let cw = dxvpn_test_support::cloudwatch_client(&aws.endpoint);
    let out = cw.describe_alarms().send().await.unwrap();
    out.metric_alarms()
        .iter()
        .map(|a| a.alarm_actions().to_vec())
        .collect()
}

/// Each metric alert's action group ids, from ARM.
async fn alert_groups(azure: &AzureTwin) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for alert in azure.inventory()["metric_alerts"].as_array().unwrap() {
        let id = alert["id"].as_str().unwrap();
        let (_, rule) =
            azure_raw_query(azure, AzureMethod::Get, id, "api-version=2018-03-01", None).await;
        all.push(
            rule["properties"]["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["actionGroupId"].as_str().unwrap().to_owned())
                .collect(),
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_addresses_get_a_topic_and_an_action_group_until_down() {
    let aws = dxvpn_test_support::aws_twin(0.0).await;
    let azure = dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.0).await;

    // The control: alerts on without addresses make no topic and no group.
    let plain = plan(&aws, &azure, "enabled = true");
    let deployer = Deployer::connect(&plain).await.unwrap();
    let up = deployer.up(plain.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    assert_eq!(aws.inventory()["topics"], serde_json::json!([]));
    assert_eq!(azure.inventory()["action_groups"], serde_json::json!([]));
    assert!(alarm_actions(&aws).await.iter().all(Vec::is_empty));

    let told = plan(
        &aws,
        &azure,
        &emails(&["ops@example.com", "oncall@example.org"]),
    );
    let up = deployer.up(told.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    let topics = aws.inventory()["topics"].clone();
    assert_eq!(topics.as_array().unwrap().len(), 1, "{topics:#}");
    let topic_arn = topics[0]["arn"].as_str().unwrap().to_owned();
    assert_eq!(
        topics[0]["subscriptions"],
        serde_json::json!(["ops@example.com", "oncall@example.org"])
    );
    let actions = alarm_actions(&aws).await;
    assert_eq!(actions.len(), 2);
    assert!(
        actions
            .iter()
            .all(|a| a == std::slice::from_ref(&topic_arn)),
        "{actions:?}"
    );
    let groups = azure.inventory()["action_groups"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups:#}");
    assert_eq!(groups[0]["email_receivers"], 2);
    let group_id = groups[0]["id"].as_str().unwrap().to_owned();
    let alerts = alert_groups(&azure).await;
    assert_eq!(alerts.len(), 4, "a BGP and a traffic alert per tunnel");
    assert!(
        alerts
            .iter()
            .all(|g| g.len() == 1 && g[0].eq_ignore_ascii_case(&group_id)),
        "{alerts:?}"
    );
    let diff = deployer.diff(&told).await.unwrap();
    assert!(
        !any_writes(&diff),
        "a converged run writes nothing: {diff:#?}"
    );

    // Another address: both the topic and the group change in place.
    let changed = plan(
        &aws,
        &azure,
        &emails(&["ops@example.com", "noc@example.net"]),
    );
    let diff = deployer.diff(&changed).await.unwrap();
    let updated: Vec<&str> = diff
        .iter()
        .filter(|c| c.change == ChangeKind::Update)
        .map(|c| c.role.as_str())
        .collect();
    assert!(
        updated.contains(&"aws.alert_topic") && updated.contains(&"azure.action_group"),
        "{diff:#?}"
    );
    let up = deployer.up(changed.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    let subscribed = aws.inventory()["topics"][0]["subscriptions"].clone();
    assert!(
        subscribed
            .as_array()
            .unwrap()
            .contains(&Value::from("noc@example.net")),
        "{subscribed}"
    );
    let (_, group) = azure_raw_query(
        &azure,
        AzureMethod::Get,
        &group_id,
        "api-version=2023-01-01",
        None,
    )
    .await;
    let addresses: Vec<&str> = group["properties"]["emailReceivers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["emailAddress"].as_str())
        .collect();
    assert_eq!(addresses, ["ops@example.com", "noc@example.net"]);
    assert!(!any_writes(&deployer.diff(&changed).await.unwrap()));

    let down = deployer.down(changed.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    for (what, left) in [
        ("topics", aws.inventory()["topics"].clone()),
        ("alarms", aws.inventory()["alarms"].clone()),
        ("action groups", azure.inventory()["action_groups"].clone()),
        ("metric alerts", azure.inventory()["metric_alerts"].clone()),
    ] {
        assert_eq!(left, serde_json::json!([]), "{what} left after down");
    }
    aws.stop().await;
    azure.stop().await;
}
