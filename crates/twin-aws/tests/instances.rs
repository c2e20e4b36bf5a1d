//! EC2 instances as the AWS twin holds them, through aws-sdk-ec2: an image named by a public
//! SSM parameter, a fixed private address that only one live instance may hold, reads that lag
//! the launch, an idempotency token that returns the first launch, and a security group that
//! cannot go while an instance holds it.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{HttpTokensState, InstanceMetadataOptionsRequest};

use dxvpn_twin_aws::AwsTwin;

const AL2023: &str =
    "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

async fn group(ec2: &Client, twin: &AwsTwin) -> String {
    let id = ec2
        .create_security_group()
        .group_name("dns")
        .description("dns")
        .vpc_id(&twin.seeded.vpc_id)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    // The new group's id lags behind its create, as EC2's do.
    while ec2
        .describe_security_groups()
        .group_ids(&id)
        .send()
        .await
        .is_err()
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    id
}

fn launch(
    ec2: &Client,
    twin: &AwsTwin,
    group: &str,
    ip: &str,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    ec2.run_instances()
        .image_id(AL2023)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&twin.seeded.subnet_ids[0])
        .private_ip_address(ip)
        .security_group_ids(group)
        .user_data("I2Nsb3VkLWNvbmZpZwo=")
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .build(),
        )
}

async fn state(ec2: &Client, id: &str) -> Option<String> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .ok()?;
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
}

#[tokio::test]
async fn an_instance_launches_at_its_address_from_the_parameters_image_and_holds_both() {
    let twin = dxvpn_test_support::aws_twin(0.0).await;
    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    let sg = group(&ec2, &twin).await;
    let out = launch(&ec2, &twin, &sg, "10.0.1.123").send().await.unwrap();
    let instance = &out.instances()[0];
    let id = instance.instance_id().unwrap().to_owned();
    assert!(
        instance.image_id().unwrap().starts_with("ami-"),
        "the parameter is resolved"
    );
    assert_eq!(instance.private_ip_address(), Some("10.0.1.123"));
    assert_eq!(
        instance.metadata_options().and_then(|m| m.http_tokens()),
        Some(&HttpTokensState::Required)
    );
    // Reads catch up with the launch within the twin's lag; then it runs (time factor 0).
    let mut seen = None;
    for _ in 0..40 {
        seen = state(&ec2, &id).await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen.as_deref(), Some("running"));

    let taken = launch(&ec2, &twin, &sg, "10.0.1.123")
        .send()
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some("InvalidIPAddress.InUse"));
    let reserved = launch(&ec2, &twin, &sg, "10.0.1.2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        reserved.code(),
        Some("InvalidParameterValue"),
        "AWS keeps the first four"
    );
    let unknown = launch(&ec2, &twin, &sg, "10.0.1.124")
        .image_id("resolve:ssm:/no/such/parameter")
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("InvalidParameterValue"));

    let held = ec2
        .delete_security_group()
        .group_id(&sg)
        .send()
        .await
        .unwrap_err();
    assert_eq!(held.code(), Some("DependencyViolation"));
    ec2.terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state(&ec2, &id).await.as_deref(),
        Some("terminated"),
        "visible for a while"
    );
    ec2.delete_security_group()
        .group_id(&sg)
        .send()
        .await
        .unwrap();
    twin.stop().await;
}

#[tokio::test]
async fn a_repeated_token_returns_the_first_launch_and_a_changed_request_is_refused() {
    let twin = dxvpn_test_support::aws_twin(0.0).await;
    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    let sg = group(&ec2, &twin).await;
    let first = launch(&ec2, &twin, &sg, "10.0.1.123")
        .client_token("t-1")
        .send()
        .await
        .unwrap();
    let again = launch(&ec2, &twin, &sg, "10.0.1.123")
        .client_token("t-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.instances()[0].instance_id(),
        again.instances()[0].instance_id()
    );
    let changed = launch(&ec2, &twin, &sg, "10.0.1.124")
        .client_token("t-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(changed.code(), Some("IdempotentParameterMismatch"));
    let inventory = twin.inventory();
    assert_eq!(inventory["instances"].as_array().unwrap().len(), 1);
    twin.stop().await;
}

/// GetParameter, raw over HTTP as awsJson1_1 (no SSM SDK in the workspace): the public
/// parameter names the image RunInstances launches for `resolve:ssm:`; an unknown one is
/// `ParameterNotFound`.
#[tokio::test]
async fn the_public_parameter_names_the_image_a_resolve_ssm_launch_uses() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let twin = dxvpn_test_support::aws_twin(0.0).await;
    let endpoint = twin.endpoint.trim_start_matches("http://").to_owned();
    let get = async |name: &str| {
        let mut stream = tokio::net::TcpStream::connect(&endpoint).await.unwrap();
        let body = format!("{{\"Name\":\"{name}\"}}");
        let request = format!(
            "POST / HTTP/1.0\r\nX-Amz-Target: AmazonSSM.GetParameter\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (
            head.lines().next().unwrap_or_default().to_owned(),
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
        )
    };
    let name = AL2023.trim_start_matches("resolve:ssm:");
    let (status, found) = get(name).await;
    assert!(status.contains("200"), "{status}");
    let ami = found["Parameter"]["Value"].as_str().unwrap().to_owned();
    assert_eq!(found["Parameter"]["DataType"], "aws:ec2:image");

    let ec2 = dxvpn_test_support::ec2_client(&twin.endpoint);
    let sg = group(&ec2, &twin).await;
    let out = launch(&ec2, &twin, &sg, "10.0.1.123").send().await.unwrap();
    assert_eq!(out.instances()[0].image_id(), Some(ami.as_str()));

    let (status, missing) = get("/aws/service/no-such-parameter").await;
    assert!(status.contains("400"), "{status}");
    assert_eq!(missing["__type"], "ParameterNotFound");
    twin.stop().await;
}
