//! The Azure forwarder host `up` creates in development, against the Azure twin: a security
//! group on its own subnet, an interface at the planned address and a VM carrying the rendered
//! cloud-init; converged re-runs write nothing, a changed configuration is a replace and a
//! changed size an update, and the plan without it finds it all as strays, deleted in an order
//! ARM accepts.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use dxvpn_azure::{Azure, azure_resources};
use dxvpn_plan::forwarder_host::planned_user_data;
use dxvpn_plan::{Cloud, Drift, Outputs, Plan};
use dxvpn_twin_azure::{AzureScenario, AzureTwin};

fn config(twin: &AzureTwin, azure_zones: &str, aws_zones: &str, dns: &str) -> String {
    let s = &twin.seeded;
    format!(
        r#"name = "dx-test"
use_case = "development"
[aws]
region = "eu-south-1"
vpc_id = "vpc-0123456789abcdef0"
vpc_cidr = "10.0.0.0/16"
route_table_ids = ["rtb-0123456789abcdef0"]
private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
private_subnet_cidrs = ["10.0.1.0/24", "10.0.2.0/24"]
private_dns_zones = [{aws_zones}]
[azure]
subscription_id = "{sub}"
resource_group = "{rg}"
location = "{location}"
vnet_name = "{vnet}"
vnet_cidr = "10.1.0.0/16"
gateway_subnet_cidr = "10.1.255.0/27"
used_subnet_cidrs = ["10.1.1.0/24"]
private_dns_zones = [{azure_zones}]
endpoint = "{endpoint}"
[dns]
{dns}
"#,
        sub = s.subscription_id,
        rg = s.resource_group,
        location = s.location,
        vnet = s.vnet_id.rsplit('/').next().unwrap(),
        endpoint = twin.endpoint,
    )
}

/// The Azure DNS resources only: the gateway's need the AWS half's outputs.
fn dns_resources(plan: &Plan) -> Vec<&dxvpn_plan::model::Resource> {
    azure_resources(plan)
        .filter(|r| r.role.contains("dns"))
        .collect()
}

async fn ensure(azure: &Azure, plan: &Plan, outputs: &mut Outputs) {
    for r in dns_resources(plan) {
        azure.ensure(plan, r, outputs).await.unwrap();
    }
}

#[tokio::test]
async fn the_forwarder_vm_runs_the_rendered_cloud_init_is_replaced_when_it_changes_and_goes_as_a_stray()
 {
    let twin = dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.0001).await;
    let plan =
        dxvpn_plan::plan_from_toml(&config(&twin, "\"azure.internal\"", "\"aws.internal\"", ""))
            .unwrap();
    let azure = Azure::connect(&plan).unwrap();
    let mut outputs = Outputs::default();
    ensure(&azure, &plan, &mut outputs).await;

    let vms = twin.lab_view().vms;
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(
        Some(vms[0].user_data.clone()),
        planned_user_data(&plan, Cloud::Azure),
        "the VM carries exactly what `dxvpn render --side azure --format forwarder` prints"
    );
    for line in [
        "name: \"aws.internal.\"",
        "forward-addr: 10.0.1.123",
        "interface: 10.1.0.4",
    ] {
        assert!(
            vms[0].user_data.contains(line),
            "{line} in {}",
            vms[0].user_data
        );
    }
    assert_eq!(vms[0].private_ip.to_string(), "10.1.0.4");
    let state = azure.forwarder_vm(&plan).await.unwrap().unwrap();
    assert!(state.running(), "{state:?}");

    let before = twin.mutating_calls();
    ensure(&azure, &plan, &mut outputs).await;
    assert_eq!(
        twin.mutating_calls(),
        before,
        "a converged re-run writes nothing"
    );

    // Another AWS zone changes what the VM forwards: cloud-init ran once, so a new VM.
    let rezoned = dxvpn_plan::plan_from_toml(&config(
        &twin,
        "\"azure.internal\"",
        "\"aws.internal\", \"more.internal\"",
        "",
    ))
    .unwrap();
    let vm = rezoned.forwarder_instance(Cloud::Azure).unwrap();
    match azure.drift(&rezoned, vm, &mut outputs).await.unwrap() {
        Drift::Replace { field, .. } => assert!(field.path.contains("dxvpn:config"), "{field:?}"),
        other => panic!("expected a replace, got {other:?}"),
    }
    // Another size is a resize in place.
    let resized = dxvpn_plan::plan_from_toml(&config(
        &twin,
        "\"azure.internal\"",
        "\"aws.internal\"",
        "azure_forwarder_vm_size = \"Standard_B1s\"",
    ))
    .unwrap();
    let vm = resized.forwarder_instance(Cloud::Azure).unwrap();
    match azure.drift(&resized, vm, &mut outputs).await.unwrap() {
        Drift::Update(fields) => assert!(
            fields.iter().any(|f| f.path.contains("vmSize")),
            "{fields:?}"
        ),
        other => panic!("expected an update, got {other:?}"),
    }

    // Without Azure zones there is no forwarder: all of it is a stray, and goes in order.
    let without = dxvpn_plan::plan_from_toml(&config(&twin, "", "\"aws.internal\"", "")).unwrap();
    let strays = azure.strays(&without).await.unwrap();
    let names: Vec<&str> = strays.iter().map(|s| s.name.as_str()).collect();
    for wanted in [
        "dx-test-dns-forwarder",
        "dx-test-dns-forwarder-nic",
        "dx-test-snet-dns-forwarder",
        "dx-test-nsg-dns-forwarder",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    for stray in &strays {
        azure.delete_stray(stray).await.unwrap();
    }
    assert!(twin.lab_view().vms.is_empty());
    let left: Vec<String> = twin
        .live_ids()
        .into_iter()
        .filter(|id| id.contains("forwarder"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
