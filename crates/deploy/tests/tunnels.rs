//! Both tunnels of a VPN connection changed in one `up`: the deployer modifies one, lets
//! Azure follow, waits until it carries routes again and only then modifies the other, so a
//! tunnel is up throughout. The negative control changes them with the AWS crate alone, one
//! right after the other, and must see a moment with no tunnel up.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dxvpn_deploy::{Deployer, any_writes};
use dxvpn_plan::{Cloud, Outputs, Plan};
use dxvpn_twin_aws::{AwsTwin, TunnelTelemetry};
use dxvpn_twin_azure::{AzureScenario, AzureTwin};

/// Stands in for the data plane: a tunnel carries routes when AWS has it (not being modified)
/// and Azure's local network gateway names its AWS inside address as the BGP peer, that is
/// when BGP between the two ends could be established. Returns how many do.
fn bgp_where_it_could_run(aws: &AwsTwin, azure: &AzureTwin) -> usize {
    let connections = azure.lab_view().connections;
    let mut reports = BTreeMap::new();
    for vpn in aws.lab_view().vpns {
        for t in vpn.tunnels {
            let aws_end = Ipv4Addr::from(u32::from(t.inside_cidr.network()) + 1);
            let followed = connections
                .iter()
                .any(|c| c.peer_outside_ip == t.outside_ip && c.peer_bgp_ip == Some(aws_end));
            if followed {
                let up = TunnelTelemetry {
                    ipsec_up: true,
                    bgp_up: true,
                    accepted_routes: 1,
                    ..Default::default()
                };
                reports.insert(t.outside_ip, up);
            }
        }
    }
    aws.set_telemetry(&reports);
    reports.len()
}

/// Runs the stand-in every 10 ms and keeps how many tunnels carried routes at each tick.
struct Monitor {
    samples: Arc<Mutex<Vec<usize>>>,
    stop: Arc<AtomicBool>,
}

impl Monitor {
    fn start(aws: Arc<AwsTwin>, azure: Arc<AzureTwin>) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, halt) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                let up = bgp_where_it_could_run(&aws, &azure);
                s.lock().unwrap().push(up);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Monitor { samples, stop }
    }

    /// Waits until `n` tunnels carry routes, then forgets what it saw so far.
    async fn settle(&self, n: usize) {
        for _ in 0..500 {
            if self.samples.lock().unwrap().last() == Some(&n) {
                self.samples.lock().unwrap().clear();
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} tunnels never carried routes");
    }

    fn fewest(&self) -> usize {
        let samples = self.samples.lock().unwrap();
        eprintln!("tunnels carrying routes, every 10 ms: {samples:?}");
        samples.iter().copied().min().unwrap()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The config with both tunnels of connection 1 moved to the /30s after theirs.
fn both_moved(text: &str, plan: &Plan) -> String {
    let next = |i: usize| {
        let cidr = plan.tunnels[i].pairing.inside_cidr;
        format!("\"{}/30\"", Ipv4Addr::from(u32::from(cidr.network()) + 4))
    };
    format!(
        "{text}\n[tunnels]\ninside_cidrs = [{}, {}]\n",
        next(0),
        next(1)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_tunnels_change_one_after_the_other_with_azure_following_each() {
    let aws = Arc::new(dxvpn_test_support::aws_twin(0.0005).await);
    let azure = Arc::new(dxvpn_test_support::azure_twin(&AzureScenario::default(), 0.0005).await);
    let text = dxvpn_lab::config::lab_config(
        "dx-tunnels",
        "development",
        &dxvpn_lab::LabScenario::default(),
        &aws,
        &azure,
    );
    let before = Arc::new(dxvpn_plan::plan_from_toml(&text).unwrap());
    let deployer = Deployer::connect(&before).await.unwrap();
    let up = deployer.up(before.clone()).await;
    assert!(up.ok(), "{:?}", up.failures().collect::<Vec<_>>());
    let monitor = Monitor::start(aws.clone(), azure.clone());
    monitor.settle(2).await;

    let after = Arc::new(dxvpn_plan::plan_from_toml(&both_moved(&text, &before)).unwrap());
    let changed = deployer.up(after.clone()).await;
    assert!(changed.ok(), "{:?}", changed.failures().collect::<Vec<_>>());
    let id = |o: &Outputs| o.get("aws.vpn_connection.0", "id").map(str::to_owned);
    assert_eq!(
        id(&changed.outputs),
        id(&up.outputs),
        "the connection is kept"
    );
    assert!(!any_writes(&deployer.diff(&after).await.unwrap()));
    assert_eq!(
        monitor.fewest(),
        1,
        "one tunnel went down at a time, never both"
    );

    // The negative control: the AWS crate alone changes both back, one right after the other,
    // before Azure follows either: for a while no tunnel carries routes.
    monitor.settle(2).await;
    let alone = dxvpn_aws::Aws::connect(&before).await;
    let mut outputs = Outputs::default();
    for r in before.resources.iter().filter(|r| r.cloud == Cloud::Aws) {
        alone.observe(&before, r, &mut outputs).await.unwrap();
    }
    let vpn = before.resource("aws.vpn_connection.0").unwrap();
    alone.ensure(&before, vpn, &mut outputs).await.unwrap();
    assert_eq!(monitor.fewest(), 0, "the control must lose both tunnels");

    let restored = deployer.up(before.clone()).await;
    assert!(
        restored.ok(),
        "{:?}",
        restored.failures().collect::<Vec<_>>()
    );
    let down = deployer.down(before).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
}
