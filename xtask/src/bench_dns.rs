//! `cargo xtask bench dns`: dnsperf against dxvpn's forwarder and against unbound configured
//! the same way (one zone forwarded to the "other cloud", one answered locally, no DNSSEC), on
//! loopback, in one run: throughput at saturation, latency percentiles at a fixed load, and
//! peak RSS.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Result, ensure_debian_packages, run, target_dir};

const PACKAGES: &[(&str, &str)] = &[("dnsperf", "dnsperf"), ("unbound", "unbound")];
/// Hosts per zone; the query file asks each of them in both zones.
const HOSTS: u32 = 100;
const THROUGHPUT_SECONDS: &str = "10";
/// Latency is read below saturation, where it means something: this many queries per second.
const LATENCY_QPS: &str = "5000";

/// A server process that is killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Peak resident memory (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

fn free_port() -> Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(socket.local_addr().map_err(|e| e.to_string())?.port())
}

fn records(zone_octet: u8) -> String {
    (1..=HOSTS)
        .map(|i| format!("vm{i} = \"10.{zone_octet}.{}.{}\"", i / 250, i % 250 + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn start(program: &Path, args: &[&str]) -> Result<Server> {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    Ok(Server(child))
}

/// Waits until `port` answers a query for `name`.
fn wait_answering(port: u16, name: &str) -> Result {
    for _ in 0..100 {
        let out = Command::new("dig")
            .args(["+short", "+time=1", "+tries=1", "-p", &port.to_string()])
            .args(["@127.0.0.1", name])
            .output()
            .map_err(|e| e.to_string())?;
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("nothing answers {name} on port {port}"))
}

fn dnsperf(port: u16, queries: &Path, extra: &[&str]) -> Result<String> {
    let out = Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
        .arg(queries)
        .args(extra)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "dnsperf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn stat(report: &str, label: &str) -> f64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim_start_matches([':', ' ']).split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// (p50, p99) in microseconds from dnsperf -v lines `> NOERROR name A 0.000123`.
fn percentiles(verbose: &str) -> (f64, f64, usize) {
    let mut samples: Vec<f64> = verbose
        .lines()
        .filter(|l| l.starts_with("> "))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|s| s * 1e6)
        .collect();
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), samples.len())
}

struct Measured {
    qps: f64,
    lost: f64,
    p50_us: f64,
    p99_us: f64,
    samples: usize,
    rss_mib: f64,
}

pub(crate) fn bench_dns() -> Result<String> {
    ensure_debian_packages(PACKAGES)?;
    run("cargo", &["build", "--release", "-q", "-p", "dxvpn"], &[])?;
    let dxvpn = target_dir().join("release/dxvpn");
    let dir = std::env::temp_dir().join(format!("dxvpn-bench-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(path)
    };
    let (azure_port, ours_port, unbound_port) = (free_port()?, free_port()?, free_port()?);

    // The other cloud's resolver: answers azure.internal.
    let azure_conf = write(
        "azure.toml",
        &format!(
            "listen = \"127.0.0.1:{azure_port}\"\n[[local]]\nzone = \"azure.internal\"\nrecords = {{ {} }}\n",
            records(1)
        ),
    )?;
    // dxvpn's forwarder on the AWS side: forwards azure.internal, answers aws.internal.
    let ours_conf = write(
        "ours.toml",
        &format!(
            "listen = \"127.0.0.1:{ours_port}\"\n[[forward]]\nzone = \"azure.internal\"\ntargets = [\"127.0.0.1:{azure_port}\"]\n[[local]]\nzone = \"aws.internal\"\nrecords = {{ {} }}\n",
            records(0)
        ),
    )?;
    // unbound, the same job, no DNSSEC validation (dxvpn's forwarder does none either), as
    // many threads as dxvpn's runtime has workers (one per core).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut unbound_conf = format!(
        "server:\n  interface: 127.0.0.1\n  port: {unbound_port}\n  num-threads: {cores}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  module-config: \"iterator\"\n  local-zone: \"aws.internal.\" static\n",
        dir = dir.display()
    );
    for i in 1..=HOSTS {
        let _ = writeln!(
            unbound_conf,
            "  local-data: \"vm{i}.aws.internal. 60 IN A 10.0.{}.{}\"",
            i / 250,
            i % 250 + 1
        );
    }
    let _ = write!(
        unbound_conf,
        "forward-zone:\n  name: \"azure.internal.\"\n  forward-addr: 127.0.0.1@{azure_port}\nremote-control:\n  control-enable: no\n"
    );
    let unbound_conf = write("unbound.conf", &unbound_conf)?;
    let mut queries = String::new();
    for i in 1..=HOSTS {
        let _ = writeln!(queries, "vm{i}.aws.internal A\nvm{i}.azure.internal A");
    }
    let queries = write("queries.txt", &queries)?;

    let dxvpn_s = dxvpn.to_string_lossy().into_owned();
    let _azure = start(
        &dxvpn,
        &["dns-forwarder", "--config", &azure_conf.to_string_lossy()],
    )?;
    let ours = start(
        Path::new(&dxvpn_s),
        &["dns-forwarder", "--config", &ours_conf.to_string_lossy()],
    )?;
    let unbound = start(
        Path::new("unbound"),
        &["-d", "-c", &unbound_conf.to_string_lossy()],
    )?;
    wait_answering(azure_port, "vm1.azure.internal")?;
    let servers = [
        ("dxvpn dns-forwarder", ours_port),
        ("unbound", unbound_port),
    ];
    for (_, port) in servers {
        wait_answering(port, "vm1.azure.internal")?;
        // Warm the caches: both answer the forwarded zone from cache afterwards.
        dnsperf(port, &queries, &["-n", "2"])?;
    }
    // Alternate the servers so neither runs on a warmer machine.
    let mut throughput = Vec::new();
    for (_, port) in servers {
        let report = dnsperf(port, &queries, &["-l", THROUGHPUT_SECONDS, "-c", "20"])?;
        throughput.push((
            stat(&report, "Queries per second"),
            stat(&report, "Queries lost").max(0.0),
        ));
    }
    let mut latency = Vec::new();
    for (_, port) in servers {
        let report = dnsperf(port, &queries, &["-l", "5", "-Q", LATENCY_QPS, "-v"])?;
        latency.push(percentiles(&report));
    }
    let rss = [ours.peak_rss_mib(), unbound.peak_rss_mib()];
    drop(ours);
    drop(unbound);
    let _ = std::fs::remove_dir_all(&dir);

    let m: Vec<Measured> = (0..2)
        .map(|i| Measured {
            qps: throughput[i].0,
            lost: throughput[i].1,
            p50_us: latency[i].0,
            p99_us: latency[i].1,
            samples: latency[i].2,
            rss_mib: rss[i],
        })
        .collect();
    let mut rows = String::new();
    for (i, (name, _)) in servers.iter().enumerate() {
        let x = &m[i];
        let _ = writeln!(
            rows,
            "| {name} | {:.0} | {:.0} | {:.0} µs | {:.0} µs | {:.1} MiB |",
            x.qps, x.lost, x.p50_us, x.p99_us, x.rss_mib
        );
    }
    Ok(format!(
        "## DNS forwarder vs unbound (dnsperf, loopback)\n\n\
         Both answer `aws.internal` locally and forward `azure.internal` to a third resolver (dxvpn's forwarder), {HOSTS} names each, caches warm. Throughput: `dnsperf -l {THROUGHPUT_SECONDS} -c 20` (100 queries outstanding). Latency: `dnsperf -l 5 -Q {LATENCY_QPS} -v`, {} and {} samples. unbound runs {cores} threads, no validator; dxvpn's forwarder its multi-thread runtime (release build). Command: `cargo xtask bench dns`.\n\n\
         | server | queries/s | lost | p50 | p99 | peak RSS |\n|---|---|---|---|---|---|\n{rows}\n\
         | dxvpn / unbound | throughput **{:.2}** | p99 **{:.2}** | peak RSS **{:.2}** |\n|---|---|---|---|\n",
        m[0].samples,
        m[1].samples,
        m[0].qps / m[1].qps,
        m[0].p99_us / m[1].p99_us,
        m[0].rss_mib / m[1].rss_mib,
    ))
}
