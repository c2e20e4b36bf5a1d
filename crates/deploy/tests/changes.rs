//! `diff` against both twins with the real SDKs: a converged deployment is all unchanged, a
//! tunnel's new inside CIDR is an update in place that keeps the VPN connection and its outside
//! addresses, a config shrunk to development deletes exactly the second connection's resources
//! on both clouds, and two racing `up`s leave duplicates that `diff` lists and pruning removes.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;

use dxvpn_deploy::{Change, ChangeKind, Deployer, NodeState, Report, any_writes};
use dxvpn_plan::Plan;
use dxvpn_test_support::{aws_live, azure_count};
use dxvpn_twin_aws::AwsTwin;
use dxvpn_twin_azure::{AzureScenario, AzureTwin};

async fn twins() -> (AwsTwin, AzureTwin) {
    (
        dxvpn_test_support::aws_twin(0.0005).await,
        dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.0005).await,
    )
}

fn config(use_case: &str, aws: &AwsTwin, azure: &AzureTwin) -> String {
    dxvpn_lab::config::lab_config(
        "dx-changes",
        use_case,
        &dxvpn_lab::LabScenario::default(),
        aws,
        azure,
    )
}

/// Development on fresh twins, taken up. Bind every field: a twin dropped is a twin stopped.
struct Deployed {
    aws: AwsTwin,
    azure: AzureTwin,
    text: String,
    before: Arc<Plan>,
    deployer: Deployer,
    up: Report,
}

