//! Wire tests: the real aws-sdk-ec2 client against the AWS twin over HTTP, success and error
//! paths, and the twin's response shapes against AWS's official samples.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;

use aws_sdk_ec2::Client;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, GatewayType, ResourceType, Tag, TagSpecification, VpnConnectionOptionsSpecification,
    VpnTunnelOptionsSpecification,
};
use dxvpn_twin_aws::{AwsTwin, Fault, FaultKind};

/// A twin where everything takes 1/1000 of AWS's time (a 5-minute VPN connection: 0.3 s).
async fn twin() -> (AwsTwin, Client) {
    let twin = dxvpn_test_support::aws_twin(0.001).await;
    let client = dxvpn_test_support::ec2_client(&twin.endpoint);
    (twin, client)
}

fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(resource);
    for (k, v) in pairs {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn vpn_gateway_lifecycle_attach_propagate_detach_delete() {
    let (twin, ec2) = twin().await;
    let vpc_id = twin.seeded.vpc_id.clone();
    let rtb_id = twin.seeded.route_table_ids[0].clone();

    let vgw = ec2
        .create_vpn_gateway()
        .r#type(GatewayType::Ipsec1)
        .amazon_side_asn(64512)
        .tag_specifications(tags(
            ResourceType::VpnGateway,
            &[
                ("dxvpn:deployment", "dx"),
                ("dxvpn:role", "aws.vpn_gateway"),
            ],
        ))
        .send()
        .await
        .unwrap()
        .vpn_gateway
        .unwrap();
    let vgw_id = vgw.vpn_gateway_id.clone().unwrap();
    assert!(vgw_id.starts_with("vgw-") && vgw_id.len() == 21, "{vgw_id}");
    assert_eq!(vgw.amazon_side_asn, Some(64512));

    // Found again by its tags, as dxvpn does, once reads have caught up with the create.
    let found = eventually("the new gateway listed by its tags", async || {
        let out = ec2
            .describe_vpn_gateways()
            .filters(
                Filter::builder()
                    .name("tag:dxvpn:deployment")
                    .values("dx")
                    .build(),
            )
            .filters(Filter::builder().name("state").values("available").build())
            .send()
            .await
            .unwrap();
        (!out.vpn_gateways().is_empty()).then_some(out)
    })
    .await;
    assert_eq!(found.vpn_gateways().len(), 1);
    let none = ec2
        .describe_vpn_gateways()
        .filters(
            Filter::builder()
                .name("tag:dxvpn:deployment")
                .values("other")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(none.vpn_gateways().is_empty());

    // Propagation before the attachment is complete is refused, then works once attached.
    let attach = ec2
        .attach_vpn_gateway()
        .vpc_id(&vpc_id)
        .vpn_gateway_id(&vgw_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attach.vpc_attachment.unwrap().state.unwrap().as_str(),
        "attaching"
    );
    eventually("attachment", async || {
        let g = ec2
            .describe_vpn_gateways()
            .vpn_gateway_ids(&vgw_id)
            .send()
            .await
            .unwrap();
        let state = g.vpn_gateways()[0].vpc_attachments()[0].state.clone()?;
        (state.as_str() == "attached").then_some(())
    })
    .await;
    ec2.enable_vgw_route_propagation()
        .gateway_id(&vgw_id)
        .route_table_id(&rtb_id)
        .send()
        .await
        .unwrap();
    let rtb = ec2
        .describe_route_tables()
        .route_table_ids(&rtb_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rtb.route_tables()[0].propagating_vgws()[0]
            .gateway_id
            .as_deref(),
        Some(vgw_id.as_str())
    );

    // Deleting an attached gateway is refused (negative control), then works after detaching.
    let e = ec2
        .delete_vpn_gateway()
        .vpn_gateway_id(&vgw_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("IncorrectState"));
    ec2.disable_vgw_route_propagation()
        .gateway_id(&vgw_id)
        .route_table_id(&rtb_id)
        .send()
        .await
        .unwrap();
    ec2.detach_vpn_gateway()
        .vpc_id(&vpc_id)
        .vpn_gateway_id(&vgw_id)
        .send()
        .await
        .unwrap();
    eventually("detachment", async || {
        ec2.delete_vpn_gateway()
            .vpn_gateway_id(&vgw_id)
            .send()
            .await
            .ok()
    })
    .await;
    let e = ec2
        .describe_vpn_gateways()
        .vpn_gateway_ids("vgw-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidVpnGatewayID.NotFound"));
    twin.stop().await;
}

#[tokio::test]
async fn customer_gateways_and_vpn_connections_with_tunnel_options() {
    let (twin, ec2) = twin().await;
    let vgw_id = ec2
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
        .unwrap();
    let cgw_id = cgw.customer_gateway_id.clone().unwrap();
    assert_eq!(cgw.state.as_deref(), Some("pending"));
    // The same request again is the same gateway (EC2's content-based idempotency).
    let again = ec2
        .create_customer_gateway()
        .r#type(GatewayType::Ipsec1)
        .ip_address("198.18.2.1")
        .bgp_asn(65000)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.customer_gateway.unwrap().customer_gateway_id.unwrap(),
        cgw_id
    );

    let tunnel = |cidr: &str, key: &str| {
        VpnTunnelOptionsSpecification::builder()
            .tunnel_inside_cidr(cidr)
            .pre_shared_key(key)
            .ike_versions(
                aws_sdk_ec2::types::IkeVersionsRequestListValue::builder()
                    .value("ikev2")
                    .build(),
            )
            .startup_action("start")
            .build()
    };
    let options = VpnConnectionOptionsSpecification::builder()
        .static_routes_only(false)
        .tunnel_options(tunnel("169.254.21.0/30", "First.Tunnel_Key1"))
        .tunnel_options(tunnel("169.254.22.0/30", "Second.Tunnel_Key2"))
        .build();
    let create = || {
        ec2.create_vpn_connection()
            .r#type("ipsec.1")
            .customer_gateway_id(&cgw_id)
            .vpn_gateway_id(&vgw_id)
            .options(options.clone())
    };
    // The customer gateway must be known (reads lag behind its create) and available first.
    let early = create().send().await;
    if let Err(e) = &early {
        let code = e.code().unwrap_or_default();
        assert!(
            [
                "InvalidCustomerGatewayID.NotFound",
                "InvalidCustomerGatewayState"
            ]
            .contains(&code),
            "{code}"
        );
    }
    let vpn = match early {
        Ok(out) => out.vpn_connection.unwrap(),
        Err(_) => eventually("customer gateway available", async || {
            create().send().await.ok()
        })
        .await
        .vpn_connection
        .unwrap(),
    };
    let vpn_id = vpn.vpn_connection_id.clone().unwrap();
    assert!(
        vpn.customer_gateway_configuration
            .as_deref()
            .is_some_and(|c| c.contains("<vpn_connection"))
    );

    let described = eventually("connection available", async || {
        // Until reads catch up with the create, the new id is not found.
        let out = ec2
            .describe_vpn_connections()
            .vpn_connection_ids(&vpn_id)
            .send()
            .await
            .ok()?;
        let v = out.vpn_connections()[0].clone();
        (v.state.as_ref()?.as_str() == "available").then_some(v)
    })
    .await;
    let tunnels = described.options.clone().unwrap().tunnel_options.unwrap();
    assert_eq!(tunnels.len(), 2);
    // The tunnels come in no promised order: found by inside CIDR.
    let second = tunnels
        .iter()
        .find(|t| t.tunnel_inside_cidr.as_deref() == Some("169.254.22.0/30"))
        .unwrap();
    assert_eq!(
        second.pre_shared_key.as_deref(),
        Some("Second.Tunnel_Key2"),
        "keys are read back from the cloud"
    );
    let outside: Vec<String> = tunnels
        .iter()
        .map(|t| t.outside_ip_address.clone().unwrap())
        .collect();
    assert!(outside.iter().all(|ip| ip.starts_with("198.18.1.")) && outside[0] != outside[1]);
    let telemetry = described.vgw_telemetry();
    assert_eq!(telemetry.len(), 2);
    assert!(
        telemetry
            .iter()
            .all(|t| t.status.as_ref().map(|s| s.as_str()) == Some("DOWN")),
        "no data plane bound: honest DOWN"
    );

    // The documented refusals.
    let cgw_same_asn = ec2
        .create_customer_gateway()
        .r#type(GatewayType::Ipsec1)
        .ip_address("198.18.2.9")
        .bgp_asn(64512)
        .send()
        .await
        .unwrap()
        .customer_gateway
        .unwrap()
        .customer_gateway_id
        .unwrap();
    let cgw_other = ec2
        .create_customer_gateway()
        .r#type(GatewayType::Ipsec1)
        .ip_address("198.18.2.2")
        .bgp_asn(65000)
        .send()
        .await
        .unwrap()
        .customer_gateway
        .unwrap()
        .customer_gateway_id
        .unwrap();
    // Known (reads lag behind the creates) and available.
    tokio::time::sleep(dxvpn_twin_aws::READ_LAG_MAX).await;
    let refuse = |cgw: &str, options: VpnConnectionOptionsSpecification| {
        let request = ec2
            .create_vpn_connection()
            .r#type("ipsec.1")
            .customer_gateway_id(cgw)
            .vpn_gateway_id(&vgw_id)
            .options(options);
        async move { request.send().await.unwrap_err().code().map(str::to_owned) }
    };
    assert_eq!(
        refuse(
            &cgw_same_asn,
            VpnConnectionOptionsSpecification::builder().build()
        )
        .await
        .as_deref(),
        Some("AsnConflict")
    );
    let reused = VpnConnectionOptionsSpecification::builder()
        .tunnel_options(tunnel("169.254.21.0/30", "Third.Tunnel_Key3"))
        .build();
    assert_eq!(
        refuse(&cgw_other, reused).await.as_deref(),
        Some("InvalidCidr.InUse")
    );
    let reserved = VpnConnectionOptionsSpecification::builder()
        .tunnel_options(tunnel("169.254.5.0/30", "Third.Tunnel_Key3"))
        .build();
    assert_eq!(
        refuse(&cgw_other, reserved).await.as_deref(),
        Some("InvalidParameterValue")
    );
    let bad_key = VpnConnectionOptionsSpecification::builder()
        .tunnel_options(tunnel("169.254.21.4/30", "Bad+Key+Here"))
        .build();
    let e = ec2
        .create_vpn_connection()
        .r#type("ipsec.1")
        .customer_gateway_id(&cgw_other)
        .vpn_gateway_id(&vgw_id)
        .options(bad_key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    assert!(
        !e.message().unwrap_or_default().contains("Bad+Key+Here"),
        "the twin never echoes a key"
    );
    let e = ec2
        .delete_customer_gateway()
        .customer_gateway_id(&cgw_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some("IncorrectState"),
        "in use by a VPN connection"
    );
    let e = ec2
        .delete_vpn_connection()
        .vpn_connection_id("vpn-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidVpnConnectionID.NotFound"));

    // Deleting: deleting -> deleted, still describable (the waiter's semantics).
    ec2.delete_vpn_connection()
        .vpn_connection_id(&vpn_id)
        .send()
        .await
        .unwrap();
    eventually("connection deleted", async || {
        let out = ec2
            .describe_vpn_connections()
            .vpn_connection_ids(&vpn_id)
            .send()
            .await
            .unwrap();
        (out.vpn_connections()[0].state.as_ref()?.as_str() == "deleted").then_some(())
    })
    .await;
    ec2.delete_customer_gateway()
        .customer_gateway_id(&cgw_id)
        .send()
        .await
        .unwrap();
    twin.stop().await;
}

