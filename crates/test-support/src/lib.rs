//! Fixtures shared by dxvpn's test files, so that none copies another's: the twins on loopback
//! ([`aws_twin`], [`azure_twin`]), configs that point one cloud's half at one twin
//! ([`aws_config`], [`azure_config`]), an SDK client for the AWS twin ([`ec2_client`]), a lab
//! deployment taken to converged ([`converged`]), and counts of what a twin holds.
//!
//! Only tests depend on this crate; it panics on failure, as a test fixture should.
//!
//! ```no_run
//! # async fn demo() {
//! let twin = dxvpn_test_support::aws_twin(0.0005).await;
//! let plan = dxvpn_plan::plan_from_toml(&dxvpn_test_support::aws_config("development", &twin));
//! assert!(plan.is_ok());
//! assert_eq!(dxvpn_test_support::aws_live(&twin, "vpn_connections"), 0);
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use azure_core::Method as AzureMethod;
use dxvpn_deploy::Deployer;
use dxvpn_lab::Lab;
use dxvpn_netlab::{DataPlane, DataPlaneStatus, Topology};
use dxvpn_plan::Plan;
use dxvpn_twin_aws::{AwsScenario, AwsTwin};
use dxvpn_twin_azure::{AzureScenario, AzureTwin};

/// How long a lab deployment may take to carry traffic both ways.
pub const CONVERGE: Duration = Duration::from_secs(120);

/// Port 0 on loopback: a free port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The AWS twin with its default scenario on a free loopback port.
pub async fn aws_twin(time_factor: f64) -> AwsTwin {
    let twin = AwsTwin::start(loopback(), &AwsScenario::default(), time_factor)
        .await
        .unwrap();
    // Shown with a failing test's output: DXVPN_TWIN_SEED=N replays the twin's choices.
    eprintln!("AWS twin seed {}", twin.seeded.seed);
    twin
}

/// The AWS twin with its default scenario and the seed of its undocumented choices given.
pub async fn aws_twin_seeded(time_factor: f64, seed: u64) -> AwsTwin {
    AwsTwin::start_seeded(loopback(), &AwsScenario::default(), time_factor, seed)
        .await
        .unwrap()
}

/// The Azure twin with `scenario` and the seed of its undocumented choices given.
pub async fn azure_twin_seeded(scenario: &AzureScenario, time_factor: f64, seed: u64) -> AzureTwin {
    AzureTwin::start_seeded(loopback(), scenario, time_factor, seed)
        .await
        .unwrap()
}

/// The Azure twin with `scenario` on a free loopback port.
pub async fn azure_twin(scenario: &AzureScenario, time_factor: f64) -> AzureTwin {
    let twin = AzureTwin::start(loopback(), scenario, time_factor)
        .await
        .unwrap();
    eprintln!("Azure twin seed {}", twin.seeded.seed);
    twin
}

/// A config whose AWS half is the twin's seeded VPC (two subnets and route tables) and whose
/// Azure half is a fixed VNet no twin serves.
pub fn aws_config(use_case: &str, twin: &AwsTwin) -> String {
    let s = &twin.seeded;
    format!(
        r#"name = "dx-test"
use_case = "{use_case}"
[aws]
region = "eu-south-1"
vpc_id = "{vpc}"
vpc_cidr = "10.0.0.0/16"
route_table_ids = ["{rtb0}", "{rtb1}"]
private_subnet_ids = ["{sn0}", "{sn1}"]
private_subnet_cidrs = ["10.0.1.0/24", "10.0.2.0/24"]
endpoint_url = "{endpoint}"
[azure]
subscription_id = "00000000-0000-0000-0000-000000000000"
resource_group = "dx-rg"
location = "italynorth"
vnet_name = "dx-vnet"
vnet_cidr = "10.51.0.0/16"
gateway_subnet_cidr = "10.51.255.0/27"
"#,
        vpc = s.vpc_id,
        rtb0 = s.route_table_ids[0],
        rtb1 = s.route_table_ids[1],
        sn0 = s.subnet_ids[0],
        sn1 = s.subnet_ids[1],
        endpoint = twin.endpoint
    )
}

