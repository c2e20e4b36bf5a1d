//! ModifyVpnTunnelOptions as EC2 does it, through the real SDK: the connection keeps its id and
//! outside addresses, answers `modifying` until the tunnel's endpoint is replaced, refuses a
//! second modification meanwhile with `IncorrectState`, and refuses an inside CIDR in use.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    ModifyVpnTunnelOptionsSpecification, VpnConnectionOptionsSpecification,
    VpnTunnelOptionsSpecification,
};

async fn state(ec2: &aws_sdk_ec2::Client, vpn: &str) -> Option<String> {
    let out = ec2
        .describe_vpn_connections()
        .vpn_connection_ids(vpn)
        .send()
        .await
        .ok()?;
    out.vpn_connections()
        .first()
        .and_then(|v| v.state())
        .map(|s| s.as_str().to_owned())
}

async fn until_state(ec2: &aws_sdk_ec2::Client, vpn: &str, wanted: &str) {
    for _ in 0..400 {
        if state(ec2, vpn).await.as_deref() == Some(wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{vpn} never {wanted}");
}

#[tokio::test]
async fn a_tunnel_is_modified_in_place_one_at_a_time() {
    // 240 s of endpoint replacement become 1.2 s; the connection's 300 s create 1.5 s.
    let twin = dxvpn_twin_aws::AwsTwin::start(
        dxvpn_test_support::loopback(),
        &dxvpn_twin_aws::AwsScenario::default(),
        0.005,
    )
    .await
    .unwrap();
    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    let (vgw, cgw) = dxvpn_test_support::twin_gateways(&ec2).await;
    let tunnel = |cidr: &str| {
        VpnTunnelOptionsSpecification::builder()
            .tunnel_inside_cidr(cidr)
            .build()
    };
    let vpn = loop {
        // Until both gateways are available and known (reads lag).
        let created = ec2
            .create_vpn_connection()
            .r#type("ipsec.1")
            .customer_gateway_id(&cgw)
            .vpn_gateway_id(&vgw)
            .options(
                VpnConnectionOptionsSpecification::builder()
                    .tunnel_options(tunnel("169.254.21.0/30"))
                    .tunnel_options(tunnel("169.254.22.0/30"))
                    .build(),
            )
            .send()
            .await;
        if let Ok(out) = created {
            break out.vpn_connection.unwrap().vpn_connection_id.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let modify = |outside: String, cidr: &'static str| {
        ec2.modify_vpn_tunnel_options()
            .vpn_connection_id(&vpn)
            .vpn_tunnel_outside_ip_address(outside)
            .tunnel_options(
                ModifyVpnTunnelOptionsSpecification::builder()
                    .tunnel_inside_cidr(cidr)
                    .build(),
            )
            .send()
    };
    // Not before it is available.
    let early = modify("198.18.1.1".into(), "169.254.21.4/30")
        .await
        .unwrap_err();
    assert!(
        matches!(
            early.code(),
            Some("IncorrectState" | "InvalidVpnConnectionID.NotFound")
        ),
        "{early:?}"
    );
    until_state(&ec2, &vpn, "available").await;
    let read = ec2
        .describe_vpn_connections()
        .vpn_connection_ids(&vpn)
        .send()
        .await
        .unwrap();
    let tunnels = read.vpn_connections()[0]
        .options()
        .unwrap()
        .tunnel_options()
        .to_vec();
    let outside_of = |cidr: &str| {
        tunnels
            .iter()
            .find(|t| t.tunnel_inside_cidr() == Some(cidr))
            .and_then(|t| t.outside_ip_address())
            .unwrap()
            .to_owned()
    };
    let (first, second) = (outside_of("169.254.21.0/30"), outside_of("169.254.22.0/30"));

    // An inside CIDR the other tunnel holds is refused.
    let taken = modify(first.clone(), "169.254.22.0/30").await.unwrap_err();
    assert_eq!(taken.code(), Some("InvalidCidr.InUse"), "{taken:?}");

    let answer = modify(first.clone(), "169.254.21.4/30").await.unwrap();
    let answered = answer.vpn_connection().unwrap();
    assert_eq!(answered.vpn_connection_id(), Some(vpn.as_str()));
    assert_eq!(answered.state().map(|s| s.as_str()), Some("modifying"));
    let again = modify(second.clone(), "169.254.22.4/30").await.unwrap_err();
    assert_eq!(again.code(), Some("IncorrectState"), "{again:?}");
    // The modified tunnel is down meanwhile (the twin reports it so whatever the data plane).
    let telemetry = ec2
        .describe_vpn_connections()
        .vpn_connection_ids(&vpn)
        .send()
        .await
        .unwrap();
    let down = telemetry.vpn_connections()[0]
        .vgw_telemetry()
        .iter()
        .find(|t| t.outside_ip_address() == Some(first.as_str()))
        .and_then(|t| t.status())
        .map(|s| s.as_str().to_owned());
    assert_eq!(down.as_deref(), Some("DOWN"));

    until_state(&ec2, &vpn, "available").await;
    modify(second.clone(), "169.254.22.4/30").await.unwrap();
    until_state(&ec2, &vpn, "available").await;
    let read = ec2
        .describe_vpn_connections()
        .vpn_connection_ids(&vpn)
        .send()
        .await
        .unwrap();
    let mut now: Vec<(String, String)> = read.vpn_connections()[0]
        .options()
        .unwrap()
        .tunnel_options()
        .iter()
        .map(|t| {
            (
                t.outside_ip_address().unwrap().to_owned(),
                t.tunnel_inside_cidr().unwrap().to_owned(),
            )
        })
        .collect();
    now.sort();
    let mut wanted = vec![
        (first, "169.254.21.4/30".to_owned()),
        (second, "169.254.22.4/30".to_owned()),
    ];
    wanted.sort();
    assert_eq!(now, wanted, "same outside addresses, new inside CIDRs");
    twin.stop().await;
}
