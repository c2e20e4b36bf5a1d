//! Throttling, as the clouds do it, against both twins with the real SDKs: with tight token
//! buckets on both (EC2's `RequestLimitExceeded` per action, ARM's 429 with `Retry-After` per
//! operation type), `up`, `diff` and `status` back off and finish, and the twins show that they
//! refused calls. Negative control: a bucket that refills slower than any back-off waits, and
//! the cloud's throttling error then reaches the caller by name.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;

use dxvpn_deploy::{Deployer, any_writes};
use dxvpn_plan::Plan;
use dxvpn_twin_aws::AwsTwin;
use dxvpn_twin_azure::{AzureScenario, AzureTwin};
use dxvpn_twin_kit::pace::{BucketSize, PaceSetting};

async fn twins() -> (AwsTwin, AzureTwin) {
    (
        dxvpn_test_support::aws_twin(0.0005).await,
        dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.0005).await,
    )
}

fn plan(aws: &AwsTwin, azure: &AzureTwin) -> Arc<Plan> {
    let text = dxvpn_lab::config::lab_config(
        "dx-throttled",
        "development",
        &dxvpn_lab::LabScenario::default(),
        aws,
        azure,
    );
    Arc::new(dxvpn_plan::plan_from_toml(&text).unwrap())
}

/// Every bucket this size, no latency.
fn tight(capacity: f64, refill_per_second: f64) -> PaceSetting {
    PaceSetting {
        latency: 0.0,
        throttle: true,
        bucket: Some(BucketSize {
            capacity,
            refill_per_second,
        }),
        seed: 7,
    }
}

/// Calls the twin refused, over every bucket.
fn throttled(inventory: &serde_json::Value) -> u64 {
    inventory["throttled"].as_object().map_or(0, |m| {
        m.values().filter_map(serde_json::Value::as_u64).sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_bucket_is_backed_off_and_every_command_finishes() {
    let (aws, azure) = twins().await;
    let plan = plan(&aws, &azure);
    // Four calls at once per bucket, four a second after: far below what one `up` asks.
    aws.set_pace(tight(4.0, 4.0));
    azure.set_pace(tight(4.0, 4.0));
    let deployer = Deployer::connect(&plan).await.unwrap();

    let up = deployer.up(plan.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    let changes = deployer.diff(&plan).await.unwrap();
    assert!(!any_writes(&changes), "converged, yet: {changes:#?}");
    deployer.status(&plan).await.unwrap();

    let (aws_refused, azure_refused) = (throttled(&aws.inventory()), throttled(&azure.inventory()));
    assert!(
        aws_refused > 0,
        "EC2 never throttled: the bucket was not tight"
    );
    assert!(
        azure_refused > 0,
        "ARM never throttled: the bucket was not tight"
    );
    // The clients count every try, refused ones too.
    let calls = deployer.calls();
    let answered = |inventory: serde_json::Value| -> u64 {
        inventory["calls"].as_object().map_or(0, |m| {
            m.values().filter_map(serde_json::Value::as_u64).sum()
        })
    };
    assert_eq!(calls.aws, answered(aws.inventory()) + aws_refused);
    assert_eq!(calls.azure, answered(azure.inventory()) + azure_refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_slower_than_any_back_off_names_the_throttling() {
    let (aws, azure) = twins().await;
    let plan = plan(&aws, &azure);
    // One call, then one every 5 s: far slower than a diff's calls come, so each outlasts its
    // back-off (ARM's Retry-After, then the client's limit on retrying).
    azure.set_pace(tight(1.0, 0.2));
    let deployer = Deployer::connect(&plan).await.unwrap();
    let error = deployer.diff(&plan).await.unwrap_err().to_string();
    assert!(
        error.contains("SubscriptionRequestsThrottled") || error.contains("429"),
        "the throttling must be named: {error}"
    );
}