/// A config whose Azure half is the twin's seeded VNet (named as in `scenario`) and whose AWS
/// half is a fixed VPC no twin serves; `extra` is appended to the `[azure]` table.
pub fn azure_config(
    use_case: &str,
    twin: &AzureTwin,
    scenario: &AzureScenario,
    extra: &str,
) -> String {
    let s = &twin.seeded;
    format!(
        r#"name = "dx-test"
use_case = "{use_case}"
[aws]
region = "eu-south-1"
vpc_id = "vpc-0123456789abcdef0"
vpc_cidr = "10.0.0.0/16"
route_table_ids = ["rtb-0123456789abcdef0"]
[azure]
subscription_id = "{sub}"
resource_group = "{rg}"
location = "{location}"
vnet_name = "{vnet}"
vnet_cidr = "10.1.0.0/16"
gateway_subnet_cidr = "10.1.255.0/27"
endpoint = "{endpoint}"
{extra}
"#,
        sub = s.subscription_id,
        rg = s.resource_group,
        location = s.location,
        vnet = scenario.vnet_name,
        endpoint = twin.endpoint,
    )
}

/// A plain aws-sdk-ec2 client for the twin at `endpoint`, with the SDK's default retry.
pub fn ec2_client(endpoint: &str) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{BehaviorVersion, Region};
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(lab_credentials())
            .build(),
    )
}

/// The credentials the twins take (any would do; these sign like real ones).
fn lab_credentials() -> aws_sdk_ec2::config::Credentials {
    aws_sdk_ec2::config::Credentials::new("AKIDLAB", "lab-secret", None, None, "dxvpn-lab")
}

/// A plain aws-sdk-iam client for the twin at `endpoint`.
pub fn iam_client(endpoint: &str) -> aws_sdk_iam::Client {
    use aws_sdk_iam::config::{BehaviorVersion, Region};
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(lab_credentials())
            .build(),
    )
}

/// A VPN gateway (ASN 64512) and a customer gateway (198.18.2.1, ASN 65000) made through `ec2`
/// in an AWS twin: their ids, once both are known to the calls that name them (EC2's reads lag
/// its creates).
pub async fn twin_gateways(ec2: &aws_sdk_ec2::Client) -> (String, String) {
    use aws_sdk_ec2::types::GatewayType;
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
    while ec2
        .describe_customer_gateways()
        .customer_gateway_ids(&cgw)
        .send()
        .await
        .is_err()
        || ec2
            .describe_vpn_gateways()
            .vpn_gateway_ids(&vgw)
            .send()
            .await
            .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (vgw, cgw)
}

