//! `dxvpn metrics` through the binary, for the e2e story: it serves every tunnel up from both
//! clouds' reports, `promtool check metrics` accepts what it serves, a cut tunnel reads 0, and
//! SIGTERM stops it with exit 0. (Prometheus itself scrapes it in `dxvpn-metrics`' lab test.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// A `dxvpn metrics` this story started; stopped by its pid (killed on drop if still running).
pub(crate) struct MetricsRun {
    child: Child,
    address: String,
    log: PathBuf,
}

impl MetricsRun {
    /// Serves `config`'s metrics on a free loopback port, reading both clouds on every scrape
    /// and pinging the validate targets from the lab's AWS host.
    pub(crate) fn start(dxvpn: &str, config: &str) -> Result<MetricsRun> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let address = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("dxvpn-e2e-metrics-{port}.log"));
        let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(dxvpn)
            .args([
                "-vvv",
                "metrics",
                "-c",
                config,
                "--max-age",
                "0",
                "--from",
                "aws",
            ])
            .args(["--listen", &address])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start dxvpn metrics: {e}"))?;
        Ok(MetricsRun {
            child,
            address,
            log,
        })
    }

    /// `GET /metrics` as curl sends it (no Accept: the classic text format).
    pub(crate) fn scrape(&self) -> Option<String> {
        let mut stream = TcpStream::connect(&self.address).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        write!(
            stream,
            "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.address
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
    }

    /// Scrapes until `done` holds of the exposition, within `limit`; the last exposition.
    pub(crate) fn until(&self, limit: Duration, done: impl Fn(&str) -> bool) -> (bool, String) {
        let start = Instant::now();
        loop {
            let exposition = self.scrape().unwrap_or_default();
            if done(&exposition) {
                return (true, exposition);
            }
            if start.elapsed() > limit {
                return (false, exposition);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// SIGTERM by pid; its exit code (None when it did not stop within 10 s, then killed) and
    /// what it logged.
    pub(crate) fn stop(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        (code, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// A story that ends early still stops its exporter.
impl Drop for MetricsRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The values of `dxvpn_tunnel_up` for `tunnel`, one per cloud.
pub(crate) fn tunnel_up(exposition: &str, tunnel: &str) -> Vec<String> {
    exposition
        .lines()
        .filter(|l| {
            l.starts_with("dxvpn_tunnel_up{") && l.contains(&format!("tunnel=\"{tunnel}\""))
        })
        .filter_map(|l| l.rsplit(' ').next().map(str::to_owned))
        .collect()
}

/// The `dxvpn_tunnel_bytes_total` samples: how many, and their sum per cloud.
pub(crate) fn bytes_by_cloud(exposition: &str) -> (usize, std::collections::BTreeMap<String, f64>) {
    let mut sums = std::collections::BTreeMap::new();
    let mut count = 0;
    for line in exposition
        .lines()
        .filter(|l| l.starts_with("dxvpn_tunnel_bytes_total{"))
    {
        count += 1;
        let cloud = line
            .split("cloud=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *sums.entry(cloud).or_insert(0.0) += value;
    }
    (count, sums)
}

/// The `dxvpn_probe_loss_ratio` samples' values.
pub(crate) fn probe_losses(exposition: &str) -> Vec<f64> {
    exposition
        .lines()
        .filter(|l| l.starts_with("dxvpn_probe_loss_ratio{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// Every `dxvpn_tunnel_up` sample reads `value`, and there are `count` of them.
pub(crate) fn all_tunnels_read(exposition: &str, count: usize, value: &str) -> bool {
    let values: Vec<&str> = exposition
        .lines()
        .filter(|l| l.starts_with("dxvpn_tunnel_up{"))
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    values.len() == count && values.iter().all(|v| *v == value)
}

/// `promtool check metrics` on `exposition`: passed, and what it said.
pub(crate) fn promtool(exposition: &str) -> (bool, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return (false, "promtool did not start".into());
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(exposition.as_bytes());
    }
    match child.wait_with_output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}
