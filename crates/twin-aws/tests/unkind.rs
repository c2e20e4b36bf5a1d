//! What EC2 and Route 53 Resolver do not promise, as the AWS twin chooses it from its seed: the
//! order of a VPN connection's tunnels, the order of outside addresses, the order of a list.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_ec2::types::{VpnConnectionOptionsSpecification, VpnTunnelOptionsSpecification};
use std::collections::BTreeSet;

use dxvpn_twin_aws::{AwsScenario, AwsTwin};

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
        let (vgw, cgw) = dxvpn_test_support::twin_gateways(&ec2).await;
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
        while ec2
            .describe_vpn_connections()
            .vpn_connection_ids(&vpn)
            .send()
            .await
            .is_err()
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
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

/// Route 53 Resolver lists an endpoint's addresses in no promised order: over a few seeds both
/// orders of an endpoint's two addresses occur, and one twin answers the same order twice.
#[tokio::test]
async fn resolver_lists_come_back_in_no_promised_order() {
    use aws_sdk_route53resolver::types::{IpAddressRequest, ResolverEndpointDirection};
    let mut orders = BTreeSet::new();
    for seed in 1..=12 {
        let twin = AwsTwin::start_seeded(
            "127.0.0.1:0".parse().unwrap(),
            &AwsScenario::default(),
            0.0,
            seed,
        )
        .await
        .unwrap();
        let s = &twin.seeded;
        let (ec2, r53) = (
            dxvpn_test_support::ec2_client(&twin.endpoint),
            dxvpn_test_support::resolver_client(&twin.endpoint),
        );
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
        let ip = |subnet: &str, address: &str| {
            IpAddressRequest::builder()
                .subnet_id(subnet)
                .ip(address)
                .build()
                .unwrap()
        };
        let endpoint = r53
            .create_resolver_endpoint()
            .creator_request_id("order")
            .security_group_ids(&sg)
            .direction(ResolverEndpointDirection::Inbound)
            .ip_addresses(ip(&s.subnet_ids[0], "10.0.1.10"))
            .ip_addresses(ip(&s.subnet_ids[1], "10.0.2.10"))
            .send()
            .await
            .unwrap()
            .resolver_endpoint
            .unwrap()
            .id
            .unwrap();
        let listed = || async {
            r53.list_resolver_endpoint_ip_addresses()
                .resolver_endpoint_id(&endpoint)
                .send()
                .await
                .unwrap()
                .ip_addresses()
                .iter()
                .filter_map(|a| a.ip().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let first = listed().await;
        assert_eq!(
            first,
            listed().await,
            "seed {seed}: the order changed between reads"
        );
        orders.insert(first);
        twin.stop().await;
    }
    assert_eq!(
        orders.len(),
        2,
        "both orders occur over 12 seeds: {orders:?}"
    );
}
