//! `up` on the whole lab, as root: the real SDKs against both twins, the binder building the
//! real data plane (strongSwan, BIRD) from what the twins hold, and both clouds' reports read
//! back. Tunnels come up, a ping crosses, a re-run writes nothing, a key or a peer ASN changed
//! behind dxvpn's back (the negative controls) brings exactly that tunnel DOWN in the clouds'
//! reports, and `down` leaves both twins at their seeds and no data plane.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;
use std::time::{Duration, Instant};

use dxvpn_deploy::{Deployer, Status};
use dxvpn_lab::Lab;
use dxvpn_netlab::run::LabRun;
use dxvpn_netlab::{DataPlane, DataPlaneStatus, Side};
use dxvpn_twin_kit::faults::Tamper;

const CONVERGE: Duration = Duration::from_secs(120);

async fn wait_status(
    deployer: &Deployer,
    plan: &dxvpn_plan::Plan,
    what: &str,
    done: impl Fn(&Status) -> bool,
) -> Status {
    let start = Instant::now();
    loop {
        let status = deployer.status(plan).await.unwrap();
        if done(&status) {
            return status;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{what}: not reached in {CONVERGE:?}: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_brings_tunnels_and_bgp_up_a_ping_crosses_a_tampered_key_shows_down_and_up_repairs_it() {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let plan =
        Arc::new(dxvpn_plan::plan_from_toml(&lab.config("dx-lab-e2e", "development")).unwrap());
    let deployer = Deployer::connect(&plan).await.unwrap();

    // Before `up` nothing is reported up.
    let before = deployer.status(&plan).await.unwrap();
    assert!(before.tunnels.iter().all(|t| !t.up), "{before:#?}");

    let report = deployer.up(plan.clone()).await;
    assert!(report.ok(), "{:?}", report.failures().collect::<Vec<_>>());
    let status = wait_status(&deployer, &plan, "all tunnels up", Status::healthy).await;
    assert_eq!(status.tunnels.len(), 2);
    assert!(status.tunnels.iter().all(|t| t.aws_accepted_routes > 0));

    // The data plane the twins describe carries traffic from the VPC host to the VNet host.
    let prefix = lab.state().prefix.unwrap();
    let plane = DataPlane::attach(&prefix).unwrap();
    // The clouds report tunnels up; the VNet fabric learns the way back a moment later.
    plane
        .wait_for(CONVERGE, DataPlaneStatus::routes_across)
        .await
        .unwrap();
    let vnet_host = plane.topology().azure.host_ip;
    assert_eq!(plane.ping(Side::Aws, vnet_host, 3).await, (3, 3));
    plane.detach().unwrap();

    // A converged re-run writes nothing.
    let calls = (lab.aws.mutating_calls(), lab.azure.mutating_calls());
    let rerun = deployer.up(plan.clone()).await;
    assert!(rerun.ok());
    assert_eq!(
        (lab.aws.mutating_calls(), lab.azure.mutating_calls()),
        calls
    );

    // Negative control: AWS now holds another key for tunnel 1; only that tunnel goes DOWN,
    // and stays DOWN (no false UP).
    let outside: std::net::Ipv4Addr = status.tunnels[0].outside_ip.parse().unwrap();
    assert!(lab.aws.tamper(&Tamper::Psk {
        outside_ip: outside
    }));
    let builds = lab.state().builds;
    lab.wait_for(CONVERGE, |s| s.builds > builds && s.prefix.is_some())
        .await
        .unwrap();
    wait_status(&deployer, &plan, "tunnel 2 back up", |s| s.tunnels[1].up).await;
    for _ in 0..6 {
        let s = deployer.status(&plan).await.unwrap();
        assert!(!s.tunnels[0].up, "{s:#?}");
        assert_eq!(s.tunnels[0].aws_status, "DOWN");
        assert!(!s.healthy());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // `up` repairs it: Azure gets AWS's new key through SetSharedKey (a PUT would not change
    // an existing connection's key), and the tunnel comes back.
    let repair = deployer.up(plan.clone()).await;
    assert!(repair.ok(), "{:?}", repair.failures().collect::<Vec<_>>());
    assert_eq!(lab.azure.inventory()["calls"]["PUT sharedkey"], 1);
    wait_status(
        &deployer,
        &plan,
        "tunnel 1 back up with AWS's new key",
        |s| s.tunnels[0].up,
    )
    .await;

    // Negative control: Azure now expects another ASN from tunnel 2's peer; its BGP session
    // cannot establish, so it must not read up either.
    let outside2: std::net::Ipv4Addr = status.tunnels[1].outside_ip.parse().unwrap();
    assert!(lab.azure.tamper(&Tamper::PeerAsn {
        outside_ip: outside2,
        asn: 65010
    }));
    // Only BGP changes: the lab applies it in place, as it would a rebuild.
    let changes = |s: &dxvpn_lab::BinderState| s.builds + s.changed_in_place;
    let before = changes(&lab.state());
    lab.wait_for(CONVERGE, |s| changes(s) > before && s.prefix.is_some())
        .await
        .unwrap();
    // The session drops once BIRD has taken the new configuration and the twins' telemetry has
    // caught up (one refresh later); from then on it must stay down.
    wait_status(&deployer, &plan, "tunnel 2's BGP session dropped", |s| {
        !s.tunnels[1].up
    })
    .await;
    for _ in 0..10 {
        let s = deployer.status(&plan).await.unwrap();
        assert!(!s.tunnels[1].up, "{s:#?}");
        assert_ne!(s.tunnels[1].bgp_state, "Connected", "{s:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Down: both twins at their seeds, and the data plane gone.
    let prefix = lab.state().prefix.unwrap();
    let down = deployer.down(plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert_eq!(lab.azure.live_ids(), lab.azure.seed_ids());
    let aws = lab.aws.inventory();
    for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
        let live = aws[list]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] != "deleted")
            .count();
        assert_eq!(live, 0, "{list}: {aws}");
    }
    lab.wait_for(CONVERGE, |s| s.prefix.is_none())
        .await
        .unwrap();
    assert_eq!(
        dxvpn_netlab::run::namespaces_with_prefix_blocking(&format!("{prefix}-")),
        Vec::<String>::new()
    );
    assert!(!LabRun::list().contains(&prefix));
    lab.stop().await;
}
