//! Writes ARM serialises, with the real azure_mgmt_network client: one write at a time on a
//! virtual network and its subnets, and no connection write while its gateway is updating;
//! the refused write gets 409 `AnotherOperationInProgress`, and goes through once the other ends.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use std::time::{Duration, Instant};

use azure_mgmt_network::package_2024_03::models;
use serde_json::json;

use common::*;

fn status(e: &azure_core::Error) -> u16 {
    e.as_http_error().map_or(0, |h| u16::from(h.status()))
}

#[tokio::test]
async fn a_second_subnet_write_on_a_vnet_is_refused_until_the_first_ends() {
    // A subnet write takes 5 s x 0.05 = 250 ms.
    let lab = Lab::with_time_factor(0.05).await;
    let subnets = lab.client.subnets_client();
    let put = |name: &str, prefix: &str| {
        subnets
            .create_or_update(
                &lab.rg,
                "dxvpn-lab-vnet",
                name,
                model::<models::Subnet>(json!({"properties": {"addressPrefix": prefix}})),
                &lab.sub,
            )
            .send()
    };
    put("a", "10.1.200.0/24").await.unwrap();
    let refused = put("b", "10.1.201.0/24").await.unwrap_err();
    assert_eq!(
        (status(&refused), code(&refused).as_str()),
        (409, "AnotherOperationInProgress")
    );
    let refused = subnets
        .delete(&lab.rg, "dxvpn-lab-vnet", "a", &lab.sub)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "AnotherOperationInProgress");
    // Once the first write has ended, the second goes through.
    tokio::time::sleep(Duration::from_millis(300)).await;
    put("b", "10.1.201.0/24").await.unwrap();
}

#[tokio::test]
async fn no_connection_write_while_its_gateway_is_updating() {
    // A gateway update takes 10 min x 0.0005 = 300 ms.
    let lab = Lab::with_time_factor(0.0005).await;
    lab.gateway().await;
    lab.lng("lng-c1t1", "198.18.1.1", "169.254.21.1").await;
    let gateways = lab.client.virtual_network_gateways_client();
    let connections = lab.client.virtual_network_gateway_connections_client();
    let body = lab.gateway_body(
        true,
        "GatewaySubnet",
        65000,
        &[
            &["169.254.21.2", "169.254.22.2"],
            &["169.254.21.6", "169.254.22.6"],
        ],
    );
    gateways
        .create_or_update(&lab.rg, "vpngw", body, &lab.sub)
        .send()
        .await
        .unwrap();
    let connect = || {
        connections
            .create_or_update(
                &lab.rg,
                "conn-c1t1",
                lab.connection_body(
                    "lng-c1t1",
                    "key-one.1234567890",
                    &["169.254.21.2", "169.254.21.6"],
                ),
                &lab.sub,
            )
            .send()
    };
    let refused = connect().await.unwrap_err();
    assert_eq!(
        (status(&refused), code(&refused).as_str()),
        (409, "AnotherOperationInProgress")
    );
    let started = Instant::now();
    loop {
        let gw = raw_get(&lab, &lab.id("virtualNetworkGateways/vpngw")).await;
        if gw["properties"]["provisioningState"] == "Succeeded" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{gw}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    connect().await.unwrap();
}