async fn deployed_development() -> Deployed {
    let (aws, azure) = twins().await;
    let text = config("development", &aws, &azure);
    let before = plan(&text);
    let deployer = Deployer::connect(&before).await.unwrap();
    let up = deployer.up(before.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    Deployed {
        aws,
        azure,
        text,
        before,
        deployer,
        up,
    }
}

fn plan(config: &str) -> Arc<Plan> {
    Arc::new(dxvpn_plan::plan_from_toml(config).unwrap())
}

fn kind_of(changes: &[Change], role: &str) -> ChangeKind {
    changes
        .iter()
        .find(|c| c.role == role)
        .map(|c| c.change)
        .unwrap_or_else(|| panic!("{role} not in {changes:#?}"))
}

fn writing(changes: &[Change]) -> Vec<(&str, ChangeKind)> {
    changes
        .iter()
        .filter(|c| c.change.writes())
        .map(|c| (c.role.as_str(), c.change))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_inside_cidr_is_an_update_in_place_that_keeps_the_connection_and_its_addresses() {
    let Deployed {
        aws,
        azure: _azure,
        text,
        before,
        deployer,
        up,
    } = deployed_development().await;
    let converged = deployer.diff(&before).await.unwrap();
    assert!(
        !any_writes(&converged),
        "converged: {:?}",
        writing(&converged)
    );
    assert_eq!(
        kind_of(&converged, "aws.vpn_connection.0"),
        ChangeKind::Unchanged
    );

    // Tunnel 1 moves to the next /30 of its APIPA block; tunnel 2 keeps its CIDR.
    let old: Vec<String> = before
        .tunnels
        .iter()
        .map(|t| t.pairing.inside_cidr.to_string())
        .collect();
    let first = before.tunnels[0].pairing.inside_cidr;
    let moved = format!(
        "{}/30",
        std::net::Ipv4Addr::from(u32::from(first.network()) + 4)
    );
    let after = plan(&format!(
        "{text}\n[tunnels]\ninside_cidrs = [\"{moved}\", \"{}\"]\n",
        old[1]
    ));
    let vpn =
        |o: &dxvpn_plan::Outputs, k: &str| o.get("aws.vpn_connection.0", k).map(str::to_owned);
    let (id, ip1, ip2) = (
        vpn(&up.outputs, "id"),
        vpn(&up.outputs, "tunnel1_outside_ip"),
        vpn(&up.outputs, "tunnel2_outside_ip"),
    );

    let diff = deployer.diff(&after).await.unwrap();
    let connection = diff
        .iter()
        .find(|c| c.role == "aws.vpn_connection.0")
        .unwrap();
    assert_eq!(connection.change, ChangeKind::Update, "{diff:#?}");
    assert_eq!(connection.fields.len(), 1, "{:?}", connection.fields);
    assert_eq!(connection.fields[0].path, "tunnels[0].inside_cidr");
    assert_eq!(connection.fields[0].from, old[0]);
    assert_eq!(connection.fields[0].to, moved);
    // Azure's side follows: the local network gateway's BGP peer address.
    assert_eq!(
        kind_of(&diff, "azure.local_network_gateway.c1t1"),
        ChangeKind::Update,
        "{diff:#?}"
    );
    assert_eq!(
        kind_of(&diff, "azure.local_network_gateway.c1t2"),
        ChangeKind::Unchanged
    );
    assert!(
        !diff.iter().any(|c| c.change.destroys()),
        "{:?}",
        writing(&diff)
    );

    let changed = deployer.up(after.clone()).await;
    assert!(changed.ok(), "{:?}", changed.failures().collect::<Vec<_>>());
    assert_eq!(
        vpn(&changed.outputs, "id"),
        id,
        "the VPN connection is kept"
    );
    assert_eq!(vpn(&changed.outputs, "tunnel1_outside_ip"), ip1);
    assert_eq!(vpn(&changed.outputs, "tunnel2_outside_ip"), ip2);
    let again = deployer.diff(&after).await.unwrap();
    assert!(!any_writes(&again), "after up: {:?}", writing(&again));
    assert_eq!(aws_live(&aws, "vpn_connections"), 1);
    // The negative control: the config from before is now the one that differs.
    let back = deployer.diff(&before).await.unwrap();
    assert_eq!(kind_of(&back, "aws.vpn_connection.0"), ChangeKind::Update);

    let down = deployer.down(after).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
}

/// What `up --allow-replace` does with `diff`: prune, the DAG, then the public IPs the gateway
/// let go; every step must succeed.
async fn allow_replace(deployer: &Deployer, plan: &Arc<Plan>, diff: &[Change]) -> Report {
    let before = deployer.prune(plan, diff, false).await;
    let up = deployer.up(plan.clone()).await;
    let after = deployer.prune(plan, diff, true).await;
    assert!(
        up.ok()
            && before
                .iter()
                .chain(&after)
                .all(|n| n.state == NodeState::Done),
        "{before:?} {:?} {after:?}",
        up.failures().collect::<Vec<_>>()
    );
    up
}

fn deletes(changes: &[Change]) -> Vec<&str> {
    let mut roles: Vec<&str> = changes
        .iter()
        .filter(|c| c.change == ChangeKind::Delete)
        .map(|c| c.role.as_str())
        .collect();
    roles.sort_unstable();
    roles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_shrunk_to_development_deletes_exactly_the_second_connection() {
    let (aws, azure) = twins().await;
    let ha = plan(&config("high_availability", &aws, &azure));
    let dev = plan(&config("development", &aws, &azure));
    let deployer = Deployer::connect(&ha).await.unwrap();
    let up = deployer.up(ha.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    assert!(!any_writes(&deployer.diff(&ha).await.unwrap()));

    let diff = deployer.diff(&dev).await.unwrap();
    assert_eq!(
        deletes(&diff),
        // The second connection's resources, high availability's managed DNS receivers
        // (development forwards to forwarder hosts), and its tunnel alarms and alerts
        // (development has none by default).
        [
            "aws.customer_gateway.1",
            "aws.resolver_endpoint.inbound",
            "aws.tunnel_alarm.c1t1",
            "aws.tunnel_alarm.c1t2",
            "aws.tunnel_alarm.c2t1",
            "aws.tunnel_alarm.c2t2",
            "aws.vpn_connection.1",
            "azure.connection.c2t1",
            "azure.connection.c2t2",
            "azure.dns_inbound_endpoint",
            "azure.dns_subnet.inbound",
            "azure.local_network_gateway.c2t1",
            "azure.local_network_gateway.c2t2",
            "azure.public_ip.1",
            "azure.traffic_alert.c1t1",
            "azure.traffic_alert.c1t2",
            "azure.traffic_alert.c2t1",
            "azure.traffic_alert.c2t2",
            "azure.tunnel_alert.c1t1",
            "azure.tunnel_alert.c1t2",
            "azure.tunnel_alert.c2t1",
            "azure.tunnel_alert.c2t2",
        ],
        "{diff:#?}"
    );
    for c in diff.iter().filter(|c| c.change == ChangeKind::Delete) {
        assert!(
            c.reason
                .as_deref()
                .unwrap()
                .contains("no longer in the plan"),
            "{c:?}"
        );
    }
    allow_replace(&deployer, &dev, &diff).await;
    let converged = deployer.diff(&dev).await.unwrap();
    assert!(!any_writes(&converged), "{:?}", writing(&converged));
    assert_eq!(aws_live(&aws, "vpn_connections"), 1);
    assert_eq!(aws_live(&aws, "customer_gateways"), 1);
    assert_eq!(aws.inventory()["alarms"], serde_json::json!([]));
    assert_eq!(azure.inventory()["metric_alerts"], serde_json::json!([]));
    assert_eq!(azure_count(&azure, "connections"), 2);
    assert_eq!(azure_count(&azure, "localNetworkGateways"), 2);
    let directions: Vec<String> = aws.inventory()["resolver_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["direction"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(directions, ["OUTBOUND"], "only the outbound endpoint stays");
    assert_eq!(azure_count(&azure, "dnsResolvers/inboundEndpoints"), 0);
    // The outbound endpoint's subnet, and the forwarder VM's.
    assert_eq!(
        azure_count(&azure, "virtualNetworks/subnets"),
        2 + seed_subnets(&azure)
    );
    // The negative control: the HA config now has its second connection to create.
    let grow = deployer.diff(&ha).await.unwrap();
    assert_eq!(kind_of(&grow, "aws.vpn_connection.1"), ChangeKind::Create);
    assert_eq!(
        kind_of(&grow, "aws.resolver_endpoint.inbound"),
        ChangeKind::Create
    );

    // Development's own config takes everything down: nothing of HA is left for it to miss.
    let down = deployer.down(dev).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert_eq!(aws_live(&aws, "vpn_connections"), 0);
    assert_eq!(aws_live(&aws, "resolver_endpoints"), 0);
    assert_eq!(azure.live_ids(), azure.seed_ids(), "Azure back to its seed");
}

/// The subnets the Azure twin was seeded with, delegated ones aside (none are).
fn seed_subnets(azure: &AzureTwin) -> usize {
    azure
        .seed_ids()
        .iter()
        .filter(|id| id.to_ascii_lowercase().contains("/subnets/"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_ups_then_one_more_and_a_down_leave_nothing() {
    let (aws, azure) = twins().await;
    let plan = plan(&config("development", &aws, &azure));
    let (one, two) = (
        Deployer::connect(&plan).await.unwrap(),
        Deployer::connect(&plan).await.unwrap(),
    );
    let (a, b) = tokio::join!(one.up(plan.clone()), two.up(plan.clone()));
    println!(
        "racing ups: {} and {} failures; {}",
        a.failures().count(),
        b.failures().count(),
        aws.inventory()
    );
    let diff = one.diff(&plan).await.unwrap();
    let duplicates = diff
        .iter()
        .filter(|c| c.change == ChangeKind::Delete)
        .count();
    println!("duplicates listed: {duplicates}: {:?}", writing(&diff));
    let pruned = one.prune(&plan, &diff, false).await;
    assert!(
        pruned
            .iter()
            .all(|n| n.state == dxvpn_deploy::NodeState::Done),
        "{pruned:?}"
    );
    let third = one.up(plan.clone()).await;
    assert!(third.ok(), "{:?}", third.failures().collect::<Vec<_>>());
    for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
        assert_eq!(aws_live(&aws, list), 1, "{list}: {}", aws.inventory());
    }
    assert!(!any_writes(&one.diff(&plan).await.unwrap()));
    let down = one.down(plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
        assert_eq!(aws_live(&aws, list), 0, "{list} left: {}", aws.inventory());
    }
    assert_eq!(azure.live_ids(), azure.seed_ids());
}

/// A new Amazon side ASN cannot be set on a VGW: `diff` names the replace and the rule, the
/// VPN connection built on it is replaced with it, and what `up --allow-replace` does (prune,
/// the DAG, prune) leaves a new VGW and a converged deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_amazon_side_asn_replaces_the_gateway_and_the_connection_on_it() {
    let Deployed {
        aws,
        azure: _azure,
        text,
        before,
        deployer,
        up,
    } = deployed_development().await;
    let old_asn = before
        .resource("aws.vpn_gateway")
        .map(|r| format!("{:?}", r.spec))
        .unwrap();
    assert!(!old_asn.contains("64600"), "{old_asn}");
    let after = plan(&text.replacen("[aws]\n", "[aws]\nasn = 64600\n", 1));

    let diff = deployer.diff(&after).await.unwrap();
    let vgw = diff.iter().find(|c| c.role == "aws.vpn_gateway").unwrap();
    assert_eq!(vgw.change, ChangeKind::Replace, "{diff:#?}");
    assert_eq!(vgw.fields[0].path, "amazon_side_asn");
    assert_eq!(vgw.fields[0].to, "64600");
    assert!(
        vgw.reason
            .as_deref()
            .unwrap_or_default()
            .contains("Amazon side ASN"),
        "{vgw:?}"
    );
    assert_eq!(
        kind_of(&diff, "aws.vpn_connection.0"),
        ChangeKind::Replace,
        "{diff:#?}"
    );

    let replaced = allow_replace(&deployer, &after, &diff).await;
    let id = |o: &dxvpn_plan::Outputs| o.get("aws.vpn_gateway", "id").map(str::to_owned);
    assert_ne!(id(&replaced.outputs), id(&up.outputs), "a new gateway");
    let converged = deployer.diff(&after).await.unwrap();
    assert!(!any_writes(&converged), "{:?}", writing(&converged));
    assert_eq!(aws_live(&aws, "vpn_connections"), 1);
    // The negative control: the config from before now wants the gateway replaced back.
    let back = deployer.diff(&before).await.unwrap();
    assert_eq!(kind_of(&back, "aws.vpn_gateway"), ChangeKind::Replace);

    let down = deployer.down(after).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert_eq!(aws_live(&aws, "vpn_connections"), 0);
}

/// The forwarder host runs its user data at first boot only: a new instance type or a new
/// forwarder configuration is a replace, done with `--allow-replace`, and a host the plan no
/// longer creates (the user now gives `dns.aws_forwarder_ip`) is a delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_forwarder_host_is_replaced_and_one_no_longer_planned_is_deleted() {
    let Deployed {
        aws,
        azure: _azure,
        text,
        before,
        deployer,
        up,
    } = deployed_development().await;
    let role = "aws.dns_forwarder";
    let profile = dxvpn_plan::forwarder_host::AWS_PROFILE_ROLE;
    assert_eq!(
        kind_of(&deployer.diff(&before).await.unwrap(), role),
        ChangeKind::Unchanged
    );
    // The host has its instance profile, whose role has Session Manager's policy.
    let inventory = aws.inventory();
    let profiles = inventory["instance_profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "{inventory}");
    assert_eq!(
        inventory["iam_roles"][0]["policies"],
        serde_json::json!(["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"])
    );
    let name = profiles[0]["name"].as_str().unwrap();
    assert_eq!(profiles[0]["role"], name);
    assert!(name.starts_with("dx-changes-dns-forwarder-"), "{name}");
    assert_eq!(
        kind_of(&deployer.diff(&before).await.unwrap(), profile),
        ChangeKind::Unchanged
    );

    // No profile wanted now: the host loses its profile in place (EC2 disassociates it from
    // the running instance), and the profile goes; then it gets one back the same way.
    let without = plan(&format!(
        "{text}\n[dns]\naws_forwarder_instance_profile = \"none\"\n"
    ));
    let diff = deployer.diff(&without).await.unwrap();
    let host = diff.iter().find(|c| c.role == role).unwrap();
    assert_eq!(host.change, ChangeKind::Update, "{diff:#?}");
    assert_eq!(host.fields[0].path, "instance_profile");
    assert_eq!(deletes(&diff), [profile], "{diff:#?}");
    let id = |o: &dxvpn_plan::Outputs| o.get(role, "id").map(str::to_owned);
    for (config, profiles) in [(&without, 0), (&before, 1)] {
        let diff = deployer.diff(config).await.unwrap();
        let applied = allow_replace(&deployer, config, &diff).await;
        assert_eq!(id(&applied.outputs), id(&up.outputs), "the same host");
        let status = deployer.status(config).await.unwrap();
        let instance = status.forwarder_host.unwrap().instance.unwrap();
        assert_eq!(
            instance.instance_profile.is_some(),
            profiles == 1,
            "{instance:?}"
        );
        assert_eq!(aws_live(&aws, "instance_profiles"), profiles);
        let converged = deployer.diff(config).await.unwrap();
        assert!(!any_writes(&converged), "{:?}", writing(&converged));
    }

    let zones = "private_dns_zones = [\"azure.internal\"]";
    assert!(text.contains(zones), "{text}");
    let more_zones = plan(&text.replace(
        zones,
        "private_dns_zones = [\"azure.internal\", \"corp.example\"]",
    ));
    let diff = deployer.diff(&more_zones).await.unwrap();
    let host = diff.iter().find(|c| c.role == role).unwrap();
    assert_eq!(host.change, ChangeKind::Replace, "{diff:#?}");
    assert_eq!(host.fields[0].path, "user_data");

    let bigger = plan(&format!(
        "{text}\n[dns]\naws_forwarder_instance_type = \"t3.small\"\n"
    ));
    let diff = deployer.diff(&bigger).await.unwrap();
    let host = diff.iter().find(|c| c.role == role).unwrap();
    assert_eq!(host.change, ChangeKind::Replace, "{diff:#?}");
    assert_eq!(
        (host.fields[0].path.as_str(), host.fields[0].to.as_str()),
        ("instance_type", "t3.small")
    );
    let replaced = allow_replace(&deployer, &bigger, &diff).await;
    assert_ne!(id(&replaced.outputs), id(&up.outputs), "a new host");
    assert_eq!(aws_live(&aws, "instances"), 1, "the old one is terminated");
    let converged = deployer.diff(&bigger).await.unwrap();
    assert!(!any_writes(&converged), "{:?}", writing(&converged));

    // The user's own host now: dxvpn's goes.
    let yours = plan(&format!(
        "{text}\n[dns]\naws_forwarder_ip = \"10.0.1.10\"\n"
    ));
    let diff = deployer.diff(&yours).await.unwrap();
    assert_eq!(deletes(&diff), [role, profile], "{diff:#?}");

    let down = deployer.down(bigger).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert_eq!(aws_live(&aws, "instances"), 0);
    let inventory = aws.inventory();
    for list in ["iam_roles", "instance_profiles"] {
        assert_eq!(inventory[list], serde_json::json!([]), "{list} left");
    }
}

/// The Azure forwarder VM: another AWS zone is another cloud-init, which a VM runs once, so it
/// is replaced (deleted first, then created); a new size is a resize in place.
#[tokio::test]
async fn a_changed_azure_forwarder_vm_is_replaced_and_a_new_size_is_an_update() {
    let Deployed {
        aws: _aws,
        azure,
        text,
        before,
        deployer,
        up: _,
    } = deployed_development().await;
    let role = "azure.dns_forwarder";
    assert_eq!(
        kind_of(&deployer.diff(&before).await.unwrap(), role),
        ChangeKind::Unchanged
    );
    let zones = "private_dns_zones = [\"aws.internal\"]";
    assert!(text.contains(zones), "{text}");
    let more_zones = plan(&text.replace(
        zones,
        "private_dns_zones = [\"aws.internal\", \"corp.example\"]",
    ));
    let diff = deployer.diff(&more_zones).await.unwrap();
    let vm = diff.iter().find(|c| c.role == role).unwrap();
    assert_eq!(vm.change, ChangeKind::Replace, "{diff:#?}");
    assert!(vm.fields[0].path.contains("dxvpn:config"), "{vm:?}");
    allow_replace(&deployer, &more_zones, &diff).await;
    // Custom data cannot change (the twin refuses it, as ARM does): this is a new VM.
    let vms = azure.lab_view().vms;
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert!(
        vms[0].user_data.contains("corp.example"),
        "the new VM runs the new config"
    );
    assert!(!any_writes(&deployer.diff(&more_zones).await.unwrap()));

    let bigger = plan(&format!(
        "{}\n[dns]\nazure_forwarder_vm_size = \"Standard_B1s\"\n",
        text.replace(
            zones,
            "private_dns_zones = [\"aws.internal\", \"corp.example\"]"
        )
    ));
    let diff = deployer.diff(&bigger).await.unwrap();
    assert_eq!(kind_of(&diff, role), ChangeKind::Update, "{diff:#?}");
    let down = deployer.down(bigger).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert!(azure.lab_view().vms.is_empty());
}
