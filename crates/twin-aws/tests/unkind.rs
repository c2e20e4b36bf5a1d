//! What EC2 does not promise, as the AWS twin chooses it from its seed: the order of a VPN
//! connection's tunnels, the order of outside addresses.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_ec2::types::{
    GatewayType, VpnConnectionOptionsSpecification, VpnTunnelOptionsSpecification,
};
use dxvpn_twin_aws::AwsTwin;

/// AWS promises no order of a connection's tunnels and hands out outside addresses in no
/// order: over a few seeds the twin answers the request's second tunnel first at least once and
/// its first tunnel first at least once, always the same two, and the first tunnel's address is
/// sometimes the higher one. The order of one connection does not change between reads.
#[tokio::test]
async fn a_connections_tunnels_come_back_in_no_promised_order() {
    let mut first_answered = std::collections::BTreeSet::new();
    let mut first_address_lower = std::collections::BTreeSet::new();
    for seed in 1..=12 {
        let twin = AwsTwin::start_seeded(
            dxvpn_test_support::loopback(),
            &dxvpn_twin_aws::AwsScenario::default(),
            0.0,
            seed,
        )
        .await
        .unwrap();
        let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
        let vgw = ec2
            .create_vpn_gateway()
            .r#type(GatewayType::Ipsec1)
            .amazon_side_asn(64512)
            .send()
            .await
            .unwrap()
            .vpn_gateway
            .unwrap()
            .vpn_gateway_id
            .unwrap();
        let cgw = ec2
            .create_customer_gateway()
            .r#type(GatewayType::Ipsec1)
            .ip_address("198.18.2.1")
            .bgp_asn(65000)
            .send()
            .await
            .unwrap()
            .customer_gateway
            .unwrap()
            .customer_gateway_id
            .unwrap();
        let tunnel = |cidr: &str| {
            VpnTunnelOptionsSpecification::builder()
                .tunnel_inside_cidr(cidr)
                .build()
        };
        let vpn = ec2
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
            .await
            .unwrap()
            .vpn_connection
            .unwrap()
            .vpn_connection_id
            .unwrap();
        let read = async || {
            let out = ec2
                .describe_vpn_connections()
                .vpn_connection_ids(&vpn)
                .send()
                .await
                .unwrap();
            let options = out.vpn_connections()[0].options().unwrap().tunnel_options();
            options
                .iter()
                .map(|t| {
                    let cidr = t.tunnel_inside_cidr().unwrap().to_owned();
                    let ip: std::net::Ipv4Addr = t.outside_ip_address().unwrap().parse().unwrap();
                    (cidr, ip)
                })
                .collect::<Vec<_>>()
        };
        let answered = read().await;
        assert_eq!(
            answered,
            read().await,
            "seed {seed}: the order changed between reads"
        );
        let mut cidrs: Vec<&str> = answered.iter().map(|(c, _)| c.as_str()).collect();
        first_answered.insert(cidrs[0].to_owned());
        cidrs.sort_unstable();
        assert_eq!(cidrs, ["169.254.21.0/30", "169.254.22.0/30"], "seed {seed}");
        let address = |cidr: &str| answered.iter().find(|(c, _)| c == cidr).unwrap().1;
        first_address_lower.insert(address("169.254.21.0/30") < address("169.254.22.0/30"));
        twin.stop().await;
    }
    assert_eq!(
        first_answered.len(),
        2,
        "always answered in one order: {first_answered:?}"
    );
    assert_eq!(first_address_lower.len(), 2, "addresses always ascending");
}
