//! The lab's data plane for real, as root: strongSwan and BIRD in namespaces made by the test.
//!
//! Each test builds its own topology under its own run prefix and checks, after teardown, that
//! no namespace or daemon of that run remains. Every scenario has a negative control that must
//! fail: a wrong key, a wrong APIPA address, equal ASNs, route propagation off.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dxvpn_netlab::run::{LabRun, is_lab_daemon};
use dxvpn_netlab::{DataPlane, DataPlaneStatus, Side, Topology, longest_outage};
use dxvpn_tunnel::UseCase;
use dxvpn_tunnel::psk::PresharedKey;

const CONVERGE: Duration = Duration::from_secs(90);

async fn converged(plane: &DataPlane, done: impl Fn(&DataPlaneStatus) -> bool) -> DataPlaneStatus {
    plane
        .wait_for(CONVERGE, done)
        .await
        .unwrap_or_else(|s| panic!("did not converge in {CONVERGE:?}: {s:#?}"))
}

/// Asserts that `holds` is true at every poll for `window`.
async fn stays(
    plane: &DataPlane,
    window: Duration,
    what: &str,
    holds: impl Fn(&DataPlaneStatus) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < window {
        let status = plane.status().await;
        assert!(
            holds(&status),
            "{what} stopped holding after {:?}: {status:#?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Tears down and checks that nothing of the run is left.
async fn teardown_and_check(plane: DataPlane) {
    let prefix = plane.run().prefix().to_owned();
    let pids = plane.run().daemon_pids();
    assert!(!pids.is_empty());
    plane.teardown().await;
    assert_nothing_left(&prefix, &pids);
}

fn assert_nothing_left(prefix: &str, pids: &[u32]) {
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !namespaces.contains(&format!("{prefix}-")),
        "namespaces of {prefix} left: {namespaces}"
    );
    let alive: Vec<_> = pids.iter().filter(|p| is_lab_daemon(**p)).collect();
    assert!(
        alive.is_empty(),
        "daemons of {prefix} still running: {alive:?}"
    );
    assert!(!dxvpn_netlab::private_dir::lab_dir().join(prefix).exists());
}

fn dev_ready(s: &DataPlaneStatus) -> bool {
    s.all_up()
        && s.next_hops("aws-vgw") == 2
        && s.next_hops("az-gw0") == 2
        && s.next_hops("az-vnet") == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_tunnels_bgp_ecmp_and_ping() {
    let topology = Topology::for_use_case(UseCase::Development);
    let (vpc_host, vnet_host) = (topology.aws.host_ip, topology.azure.host_ip);
    let plane = DataPlane::build(topology).await.unwrap();
    let status = converged(&plane, dev_ready).await;
    assert_eq!(status.tunnels.len(), 2);
    assert_eq!(plane.ping(Side::Aws, vnet_host, 3).await, (3, 3));
    assert_eq!(plane.ping(Side::Azure, vpc_host, 3).await, (3, 3));
    teardown_and_check(plane).await;
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The tunnel that carries a running ping: the one whose AWS end sends the most packets.
async fn busiest_tunnel(plane: &DataPlane) -> String {
    let keys: Vec<String> = plane
        .topology()
        .tunnels
        .iter()
        .map(|t| t.key.clone())
        .collect();
    let mut before = Vec::new();
    for k in &keys {
        before.push(plane.tunnel_tx_packets(k).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut best = (0, keys[0].clone());
    for (k, b) in keys.iter().zip(before) {
        let delta = plane.tunnel_tx_packets(k).await.saturating_sub(b);
        if delta > best.0 {
            best = (delta, k.clone());
        }
    }
    assert!(best.0 > 0, "no tunnel carries the ping");
    best.1
}

/// Cuts with `cut`, waits until the routers have moved on (`recovered`), and returns the outage
/// seen by a ping stream from the VPC host, after checking that traffic flows again.
async fn outage_of(
    plane: &DataPlane,
    to: Ipv4Addr,
    cut: impl AsyncFnOnce(&DataPlane),
    recovered: impl Fn(&DataPlaneStatus) -> bool,
) -> f64 {
    let stream = plane.ping_stream(Side::Aws, to).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cut_at = now();
    cut(plane).await;
    converged(plane, recovered).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replies = stream.stop().await;
    let after_cut: Vec<f64> = replies
        .iter()
        .copied()
        .filter(|t| *t >= cut_at - 0.2)
        .collect();
    assert!(
        after_cut.last().is_some_and(|last| *last > now() - 1.5),
        "traffic did not resume: {} replies after the cut",
        after_cut.len()
    );
    longest_outage(&after_cut, 0.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_availability_survives_a_tunnel_cut_and_an_instance_cut() {
    let topology = Topology::for_use_case(UseCase::HighAvailability);
    let vnet_host = topology.azure.host_ip;
    let plane = DataPlane::build(topology).await.unwrap();
    let ha_ready = |s: &DataPlaneStatus| {
        s.all_up()
            && s.next_hops("aws-vgw") == 4
            && s.next_hops("az-gw0") == 2
            && s.next_hops("az-gw1") == 2
            && s.next_hops("az-vnet") == 2
    };
    let status = converged(&plane, ha_ready).await;
    assert_eq!(status.tunnels.len(), 4);
    assert_eq!(plane.ping(Side::Aws, vnet_host, 3).await, (3, 3));

    // Cut the tunnel that carries the flow: traffic moves to the other three.
    let stream = plane.ping_stream(Side::Aws, vnet_host).unwrap();
    let carrying = busiest_tunnel(&plane).await;
    drop(stream);
    let key = carrying.clone();
    let carrying_instance = plane
        .topology()
        .tunnels
        .iter()
        .find(|t| t.key == carrying)
        .unwrap()
        .azure_instance;
    let instance_router = format!("az-gw{carrying_instance}");
    // Recovered when both ends gave up the session (their hold timers expire a few seconds
    // apart) and both gateways route around it: replies travel the Azure side's routes.
    let tunnel_outage = outage_of(
        &plane,
        vnet_host,
        async move |p: &DataPlane| p.cut_tunnel(&key).await.unwrap(),
        |s| {
            s.tunnel(&carrying)
                .is_some_and(|t| !t.aws_bgp.established() && !t.azure_bgp.established())
                && s.next_hops("aws-vgw") == 3
                && s.next_hops(&instance_router) == 1
        },
    )
    .await;
    let still_up = plane
        .status()
        .await
        .tunnels
        .iter()
        .filter(|t| t.up())
        .count();
    assert_eq!(still_up, 3, "the other tunnels stay up");

    plane.restore().await.unwrap();
    converged(&plane, ha_ready).await;

    // Cut the whole instance that carries the flow.
    let stream = plane.ping_stream(Side::Aws, vnet_host).unwrap();
    let carrying = busiest_tunnel(&plane).await;
    drop(stream);
    let instance = plane
        .topology()
        .tunnels
        .iter()
        .find(|t| t.key == carrying)
        .unwrap()
        .azure_instance;
    let instance_keys: Vec<String> = plane
        .topology()
        .tunnels
        .iter()
        .filter(|t| t.azure_instance == instance)
        .map(|t| t.key.clone())
        .collect();
    let instance_outage = outage_of(
        &plane,
        vnet_host,
        async move |p: &DataPlane| p.cut_instance(instance).await.unwrap(),
        |s| {
            instance_keys.iter().all(|k| {
                s.tunnel(k)
                    .is_some_and(|t| !t.aws_bgp.established() && !t.azure_bgp.established())
            }) && s.next_hops("aws-vgw") == 2
                && s.next_hops("az-vnet") == 1
        },
    )
    .await;

    let report = format!(
        "HA failover, one ping every 100 ms from the VPC host, AWS BGP hold time 30 s:\n  cut tunnel {carrying}: outage {tunnel_outage:.1} s\n  cut Azure instance {}: outage {instance_outage:.1} s\n",
        instance + 1
    );
    println!("{report}");
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dxvpn-failover.txt"),
        report,
    )
    .unwrap();
    teardown_and_check(plane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_keeps_that_tunnel_down_and_nothing_leaks_in_clear() {
    let mut topology = Topology::for_use_case(UseCase::Development);
    topology.tunnel_mut("c1t2").unwrap().azure.psk = PresharedKey::generate();
    let plane = DataPlane::build(topology).await.unwrap();
    converged(&plane, |s| s.tunnel("c1t1").is_some_and(|t| t.up())).await;
    stays(&plane, Duration::from_secs(5), "c1t2 down, c1t1 up", |s| {
        let (good, bad) = (s.tunnel("c1t1").unwrap(), s.tunnel("c1t2").unwrap());
        good.up()
            && !bad.aws_ipsec.child_installed
            && !bad.azure_ipsec.child_installed
            && !bad.bgp_up()
    })
    .await;

    // BIRD keeps trying to reach its peer on the broken tunnel (169.254.22.2); with no SA those
    // packets must die in the tunnel end, not cross the internet namespace in clear. The capture
    // sees everything crossing `inet` while the good tunnel carries a ping: it must show that
    // tunnel's ESP-in-UDP, and no inside or VPC/VNet address.
    let inet = plane.run().ns("inet");
    let capture = tokio::process::Command::new("ip")
        .args([
            "netns", "exec", &inet, "timeout", "4", "tcpdump", "-i", "any", "-n", "-p", "-l", "ip",
        ])
        .output();
    let vgw = plane.run().ns("aws-vgw");
    let probe = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &vgw,
            "ping",
            "-c",
            "8",
            "-i",
            "0.2",
            "-W",
            "1",
            "169.254.22.2",
        ])
        .output();
    let vnet_host = plane.topology().azure.host_ip;
    let (capture, probe, through_good) = tokio::join!(capture, probe, async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        plane.ping(Side::Aws, vnet_host, 8).await
    });
    let (capture, probe) = (capture.unwrap(), probe.unwrap());
    assert!(
        !probe.status.success(),
        "the far end of a broken tunnel must not answer"
    );
    assert_eq!(
        through_good,
        (8, 8),
        "the good tunnel carries traffic meanwhile"
    );
    let lines = String::from_utf8_lossy(&capture.stdout).into_owned();
    assert!(
        lines.lines().any(|l| l.contains(".4500")),
        "the capture saw no tunnel traffic, so it proves nothing: {lines}"
    );
    let in_clear: Vec<&str> = lines
        .lines()
        .filter(|l| l.contains(" 169.254.") || l.contains(" 10.1.") || l.contains(" 10.51."))
        .collect();
    assert!(
        in_clear.is_empty(),
        "packets crossed the internet in clear: {in_clear:#?}"
    );
    teardown_and_check(plane).await;
}

/// AWS modifying the tunnel that carries a ping: the tunnel leaves the topology and comes back
/// with a new inside CIDR, changed in place (no daemon restarted), while the other tunnel
/// carries the ping. Negative controls: a changed key cannot be changed in place, and a new
/// CIDR on the AWS side only keeps that tunnel's BGP down until Azure follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_changed_in_place_leaves_the_other_carrying_traffic() {
    use dxvpn_cidr::inside::{aws_inside_ip, azure_inside_ip};
    let topology = Topology::for_use_case(UseCase::Development);
    let vnet_host = topology.azure.host_ip;
    let mut plane = DataPlane::build(topology.clone()).await.unwrap();
    converged(&plane, dev_ready).await;
    let daemons = plane.run().daemon_pids();
    let stream = plane.ping_stream(Side::Aws, vnet_host).unwrap();
    let carrying = busiest_tunnel(&plane).await;

    let mut rekeyed = topology.clone();
    rekeyed.tunnel_mut(&carrying).unwrap().aws.psk = PresharedKey::generate();
    assert!(
        !plane.can_update_to(&rekeyed),
        "a new key means new daemons"
    );

    let left_at = now();
    let mut without = topology.clone();
    without.tunnels.retain(|t| t.key != carrying);
    assert!(plane.can_update_to(&without));
    plane.update(&without).await.unwrap();
    converged(&plane, |s| {
        s.tunnels.len() == 1 && s.all_up() && s.next_hops("aws-vgw") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back_at = now();

    let old = topology.tunnels.iter().find(|t| t.key == carrying).unwrap();
    let cidr = dxvpn_cidr::Ipv4Net::new(
        Ipv4Addr::from(u32::from(old.aws.inside_cidr.network()) + 4),
        30,
    )
    .unwrap();
    let mut aws_only = topology.clone();
    aws_only.tunnel_mut(&carrying).unwrap().aws.inside_cidr = cidr;
    plane.update(&aws_only).await.unwrap();
    stays(
        &plane,
        Duration::from_secs(5),
        "BGP down on the tunnel until Azure follows",
        |s| {
            let t = s.tunnel(&carrying).unwrap();
            t.ipsec_up() && !t.aws_bgp.established() && s.next_hops("aws-vgw") == 1
        },
    )
    .await;
    let mut moved = aws_only.clone();
    let t = moved.tunnel_mut(&carrying).unwrap();
    (t.azure.custom_bgp_ip, t.azure.peer_bgp_ip) = (azure_inside_ip(cidr), aws_inside_ip(cidr));
    plane.update(&moved).await.unwrap();
    converged(&plane, dev_ready).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let replies = stream.stop().await;

    let while_out = replies
        .iter()
        .filter(|t| (left_at + 0.5..back_at).contains(*t))
        .count();
    assert!(
        while_out > 0,
        "no reply while {carrying} was out: the other tunnel did not carry"
    );
    let after: Vec<f64> = replies.iter().copied().filter(|t| *t >= left_at).collect();
    eprintln!(
        "longest gap while {carrying} changed in place: {:.2} s",
        longest_outage(&after, 0.1)
    );
    assert_eq!(plane.run().daemon_pids(), daemons, "no daemon restarted");
    teardown_and_check(plane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_apipa_address_keeps_bgp_down_on_that_tunnel() {
    let mut topology = Topology::for_use_case(UseCase::Development);
    // The classic mistake: the connection names the other instance's APIPA address.
    topology.tunnel_mut("c1t2").unwrap().azure.custom_bgp_ip = Ipv4Addr::new(169, 254, 22, 6);
    let plane = DataPlane::build(topology).await.unwrap();
    converged(&plane, |s| {
        s.tunnel("c1t1").is_some_and(|t| t.up()) && s.tunnel("c1t2").is_some_and(|t| t.ipsec_up())
    })
    .await;
    stays(
        &plane,
        Duration::from_secs(8),
        "BGP down on c1t2 only",
        |s| {
            let (good, bad) = (s.tunnel("c1t1").unwrap(), s.tunnel("c1t2").unwrap());
            good.up()
                && bad.ipsec_up()
                && !bad.aws_bgp.established()
                && !bad.azure_bgp.established()
        },
    )
    .await;
    assert_eq!(
        plane.status().await.next_hops("aws-vgw"),
        1,
        "only the good tunnel carries routes"
    );
    teardown_and_check(plane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_asns_keep_bgp_down_while_ipsec_stays_up() {
    let mut topology = Topology::for_use_case(UseCase::Development);
    let aws_asn = topology.aws.asn;
    topology.azure.asn = aws_asn;
    for t in &mut topology.tunnels {
        t.aws.customer_gateway_asn = aws_asn;
    }
    let plane = DataPlane::build(topology).await.unwrap();
    converged(&plane, |s| s.tunnels.iter().all(|t| t.ipsec_up())).await;
    stays(
        &plane,
        Duration::from_secs(10),
        "IPsec up, BGP down everywhere",
        |s| {
            s.tunnels
                .iter()
                .all(|t| t.ipsec_up() && !t.aws_bgp.established() && !t.azure_bgp.established())
        },
    )
    .await;
    let status = plane.status().await;
    let errors: Vec<_> = status
        .tunnels
        .iter()
        .filter_map(|t| t.aws_bgp.last_error.clone())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("Bad peer AS")),
        "BIRD says why: {status:#?}"
    );
    teardown_and_check(plane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_route_propagation_the_vpc_host_has_no_route() {
    let mut topology = Topology::for_use_case(UseCase::Development);
    topology.aws.route_propagation = false;
    let vnet_host = topology.azure.host_ip;
    let mut plane = DataPlane::build(topology).await.unwrap();
    // The way back too: the VNet fabric learns the VPC over iBGP a moment after the tunnels.
    converged(&plane, |s| {
        s.all_up() && s.next_hops("aws-vgw") == 2 && s.next_hops("az-vnet") >= 1
    })
    .await;
    assert_eq!(plane.status().await.next_hops("aws-host"), 0);
    assert_eq!(
        plane.ping(Side::Aws, vnet_host, 3).await,
        (3, 0),
        "no route without propagation"
    );
    plane.set_route_propagation(true).await.unwrap();
    assert_eq!(plane.status().await.next_hops("aws-host"), 1);
    assert_eq!(
        plane.ping(Side::Aws, vnet_host, 3).await,
        (3, 3),
        "propagation on: the same ping crosses"
    );
    teardown_and_check(plane).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_run_is_removed_by_the_next_and_a_dropped_plane_cleans_up() {
    // A run whose owner died: its directory says so, its namespace is still there.
    let crashed = LabRun::create().await.unwrap();
    let ns = crashed.add_namespace("inet").await.unwrap();
    let prefix = crashed.prefix().to_owned();
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let _ = dead.wait_with_output();
    std::fs::write(crashed.dir().join("owner"), dead_pid.to_string()).unwrap();
    std::mem::forget(crashed); // no Drop: as if the process had been killed
    assert!(
        String::from_utf8_lossy(
            &std::process::Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout
        )
        .contains(&ns)
    );

    // The next run removes it.
    let next = LabRun::create().await.unwrap();
    assert_nothing_left(&prefix, &[]);
    next.teardown().await;

    // A data plane dropped without teardown (a failed assertion unwinding) cleans up too.
    let plane = DataPlane::build(Topology::for_use_case(UseCase::Development))
        .await
        .unwrap();
    let (prefix, pids) = (plane.run().prefix().to_owned(), plane.run().daemon_pids());
    drop(plane);
    assert_nothing_left(&prefix, &pids);
}