/// A VPN connection between fresh gateways ([`twin_gateways`]) in the AWS twin at `endpoint`:
/// its id and its tunnels' outside addresses.
pub async fn twin_vpn_connection(endpoint: &str) -> (String, Vec<std::net::Ipv4Addr>) {
    let ec2 = ec2_client(endpoint);
    let (vgw, cgw) = twin_gateways(&ec2).await;
    let start = Instant::now();
    loop {
        let created = ec2
            .create_vpn_connection()
            .r#type("ipsec.1")
            .customer_gateway_id(&cgw)
            .vpn_gateway_id(&vgw)
            .send()
            .await;
        match created {
            Ok(out) => {
                let vpn = out.vpn_connection.unwrap();
                let ips = vpn
                    .options()
                    .unwrap()
                    .tunnel_options()
                    .iter()
                    .map(|t| t.outside_ip_address().unwrap().parse().unwrap())
                    .collect();
                return (vpn.vpn_connection_id.unwrap(), ips);
            }
            // The customer gateway is briefly `pending`.
            Err(_) if start.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// A plain aws-sdk-cloudwatch client for the twin at `endpoint`.
pub fn cloudwatch_client(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    use aws_sdk_cloudwatch::config::{BehaviorVersion, Region};
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(lab_credentials())
            .build(),
    )
}

/// A plain aws-sdk-sns client for the twin at `endpoint`.
pub fn sns_client(endpoint: &str) -> aws_sdk_sns::Client {
    use aws_sdk_sns::config::{BehaviorVersion, Region};
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(lab_credentials())
            .build(),
    )
}

/// A plain aws-sdk-route53resolver client for the twin at `endpoint`.
pub fn resolver_client(endpoint: &str) -> aws_sdk_route53resolver::Client {
    use aws_sdk_route53resolver::config::{BehaviorVersion, Region};
    aws_sdk_route53resolver::Client::from_conf(
        aws_sdk_route53resolver::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            .endpoint_url(endpoint)
            .credentials_provider(lab_credentials())
            .build(),
    )
}

/// Sends `method` to `path` (`/subscriptions/...`) on the Azure twin with `body` as JSON, with
/// no typed model between, at api-version 2024-03-01 (which Microsoft.Network and
/// Microsoft.Compute both serve): the status and the JSON answered (null when none).
pub async fn azure_raw(
    twin: &AzureTwin,
    method: azure_core::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    azure_raw_query(twin, method, path, "api-version=2024-03-01", body).await
}

/// [`azure_raw`] with the query string given whole (`api-version=...&...`, encoded).
pub async fn azure_raw_query(
    twin: &AzureTwin,
    method: azure_core::Method,
    path: &str,
    query: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = azure_core::Url::parse(&format!("{}{path}?{query}", twin.endpoint)).unwrap();
    let mut request = azure_core::Request::new(url, method);
    request.insert_header("authorization", "Bearer lab-token");
    if let Some(body) = body {
        request.insert_header("content-type", "application/json");
        request.set_body(serde_json::to_vec(body).unwrap());
    }
    let response = azure_core::new_http_client()
        .execute_request(&request)
        .await
        .unwrap();
    let status = u16::from(response.status());
    let bytes = response.into_body().collect().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// GET `path` on the Azure twin as JSON ([`azure_raw`]).
pub async fn azure_raw_get(twin: &AzureTwin, path: &str) -> serde_json::Value {
    azure_raw(twin, azure_core::Method::Get, path, None).await.1
}

/// PUT `body` to `path` on the Azure twin as JSON ([`azure_raw`]), and wait until the resource
/// is provisioned again.
pub async fn azure_raw_put(twin: &AzureTwin, path: &str, body: &serde_json::Value) {
    let (status, answer) = azure_raw(twin, azure_core::Method::Put, path, Some(body)).await;
    assert!(status < 300, "PUT {path}: {status} {answer}");
    for _ in 0..200 {
        let state = azure_raw_get(twin, path).await["properties"]["provisioningState"].clone();
        if state == "Succeeded" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("PUT {path}: not provisioned");
}

/// How many of the AWS twin's `list` (`vpn_connections`, ...) are not deleted.
pub fn aws_live(twin: &AwsTwin, list: &str) -> usize {
    twin.inventory()[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !matches!(r["state"].as_str(), Some("deleted")))
        .count()
}

/// How many `Microsoft.Network/<kind>` resources the Azure twin holds.
pub fn azure_count(twin: &AzureTwin, kind: &str) -> usize {
    twin.inventory()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == format!("Microsoft.Network/{kind}"))
        .count()
}

/// A lab deployment after `up`: every tunnel healthy in both clouds' reports, and the data
/// plane carrying routes both ways.
pub struct Converged {
    /// The plan deployed.
    pub plan: Arc<Plan>,
    /// Its deployer.
    pub deployer: Deployer,
    /// The data plane's run prefix.
    pub prefix: String,
    /// What the data plane was built from.
    pub topology: Topology,
}

/// Runs `up` for `config` on `lab` and waits until both clouds report every tunnel healthy
/// and routes cross both ways (the VNet fabric learns the way back a moment after the clouds
/// report up).
pub async fn converged(lab: &Lab, config: &str) -> Converged {
    let plan = Arc::new(dxvpn_plan::plan_from_toml(config).unwrap());
    let deployer = Deployer::connect(&plan).await.unwrap();
    let report = deployer.up(plan.clone()).await;
    assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
    let start = Instant::now();
    while !deployer.status(&plan).await.unwrap().healthy() {
        assert!(start.elapsed() < CONVERGE, "tunnels not up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let prefix = lab.state().prefix.unwrap();
    let topology = routes_across(&prefix).await;
    Converged {
        plan,
        deployer,
        prefix,
        topology,
    }
}

/// Waits until the data plane `prefix` carries routes both ways; what it was built from.
pub async fn routes_across(prefix: &str) -> Topology {
    let plane = DataPlane::attach(prefix).unwrap();
    plane
        .wait_for(CONVERGE, DataPlaneStatus::routes_across)
        .await
        .unwrap();
    let topology = plane.topology().clone();
    plane.detach().unwrap();
    topology
}
