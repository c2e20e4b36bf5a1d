//! The exporter on the whole lab, as root, scraped by a real Prometheus (Debian's `prometheus`,
//! started here on loopback with its own scrape config): every tunnel reads up in Prometheus's
//! query API from both clouds' reports; a tunnel cut in the data plane (the negative control)
//! falls to 0 there while the other stays 1, and comes back after the restore; `promtool check
//! metrics` accepts the exposition and refuses a broken one; scrapes share readings; both
//! clouds' byte counters grow while pings cross, and barely in a quiet window before. With
//! `[alerts]`, `up` made a CloudWatch alarm per tunnel in the AWS twin (OK while the tunnels
//! are up, ALARM for the cut one only, OK again after the restore) and a metric alert per
//! tunnel on the Azure gateway, and `down` leaves none of either.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers fail loudly by design

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dxvpn_lab::Lab;
use dxvpn_metrics::Exporter;
use dxvpn_netlab::DataPlane;
use dxvpn_validate::probe::{Probe, ProbeOptions, run_probes};
use futures_util::future::join_all;
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(180);

/// A Prometheus this test started, stopped by its pid and its folder removed on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    api: String,
}

impl Prometheus {
    /// Scrapes `target` every second.
    fn start(target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("dxvpn-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: dxvpn\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // A free port on loopback for its API (released just before Prometheus takes it).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(&dir)
            .spawn()
            .expect("prometheus (Debian's `prometheus` package; `cargo xtask test` installs it)");
        Prometheus {
            child,
            dir,
            api: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The instant vector `query` evaluates to: (labels, value) per series.
    async fn query(&self, http: &reqwest::Client, query: &str) -> Vec<(Value, f64)> {
        let Ok(answer) = http
            .get(format!("{}/api/v1/query", self.api))
            .query(&[("query", query)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let body: Value =
            serde_json::from_str(&answer.text().await.unwrap_or_default()).unwrap_or(Value::Null);
        body["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .map(|s| {
                        let value = s["value"][1].as_str().unwrap_or("NaN").parse().unwrap();
                        (s["metric"].clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `query`'s series satisfy `done`.
    async fn wait(
        &self,
        http: &reqwest::Client,
        what: &str,
        query: &str,
        done: impl Fn(&[(Value, f64)]) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let series = self.query(http, query).await;
            if done(&series) {
                return;
            }
            assert!(
                start.elapsed() < SETTLE,
                "{what}: not seen in Prometheus within {SETTLE:?}: {query} = {series:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `promtool check metrics` on `exposition`: whether it passed, and what it said.
fn promtool(exposition: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn tunnel_is(series: &[(Value, f64)], tunnel: &str, value: f64) -> bool {
    let of_tunnel: Vec<_> = series
        .iter()
        .filter(|(m, _)| m["tunnel"] == tunnel)
        .collect();
    !of_tunnel.is_empty() && of_tunnel.iter().all(|(_, v)| *v == value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_every_tunnel_up_a_cut_one_fall_to_0_and_come_back() {
    let lab = Lab::start_on_loopback(0.0005).await.unwrap();
    let config = format!(
        "{}\n[alerts]\nenabled = true\ntunnel_down_minutes = 2\n",
        lab.config("dx-metrics", "development")
    );
    let converged = dxvpn_test_support::converged(&lab, &config).await;
    let plan = converged.plan.clone();

    // Scrapes share readings: ten at once make one reading of both clouds; with no reuse
    // (the negative control) each makes its own.
    for (max_age, readings) in [(Duration::from_secs(60), 1), (Duration::ZERO, 10)] {
        let deployer = dxvpn_deploy::Deployer::connect(&plan).await.unwrap();
        let exporter = Arc::new(Exporter::new(plan.clone(), deployer, max_age));
        join_all((0..10).map(|_| exporter.scrape(dxvpn_metrics::Format::Text))).await;
        assert_eq!(exporter.readings(), readings, "max_age {max_age:?}");
    }

    // The exporter also pings from the lab's AWS host, as from an instance in the VPC: the
    // Azure host, and an address of the VNet where nothing answers (the negative control).
    let topology = DataPlane::attach(&converged.prefix).unwrap();
    let azure_host = topology.topology().azure.host_ip;
    let nobody = std::net::Ipv4Addr::from(u32::from(azure_host) + 50);
    topology.detach().unwrap();
    let aws_host = dxvpn_netlab::host_namespace(&converged.prefix, dxvpn_netlab::Side::Aws);
    let prober: dxvpn_metrics::Prober = Arc::new(move |probes| {
        let ns = aws_host.clone();
        Box::pin(async move {
            dxvpn_netlab::run::run_in_namespace(&ns, move || async move {
                run_probes(&probes, &ProbeOptions::default()).await
            })
            .await
            .map_err(|e| e.to_string())
        })
    });
    let probing = dxvpn_metrics::Probing {
        from: "aws".into(),
        probes: [azure_host, nobody]
            .map(|a| Probe::Ping { target: a.into() })
            .to_vec(),
        prober,
    };
    let exporter = Arc::new(
        Exporter::new(plan.clone(), converged.deployer, Duration::from_millis(500))
            .with_probing(probing),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dxvpn_metrics::serve(exporter, listener, async {
        let _ = stopped.await;
    }));

    // The exposition as curl would get it passes promtool's checks; a broken one does not.
    let http = reqwest::Client::new();
    let exposition = http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (ok, said) = promtool(&exposition);
    assert!(ok, "promtool refused the exposition: {said}\n{exposition}");
    let (ok, _) = promtool("# TYPE dxvpn_x gauge\ndxvpn_x{tunnel=\"c1t1\" 1\n");
    assert!(
        !ok,
        "promtool accepted a broken exposition: it checks nothing"
    );

    let prometheus = Prometheus::start(address);
    let tunnels = plan.tunnels.len();
    prometheus
        .wait(
            &http,
            "every tunnel up in both clouds' reports",
            "dxvpn_tunnel_up",
            |s| s.len() == 2 * tunnels && s.iter().all(|(_, v)| *v == 1.0),
        )
        .await;
    prometheus
        .wait(&http, "every tunnel healthy", "dxvpn_tunnel_healthy", |s| {
            s.len() == tunnels && s.iter().all(|(_, v)| *v == 1.0)
        })
        .await;
    // Prometheus scrapes over OpenMetrics: the negotiated format reached it whole.
    prometheus
        .wait(&http, "the scrape target up", "up{job=\"dxvpn\"}", |s| {
            s.len() == 1 && s[0].1 == 1.0
        })
        .await;

    wait_alarms(
        &lab,
        "every tunnel alarm OK",
        &[("c1t1", "OK"), ("c1t2", "OK")],
    )
    .await;
    // And Azure's side: two metric alerts per tunnel on the gateway (BGP peer, traffic in).
    let alerts = lab.azure.inventory()["metric_alerts"].clone();
    assert_eq!(
        alerts.as_array().map(Vec::len),
        Some(2 * tunnels),
        "{alerts:#}"
    );
    assert!(
        alerts
            .as_array()
            .into_iter()
            .flatten()
            .all(|a| a["scopes"][0]
                .as_str()
                .is_some_and(|s| s.contains("/virtualNetworkGateways/"))),
        "{alerts:#}"
    );

    let plane = DataPlane::attach(&converged.prefix).unwrap();
    bytes_grow_while_pings_cross(&prometheus, &http, &plane).await;
    let of = |s: &[(Value, f64)], target: std::net::Ipv4Addr| {
        s.iter()
            .find(|(m, _)| m["target"] == target.to_string() && m["from"] == "aws")
            .map(|(_, v)| *v)
    };
    prometheus
        .wait(
            &http,
            "the Azure host answers every ping, nobody none",
            "dxvpn_probe_loss_ratio",
            |s| of(s, azure_host) == Some(0.0) && of(s, nobody) == Some(1.0),
        )
        .await;
    prometheus
        .wait(
            &http,
            "a round trip to the Azure host, none to nobody",
            "dxvpn_probe_rtt_seconds",
            |s| of(s, azure_host).is_some_and(|rtt| rtt > 0.0) && of(s, nobody).is_none(),
        )
        .await;

    // Cut c1t1 in the data plane: both clouds report it down, and c1t2 carries on.
    plane.cut_tunnel("c1t1").await.unwrap();
    prometheus
        .wait(&http, "c1t1 at 0, c1t2 at 1", "dxvpn_tunnel_up", |s| {
            tunnel_is(s, "c1t1", 0.0) && tunnel_is(s, "c1t2", 1.0)
        })
        .await;
    wait_alarms(
        &lab,
        "c1t1's alarm fired",
        &[("c1t1", "ALARM"), ("c1t2", "OK")],
    )
    .await;
    plane.restore().await.unwrap();
    prometheus
        .wait(&http, "c1t1 back at 1", "dxvpn_tunnel_up", |s| {
            tunnel_is(s, "c1t1", 1.0) && tunnel_is(s, "c1t2", 1.0)
        })
        .await;
    wait_alarms(
        &lab,
        "c1t1's alarm cleared",
        &[("c1t1", "OK"), ("c1t2", "OK")],
    )
    .await;
    plane.detach().unwrap();
    drop(prometheus);
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let deployer = dxvpn_deploy::Deployer::connect(&plan).await.unwrap();
    let down = deployer.down(plan.clone()).await;
    assert!(down.ok(), "{:?}", down.failures().collect::<Vec<_>>());
    assert_eq!(
        lab.aws.inventory()["alarms"],
        serde_json::json!([]),
        "alarms left after down"
    );
    assert_eq!(
        lab.azure.inventory()["metric_alerts"],
        serde_json::json!([]),
        "metric alerts left after down"
    );
    lab.wait_for(SETTLE, |s| s.prefix.is_none()).await.unwrap();
    lab.stop().await;
}

/// Bytes a window with a ping stream must count beyond what a window without one counted
/// (BGP keepalives and the exporter's own probes): the stream adds 10 pings of 84 bytes a
/// second, so about 4200 in `QUIET`; the probes alone add about 750 over `STREAMED`.
const PING_BYTES: f64 = 1500.0;
const QUIET: Duration = Duration::from_secs(5);
/// How long the stream may take to show: the quiet window and three seconds of lag (scrapes
/// every second, readings every half second). Bounded, so that the probes alone cannot pass.
const STREAMED: Duration = Duration::from_secs(8);

/// Each cloud's end of the tunnels counts the pings that cross (CloudWatch's TunnelDataIn/Out
/// and Azure's TunnelIngress/EgressBytes, from charon's counters over VICI, through the
/// exporter's counters into Prometheus): a window with a ping stream counts at least
/// `PING_BYTES` more than a window as long without one (the negative control).
async fn bytes_grow_while_pings_cross(
    prometheus: &Prometheus,
    http: &reqwest::Client,
    plane: &DataPlane,
) {
    let per_end = "sum by (cloud, direction) (dxvpn_tunnel_bytes_total)";
    prometheus
        .wait(http, "byte counters of both clouds' ends", per_end, |s| {
            s.len() == 4
        })
        .await;
    let by_end = |series: &[(Value, f64)]| -> std::collections::BTreeMap<String, f64> {
        series
            .iter()
            .map(|(m, v)| (format!("{}/{}", m["cloud"], m["direction"]), *v))
            .collect()
    };
    let before = by_end(&prometheus.query(http, per_end).await);
    tokio::time::sleep(QUIET).await;
    let quiet = by_end(&prometheus.query(http, per_end).await);
    let quiet_growth = |end: &str| quiet[end] - before.get(end).copied().unwrap_or(0.0);
    let azure_host = plane.topology().azure.host_ip;
    let stream = plane
        .ping_stream(dxvpn_netlab::Side::Aws, azure_host)
        .unwrap();
    let started = Instant::now();
    let mut now = quiet.clone();
    let grew = |now: &std::collections::BTreeMap<String, f64>| {
        now.len() == 4
            && now
                .iter()
                .all(|(end, v)| v - quiet[end] - quiet_growth(end) >= PING_BYTES)
    };
    while !grew(&now) && started.elapsed() < STREAMED {
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = by_end(&prometheus.query(http, per_end).await);
    }
    let replies = stream.stop().await;
    for (end, v) in &now {
        eprintln!(
            "{end}: {} bytes in {QUIET:?} quiet, {} in {:?} while {} pings crossed",
            quiet_growth(end),
            v - quiet[end],
            started.elapsed(),
            replies.len()
        );
    }
    assert!(!replies.is_empty(), "no ping crossed");
    assert!(
        grew(&now),
        "the pings did not show in every end's bytes within {STREAMED:?}: quiet {quiet:?}, now {now:?}"
    );
}

/// Waits until the AWS twin's alarm of each tunnel is in the state given.
async fn wait_alarms(lab: &Lab, what: &str, wanted: &[(&str, &str)]) {
    let start = Instant::now();
    loop {
        let alarms = lab.aws.inventory()["alarms"].clone();
        let state = |tunnel: &str| {
            alarms
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| {
                    a["name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with(&format!("-{tunnel}-tunnel-down")))
                })
                .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
        };
        if wanted
            .iter()
            .all(|(tunnel, s)| state(tunnel).as_deref() == Some(*s))
        {
            return;
        }
        assert!(start.elapsed() < SETTLE, "{what}: {alarms:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
