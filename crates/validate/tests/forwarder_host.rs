//! The forwarder hosts `up` creates, on the whole lab as root: the AWS twin holds the instance
//! and the Azure twin the VM, the lab runs what their cloud-init starts (unbound, in a namespace
//! at the host's address), and `validate` from the other cloud resolves names through each.
//! Negative controls: the same host created with a rendered configuration that forwards to a
//! wrong address makes `validate` fail with the forwarder-host finding, unbound itself giving
//! the wrong answer. `down` removes them, and the lab stops their programs.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use base64::Engine as _;
use dxvpn_lab::Lab;
use dxvpn_plan::Cloud;
use dxvpn_test_support::Converged;
use dxvpn_validate::probe::{ProbeOptions, run_probes};
use dxvpn_validate::targets::{
    default_dns_server, forwarder_hosts, probes_for_forwarder_hosts, probes_for_targets,
};
use dxvpn_validate::{ControlFacts, Report};

const CONVERGE: Duration = Duration::from_secs(120);

/// `dxvpn validate --from <cloud>`, as the CLI runs it: probes inside that cloud's host, both
/// clouds read at the same time.
async fn validate_from(c: &Converged, cloud: Cloud) -> Report {
    let from = Some(cloud);
    let mut probes = probes_for_targets(
        &c.plan.validate_targets,
        from,
        default_dns_server(&c.plan, from),
    );
    probes.extend(probes_for_forwarder_hosts(&c.plan, cloud));
    let host = match cloud {
        Cloud::Aws => "aws-host",
        Cloud::Azure => "az-host",
    };
    let ns = format!("{}-{host}", c.prefix);
    let results = dxvpn_netlab::run::run_in_namespace(&ns, move || async move {
        run_probes(&probes, &ProbeOptions::default()).await
    })
    .await
    .unwrap();
    let facts = ControlFacts::read(&c.deployer, &c.plan, &[]).await;
    Report::assemble(&c.plan, from, results, &facts, 0.0)
}

async fn until_report(c: &Converged, done: impl Fn(&Report) -> bool) -> Report {
    until_report_from(c, Cloud::Azure, done).await
}

