//! What ARM does not promise, as the Azure twin chooses it from its seed: the order of a list.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeSet;

use dxvpn_twin_azure::{AzureScenario, AzureTwin};
use futures_util::StreamExt;

/// The subnets of the seeded VNet, listed through the real client: over a few seeds both orders
/// of its two subnets occur, and one twin answers the same order twice.
#[tokio::test]
async fn a_list_comes_back_in_no_promised_order() {
    let scenario = AzureScenario::default();
    let mut orders = BTreeSet::new();
    for seed in 1..=12 {
        let twin = AzureTwin::start_seeded("127.0.0.1:0".parse().unwrap(), &scenario, 0.0, seed)
            .await
            .unwrap();
        let client = azure_mgmt_network::package_2024_03::Client::builder(std::sync::Arc::new(
            dxvpn_azure::StaticToken::new("lab-token"),
        ))
        .endpoint(azure_core::Url::parse(&twin.endpoint).unwrap())
        .scopes(&["https://management.azure.com/.default"])
        .build()
        .unwrap();
        let names = || async {
            let mut pages = client
                .subnets_client()
                .list(
                    &scenario.resource_group,
                    &scenario.vnet_name,
                    &scenario.subscription_id,
                )
                .into_stream();
            let mut names = Vec::new();
            while let Some(page) = pages.next().await {
                names.extend(page.unwrap().value.into_iter().filter_map(|s| s.name));
            }
            names
        };
        let first = names().await;
        assert_eq!(
            first,
            names().await,
            "seed {seed}: the order changed between reads"
        );
        assert_eq!(first.len(), 2, "seed {seed}: {first:?}");
        orders.insert(first);
        twin.stop().await;
    }
    assert_eq!(
        orders.len(),
        2,
        "both orders occur over 12 seeds: {orders:?}"
    );
}
