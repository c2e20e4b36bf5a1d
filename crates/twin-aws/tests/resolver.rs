//! Route 53 Resolver as the AWS twin serves it, through the real aws-sdk-route53resolver.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use dxvpn_test_support::{ec2_client, resolver_client};
use dxvpn_twin_aws::{AwsScenario, AwsTwin};

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
    let (ec2, r53) = (ec2_client(&twin.endpoint), resolver_client(&twin.endpoint));
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

/// Lists come in pages of `MaxResults` with a `NextToken` while more remain, as the List*
/// references say; the SDK's paginator reads them all, each once; a token that the twin did
/// not give is `InvalidNextTokenException`.
#[tokio::test]
async fn resolver_lists_are_paged_and_the_paginator_reads_every_page() {
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    use aws_sdk_route53resolver::types::{
        IpAddressRequest, ResolverEndpointDirection, RuleTypeOption, TargetAddress,
    };
    let twin = AwsTwin::start(
        "127.0.0.1:0".parse().unwrap(),
        &AwsScenario::default(),
        0.01,
    )
    .await
    .unwrap();
    let (ec2, r53) = (ec2_client(&twin.endpoint), resolver_client(&twin.endpoint));
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
    let endpoint = r53
        .create_resolver_endpoint()
        .creator_request_id("out")
        .security_group_ids(&sg)
        .direction(ResolverEndpointDirection::Outbound)
        .ip_addresses(ip(&s.subnet_ids[0]))
        .ip_addresses(ip(&s.subnet_ids[1]))
        .send()
        .await
        .unwrap()
        .resolver_endpoint
        .unwrap();
    for i in 0..5 {
        r53.create_resolver_rule()
            .resolver_endpoint_id(endpoint.id().unwrap())
            .creator_request_id(format!("rule-{i}"))
            .rule_type(RuleTypeOption::Forward)
            .domain_name(format!("zone{i}.example"))
            .target_ips(TargetAddress::builder().ip("10.51.4.4").port(53).build())
            .send()
            .await
            .unwrap();
    }
    let first = r53
        .list_resolver_rules()
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.resolver_rules().len(), 2);
    assert!(first.next_token().is_some(), "more remain: a token");

    let mut seen: Vec<String> = Vec::new();
    let mut pages = r53
        .list_resolver_rules()
        .max_results(2)
        .into_paginator()
        .items()
        .send();
    while let Some(rule) = pages.next().await {
        seen.push(rule.unwrap().creator_request_id().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..5).map(|i| format!("rule-{i}")).collect::<Vec<_>>()
    );

    let last = r53
        .list_resolver_rules()
        .max_results(100)
        .send()
        .await
        .unwrap();
    assert_eq!(last.resolver_rules().len(), 5);
    assert_eq!(last.next_token(), None, "the last page has no token");

    let bad = r53
        .list_resolver_rules()
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("InvalidNextTokenException"), "{bad:?}");
}