async fn until_report_from(c: &Converged, cloud: Cloud, done: impl Fn(&Report) -> bool) -> Report {
    let start = Instant::now();
    loop {
        let report = validate_from(c, cloud).await;
        if done(&report) || start.elapsed() > CONVERGE {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn finding_ids(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.id).collect()
}

/// The ids of the instances the AWS twin holds (terminated ones are not listed).
fn instances(lab: &Lab) -> Vec<String> {
    lab.aws.inventory()["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn names_resolve_through_the_forwarder_host_up_created_and_not_through_a_wrong_one() {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let c = dxvpn_test_support::converged(&lab, &lab.config("dx-fwdhost", "development")).await;
    let host = forwarder_hosts(&c.plan, Cloud::Aws)[0];
    let created = instances(&lab);
    assert_eq!(created.len(), 1, "up launched the forwarder host");
    let status = c.deployer.status(&c.plan).await.unwrap();
    assert!(
        status.forwarder_host.as_ref().unwrap().running(),
        "{status:?}"
    );

    let report = until_report(&c, |r| r.verdict == dxvpn_validate::Verdict::Pass).await;
    assert_eq!(
        report.verdict,
        dxvpn_validate::Verdict::Pass,
        "{:#?}",
        report.findings
    );
    let asked_directly = report
        .checks
        .iter()
        .filter(|r| r.kind == "dns" && r.target.contains(&host.to_string()))
        .count();
    assert!(
        asked_directly > 0,
        "validate asked the forwarder host itself"
    );

    // The same host with a rendered configuration whose upstream is wrong.
    let ec2 = dxvpn_test_support::ec2_client(&lab.aws.endpoint);
    ec2.terminate_instances()
        .instance_ids(&created[0])
        .send()
        .await
        .unwrap();
    let good = dxvpn_plan::forwarder_host::planned_user_data(&c.plan, Cloud::Aws).unwrap();
    let vpc_resolver = c.plan.aws.vpc_resolver_ip.to_string();
    let wrong = good.replace(
        &format!("forward-addr: {vpc_resolver}"),
        "forward-addr: 192.0.2.53",
    );
    assert_ne!(good, wrong, "the upstream is in the rendered configuration");
    let resource = c.plan.resource("aws.dns_forwarder").unwrap();
    let tags = resource.tags.iter().fold(
        TagSpecification::builder().resource_type(ResourceType::Instance),
        |spec, (k, v)| spec.tags(Tag::builder().key(k).value(v).build()),
    );
    let dxvpn_plan::model::Spec::ForwarderInstance { subnet_id, .. } = &resource.spec else {
        panic!("a created forwarder host");
    };
    // The deployment's DNS group, not the seeded host's.
    let seeded_group = lab.aws.seeded.host_security_group_id.clone();
    let group = lab.aws.inventory()["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["id"].as_str())
        .find(|id| Some(*id) != seeded_group.as_deref())
        .unwrap()
        .to_owned();
    let start = Instant::now();
    loop {
        let launched = ec2
            .run_instances()
            .image_id(
                "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            )
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet_id)
            .private_ip_address(host.to_string())
            .security_group_ids(&group)
            .user_data(base64::engine::general_purpose::STANDARD.encode(&wrong))
            .tag_specifications(tags.clone().build())
            .send()
            .await;
        // The address is free once the old instance is terminated.
        if launched.is_ok() {
            break;
        }
        assert!(start.elapsed() < CONVERGE, "{launched:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = until_report(&c, |r| finding_ids(r).contains(&"forwarder-host")).await;
    assert!(
        finding_ids(&report).contains(&"forwarder-host"),
        "{:#?}",
        report.findings
    );
    let finding = report
        .findings
        .iter()
        .find(|f| f.id == "forwarder-host")
        .unwrap();
    assert!(
        finding.message.contains(&host.to_string()),
        "{}",
        finding.message
    );

    let down = c.deployer.down(c.plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert!(instances(&lab).is_empty(), "down terminated the host");
    let state = lab
        .wait_for(CONVERGE, |s| s.prefix.is_none())
        .await
        .unwrap_or_else(|s| s);
    assert!(state.prefix.is_none(), "the lab took its data plane down");
    lab.stop().await;
}

/// The Azure twin's live resources whose id holds `part`, those the scenario seeded (the lab
/// host's interface) aside.
fn azure_ids(lab: &Lab, part: &str) -> Vec<String> {
    let seeded = lab.azure.seed_ids();
    lab.azure
        .live_ids()
        .into_iter()
        .filter(|id| id.contains(part) && !seeded.contains(id))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn names_resolve_through_the_azure_forwarder_vm_up_created_and_not_through_a_wrong_one() {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let c = dxvpn_test_support::converged(&lab, &lab.config("dx-fwdvm", "development")).await;
    let host = forwarder_hosts(&c.plan, Cloud::Azure)[0];
    assert_eq!(
        lab.azure.lab_view().vms.len(),
        1,
        "up created the forwarder VM"
    );
    let status = c.deployer.status(&c.plan).await.unwrap();
    let vm = status
        .azure_forwarder_host
        .as_ref()
        .unwrap()
        .vm
        .as_ref()
        .unwrap();
    assert!(vm.running(), "{status:?}");

    let pass = |r: &Report| r.verdict == dxvpn_validate::Verdict::Pass;
    let report = until_report_from(&c, Cloud::Aws, pass).await;
    assert!(pass(&report), "{:#?}", report.findings);
    assert!(
        report
            .checks
            .iter()
            .any(|r| r.kind == "dns" && r.target.contains(&host.to_string())),
        "validate asked the forwarder VM itself"
    );

    // The same VM, created again with a rendered configuration whose upstream is wrong. Custom
    // data cannot change, so: delete it (its interface goes with it), then the interface and a
    // VM as read, with the wrong custom data.
    let vm_path = azure_ids(&lab, "/virtualmachines/").pop().unwrap();
    let nic_path = azure_ids(&lab, "/networkinterfaces/").pop().unwrap();
    let vm_body = dxvpn_test_support::azure_raw_get(&lab.azure, &vm_path).await;
    let nic_body = dxvpn_test_support::azure_raw_get(&lab.azure, &nic_path).await;
    let good = dxvpn_plan::forwarder_host::planned_user_data(&c.plan, Cloud::Azure).unwrap();
    let wrong = good.replace("forward-addr: 168.63.129.16", "forward-addr: 192.0.2.53");
    assert_ne!(good, wrong, "the upstream is in the rendered configuration");
    let (deleting, _) =
        dxvpn_test_support::azure_raw(&lab.azure, azure_core::Method::Delete, &vm_path, None).await;
    assert_eq!(deleting, 202);
    let start = Instant::now();
    while !azure_ids(&lab, "/networkinterfaces/").is_empty() {
        assert!(start.elapsed() < CONVERGE, "the interface went with the VM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dxvpn_test_support::azure_raw_put(&lab.azure, &nic_path, &nic_body).await;
    let mut vm_body = vm_body;
    vm_body["properties"]["osProfile"]["customData"] =
        serde_json::json!(base64::engine::general_purpose::STANDARD.encode(&wrong));
    dxvpn_test_support::azure_raw_put(&lab.azure, &vm_path, &vm_body).await;
    let report = until_report_from(&c, Cloud::Aws, |r| {
        finding_ids(r).contains(&"forwarder-host")
    })
    .await;
    let finding = report.findings.iter().find(|f| f.id == "forwarder-host");
    assert!(
        finding.is_some_and(|f| f.message.contains(&host.to_string())),
        "{:#?}",
        report.findings
    );

    let down = c.deployer.down(c.plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert!(lab.azure.lab_view().vms.is_empty(), "down deleted the VM");
    assert!(
        azure_ids(&lab, "forwarder").is_empty(),
        "{:?}",
        azure_ids(&lab, "forwarder")
    );
    lab.stop().await;
}