#[tokio::test]
async fn tags_vpcs_subnets_and_filters() {
    let (twin, ec2) = twin().await;
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    assert_eq!(vpcs.vpcs()[0].cidr_block.as_deref(), Some("10.0.0.0/16"));
    let subnets = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("vpc-id")
                .values(&twin.seeded.vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(subnets.subnets().len(), 2);
    let rtb = &twin.seeded.route_table_ids[1];
    ec2.create_tags()
        .resources(rtb)
        .tags(Tag::builder().key("team").value("net").build())
        .send()
        .await
        .unwrap();
    let tagged = ec2
        .describe_route_tables()
        .filters(Filter::builder().name("tag:team").values("n*").build())
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.route_tables().len(), 1);
    ec2.delete_tags()
        .resources(rtb)
        .tags(Tag::builder().key("team").build())
        .send()
        .await
        .unwrap();
    let tagged = ec2
        .describe_route_tables()
        .filters(Filter::builder().name("tag:team").values("net").build())
        .send()
        .await
        .unwrap();
    assert!(tagged.route_tables().is_empty());
    let e = ec2
        .create_tags()
        .resources("vgw-00000000000000000")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidID"));
    let e = ec2
        .describe_route_tables()
        .filters(Filter::builder().name("no-such-filter").values("x").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    twin.stop().await;
}

#[tokio::test]
async fn injected_faults_are_retried_or_surfaced_with_their_code() {
    let (twin, ec2) = twin().await;
    let fault = |at_call, kind, after_effect| Fault {
        action: "CreateCustomerGateway".into(),
        at_call,
        kind,
        after_effect,
    };
    // Transient faults: the SDK's standard retry absorbs them.
    twin.inject(fault(1, FaultKind::ServerError, false));
    twin.inject(fault(2, FaultKind::Throttle, false));
    twin.inject(fault(3, FaultKind::Drop, true));
    let cgw = ec2
        .create_customer_gateway()
        .r#type(GatewayType::Ipsec1)
        .ip_address("198.18.2.1")
        .bgp_asn(65000)
        .send()
        .await;
    // The third try was answered by a dropped connection after the gateway was made; the SDK
    // gave up after 3 attempts or retried once more and got the same gateway back.
    let calls = twin.inventory()["calls"]["CreateCustomerGateway"]
        .as_u64()
        .unwrap();
    assert!(calls >= 3, "the SDK retried: {calls} calls");
    if let Ok(out) = cgw {
        assert_eq!(
            twin.inventory()["customer_gateways"][0]["id"].as_str(),
            out.customer_gateway.unwrap().customer_gateway_id.as_deref()
        );
    }
    assert_eq!(
        twin.inventory()["customer_gateways"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no duplicate"
    );
    // A client error is not retried and reaches the caller with the twin's code and message.
    twin.inject(Fault {
        action: "CreateVpnGateway".into(),
        at_call: 1,
        kind: FaultKind::Error {
            code: "VpnGatewayLimitExceeded".into(),
            message: "limit (injected)".into(),
        },
        after_effect: false,
    });
    let e = ec2
        .create_vpn_gateway()
        .r#type(GatewayType::Ipsec1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Some("VpnGatewayLimitExceeded"), Some("limit (injected)"))
    );
    assert_eq!(twin.inventory()["calls"]["CreateVpnGateway"], 1);
    twin.stop().await;
}

/// Element paths of an XML document (`vpnGateway/attachments/item/state`), `item` kept.
fn paths(xml: &str) -> std::collections::BTreeSet<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut out = std::collections::BTreeSet::new();
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => {
                stack.push(e.local_name().into_inner().to_owned());
                out.insert(stack.join("/"));
            }
            Ok(quick_xml::events::Event::Empty(e)) => {
                out.insert(format!(
                    "{}/{}",
                    stack.join("/"),
                    e.local_name().into_inner()
                ));
            }
            Ok(quick_xml::events::Event::End(_)) => {
                stack.pop();
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// The first `<XResponse ...>...</XResponse>` document of an official sample file.
fn first_document(sample: &str, root: &str) -> String {
    let start = sample.find(&format!("<{root}")).unwrap();
    let end = sample[start..].find(&format!("</{root}>")).unwrap() + start + root.len() + 3;
    sample[start..end].to_owned()
}

/// The text of the first `<tag>...` in `xml`.
fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    &xml[start..start + xml[start..].find('<').unwrap()]
}

#[tokio::test]
async fn twin_responses_have_the_shape_of_the_official_samples() {
    let (twin, _) = twin().await;
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/examples/aws-ec2");
    let endpoint = twin.endpoint.trim_start_matches("http://").to_owned();
    // A bare HTTP/1.0 POST: the raw document, as any client receives it.
    let raw = async |params: String| {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&endpoint).await.unwrap();
        let body = format!("Version=2016-11-15&{params}");
        let request = format!(
            "POST / HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.split_once("\r\n\r\n").unwrap().1.to_owned()
    };
    let mut failures = Vec::new();
    let mut compare = |file: &str, root: &str, ours: &str, exempt: &[&str]| {
        let theirs = first_document(&std::fs::read_to_string(samples.join(file)).unwrap(), root);
        let missing: Vec<String> = paths(&theirs)
            .difference(&paths(ours))
            .filter(|p| !exempt.iter().any(|e| p.ends_with(e)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            failures.push(format!("{file}: the twin lacks {missing:?}\n{ours}"));
        }
    };

    let created = raw("Action=CreateVpnGateway&Type=ipsec.1&TagSpecification.1.ResourceType=vpn-gateway&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=NYOffice".into()).await;
    compare(
        "CreateVpnGateway.sample-responses.xml",
        "CreateVpnGatewayResponse",
        &created,
        &[],
    );
    let vgw = between(&created, "vpnGatewayId").to_owned();
    let vpc = twin.seeded.vpc_id.clone();
    // Reads and writes that name a new id lag behind its create (EC2 developer guide).
    tokio::time::sleep(dxvpn_twin_aws::READ_LAG_MAX).await;
    compare(
        "AttachVpnGateway.sample.xml",
        "AttachVpnGatewayResponse",
        &raw(format!(
            "Action=AttachVpnGateway&VpnGatewayId={vgw}&VpcId={vpc}"
        ))
        .await,
        &[],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    compare(
        "DescribeVpnGateways.sample.xml",
        "DescribeVpnGatewaysResponse",
        &raw(format!("Action=DescribeVpnGateways&VpnGatewayId.1={vgw}")).await,
        &[],
    );

    let cgw_xml = raw("Action=CreateCustomerGateway&Type=ipsec.1&IpAddress=12.1.2.3&BgpAsn=65534&DeviceName=my-device".into()).await;
    compare(
        "CreateCustomerGateway.sample.xml",
        "CreateCustomerGatewayResponse",
        &cgw_xml,
        &[],
    );
    let cgw = between(&cgw_xml, "customerGatewayId").to_owned();
    tokio::time::sleep(dxvpn_twin_aws::READ_LAG_MAX).await;
    compare(
        "DescribeCustomerGateways.sample.xml",
        "DescribeCustomerGatewaysResponse",
        &raw(format!(
            "Action=DescribeCustomerGateways&CustomerGatewayId.1={cgw}"
        ))
        .await,
        &[],
    );

    let vpn_xml = raw(format!("Action=CreateVpnConnection&Type=ipsec.1&CustomerGatewayId={cgw}&VpnGatewayId={vgw}&TagSpecification.1.ResourceType=vpn-connection&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=CanadaVPN")).await;
    compare(
        "CreateVpnConnection.sample.xml",
        "CreateVpnConnectionResponse",
        &vpn_xml,
        &[],
    );
    let vpn = between(&vpn_xml, "vpnConnectionId").to_owned();
    tokio::time::sleep(dxvpn_twin_aws::READ_LAG_MAX).await;
    // The official sample describes a transit-gateway connection; dxvpn's use a VGW instead.
    compare(
        "DescribeVpnConnections.sample.xml",
        "DescribeVpnConnectionsResponse",
        &raw(format!(
            "Action=DescribeVpnConnections&VpnConnectionId.1={vpn}"
        ))
        .await,
        &["transitGatewayId"],
    );
    compare(
        "DetachVpnGateway.sample.xml",
        "DetachVpnGatewayResponse",
        &raw(format!(
            "Action=DetachVpnGateway&VpnGatewayId={vgw}&VpcId={vpc}"
        ))
        .await,
        &[],
    );

    let not_found =
        raw("Action=DescribeVpnGateways&VpnGatewayId.1=vgw-00000000000000000".into()).await;
    let theirs = first_document(
        &std::fs::read_to_string(samples.join("ErrorResponse.sample.xml")).unwrap(),
        "Response",
    );
    assert_eq!(
        paths(&theirs),
        paths(&not_found),
        "error envelope\n{not_found}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // EnableVgwRoutePropagation's sample has a documentation quirk (root without `Response`);
    // the twin follows the model, which the SDK requires (checked in the lifecycle test).
    twin.stop().await;
}
