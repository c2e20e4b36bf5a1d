//! `cargo xtask e2e`: the whole story as assertions, through the binary, for both use cases:
//! the lab, `plan`, `up`, `status`, `validate` from both clouds, a tunnel cut survived with a
//! warning, `down`, then `up` and `down` again while a fifth of all calls to both clouds fail at
//! random, with nothing left; every key of the config searched for in everything the
//! commands printed (at trace level) and every file the lab wrote; and every config of the
//! invalid corpus refused by `up` with exit 2, its path named and no API call made. Ends with
//! one line: `e2e: N passed, N failed`.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::e2e_metrics::{
    MetricsRun, all_tunnels_read, bytes_by_cloud, probe_losses, promtool, tunnel_up,
};
use crate::{
    LAB_PACKAGES, Result, TEST_PACKAGES, dxvpn_binary, ensure_debian_packages, lab_prefix, lab_up,
    root, run,
};

const SETTLE: Duration = Duration::from_secs(120);

/// Checks passed and failed, and everything the commands printed.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    printed: String,
}

impl Tally {
    fn check(&mut self, name: &str, ok: bool, detail: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
            eprintln!("  ok   {name}");
        } else {
            let detail = detail();
            eprintln!("  FAIL {name}: {detail}");
            self.failed.push(name.to_owned());
        }
    }

    /// Runs `dxvpn args` at trace level, keeping what it printed for the secrets search.
    fn dxvpn(&mut self, dxvpn: &str, args: &[&str]) -> Output {
        let out = Command::new(dxvpn)
            .arg("-vvv")
            .args(args)
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| Output {
                status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
                stdout: Vec::new(),
                stderr: e.to_string().into_bytes(),
            });
        self.printed.push_str(&String::from_utf8_lossy(&out.stdout));
        self.printed.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Repeats `dxvpn args` until `done(exit code, stdout)`, within [`SETTLE`].
    fn dxvpn_until(
        &mut self,
        dxvpn: &str,
        args: &[&str],
        done: impl Fn(i32, &str) -> bool,
    ) -> (bool, String) {
        let start = Instant::now();
        loop {
            let out = self.dxvpn(dxvpn, args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if done(out.status.code().unwrap_or(-1), &stdout) {
                return (true, stdout);
            }
            if start.elapsed() > SETTLE {
                return (false, stdout);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A key AWS accepts (8-64 of A-Za-z0-9._, not starting with 0), random per run.
fn random_key() -> String {
    let mut bytes = [0u8; 12];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("e2e{hex}")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// What a command said, for a failed check: its exit code, its stdout, and of its stderr (a
/// trace at -vvv, megabytes long) the lines that say what went wrong and the last few, so that
/// a failure in CI names its cause within what CI keeps.
fn text(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let telling: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("error:"))
        .collect();
    let telling = &telling[telling.len().saturating_sub(40)..];
    let last = &lines[lines.len().saturating_sub(15)..];
    format!(
        "exit {:?}\n{}\n--- stderr: warnings and errors ({} of them, the last 40) ---\n{}\n--- stderr: the last lines ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        telling.len(),
        telling.join("\n"),
        last.join("\n")
    )
}

/// Every file below `dir`, read as text.
fn files_below(dir: &Path, into: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_below(&path, into);
        } else if let Ok(bytes) = std::fs::read(&path) {
            into.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

/// `diff` of the converged deployment changes nothing (exit 0); with tunnel 1's key changed in
/// the config (the negative control) it names the update (exit 3) and shows no key.
fn diff_story(
    tally: &mut Tally,
    dxvpn: &str,
    c: &str,
    text_config: &str,
    keys: &[String],
) -> Result {
    let out = tally.dxvpn(dxvpn, &["diff", "-c", c, "--output", "json"]);
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    tally.check(
        "diff of the converged deployment: nothing changes (exit 0)",
        code(&out) == 0 && json.contains("\"unchanged\"") && !json.contains("\"update\""),
        || text(&out),
    );
    let new_key = random_key();
    let changed = text_config.replacen(&keys[0], &new_key, 1);
    let changed_path = format!("{c}.changed-key.toml");
    std::fs::write(&changed_path, &changed).map_err(|e| e.to_string())?;
    let out = tally.dxvpn(dxvpn, &["diff", "-c", &changed_path]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    tally.check(
        "diff with tunnel 1's key changed: an update in place (exit 3), the key never shown",
        code(&out) == 3
            && shown.contains("tunnels[0].pre_shared_key: (secret) -> (changed)")
            && !keys
                .iter()
                .chain([&new_key])
                .any(|k| shown.contains(k.as_str())),
        || text(&out),
    );
    let _ = std::fs::remove_file(&changed_path);
    Ok(())
}

/// The value of `field` in the status JSON's entry for tunnel `key` (a flat object, its
/// members in any order).
fn tunnel_field<'a>(status: &'a str, key: &str, field: &str) -> Option<&'a str> {
    let entry = status
        .split('}')
        .find(|object| object.contains(&format!("\"key\": \"{key}\"")))?;
    crate::json_field(entry, field)
}

/// Reply times (seconds) in the output of `ping -D`: `[1764702000.123456] 64 bytes from ...`.
fn reply_times(ping_output: &str) -> Vec<f64> {
    ping_output
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

/// The longest stretch between two replies, and from the first and to the last moment given.
fn longest_gap(replies: &[f64], from: f64, to: f64) -> f64 {
    let mut times = vec![from];
    times.extend(replies.iter().copied().filter(|t| (from..=to).contains(t)));
    times.push(to);
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Tunnel 1 moves to the next /30 of its APIPA block while the VPC host pings the VNet host
/// every 100 ms: `diff` names the update (exit 3), `up` changes the tunnel in place (the same
/// outside addresses, the new BGP neighbour), both tunnels are up afterwards, and replies kept
/// coming while tunnel 1 was modified, through tunnel 2: the longest gap is printed and must be
/// under half the change, and the lab must have changed in place (the same run).
fn inside_cidr_story(tally: &mut Tally, dxvpn: &str, c: &str, text_config: &str) -> Result {
    let out = tally.dxvpn(dxvpn, &["status", "-c", c, "--output", "json"]);
    let before = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |status: &str, key: &str, name: &str| {
        tunnel_field(status, key, name)
            .unwrap_or_default()
            .to_owned()
    };
    let neighbour: std::net::Ipv4Addr = field(&before, "c1t1", "bgp_neighbor")
        .parse()
        .map_err(|_| format!("status shows no BGP neighbour for c1t1: {before}"))?;
    let other: std::net::Ipv4Addr = field(&before, "c1t2", "bgp_neighbor")
        .parse()
        .map_err(|_| format!("status shows no BGP neighbour for c1t2: {before}"))?;
    // AWS's inside address is the first host of its /30.
    let cidr = |ip: std::net::Ipv4Addr, shift: u32| {
        format!("{}/30", std::net::Ipv4Addr::from(u32::from(ip) - 1 + shift))
    };
    let moved = cidr(neighbour, 4);
    let changed = text_config.replacen(
        "[tunnels]\n",
        &format!(
            "[tunnels]\ninside_cidrs = [\"{moved}\", \"{}\"]\n",
            cidr(other, 0)
        ),
        1,
    );
    let changed_path = format!("{c}.moved-cidr.toml");
    std::fs::write(&changed_path, &changed).map_err(|e| e.to_string())?;
    let out = tally.dxvpn(dxvpn, &["diff", "-c", &changed_path]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    tally.check(
        "diff with tunnel 1's inside CIDR moved: an update of the VPN connection, Azure follows (exit 3)",
        code(&out) == 3
            && shown.contains(&format!("tunnels[0].inside_cidr: {} -> {moved}", cidr(neighbour, 0)))
            && shown.contains("azure.local_network_gateway.c1t1"),
        || text(&out),
    );

    let prefix = lab_prefix(dxvpn)?;
    let target = text_config
        .split_once("cloud = \"azure\"\naddress = \"")
        .and_then(|(_, rest)| rest.split('"').next())
        .ok_or("the lab config has no Azure validate target")?
        .to_owned();
    let ping = |to: &str| {
        Command::new("ip")
            .args(["netns", "exec", &format!("{prefix}-aws-host")])
            .args(["ping", "-D", "-n", "-i", "0.1", "-W", "1", to])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())
    };
    let stop = |mut child: std::process::Child| {
        let _ = child.kill();
        child
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let pinging = ping(&target)?;
    // The negative control: nothing answers an address no host has, so the parser counts
    // only replies.
    let nowhere = ping("198.51.100.7")?;
    std::thread::sleep(Duration::from_secs(1));
    let started = unix_now();
    let out = tally.dxvpn(dxvpn, &["up", "-c", &changed_path, "--yes"]);
    let up_ok = code(&out) == 0;
    let (settled, after) = tally.dxvpn_until(
        dxvpn,
        &["status", "-c", &changed_path, "--output", "json"],
        |code, json| code == 0 && json.matches("\"up\": true").count() == 2,
    );
    let ended = unix_now();
    let replies = reply_times(&stop(pinging));
    let silence = reply_times(&stop(nowhere));
    tally.check("up with the moved inside CIDR", up_ok, || text(&out));
    tally.check(
        "after it both tunnels are up, tunnel 1 with its new BGP neighbour and both outside addresses kept",
        settled
            && field(&after, "c1t1", "bgp_neighbor")
                == std::net::Ipv4Addr::from(u32::from(neighbour) + 4).to_string()
            && ["c1t1", "c1t2"]
                .iter()
                .all(|k| field(&after, k, "outside_ip") == field(&before, k, "outside_ip")),
        || format!("before: {before}\nafter: {after}"),
    );
    let gap = longest_gap(&replies, started, ended);
    let during = ended - started;
    eprintln!(
        "  longest ping gap through the change: {gap:.1} s of {during:.0} s ({} replies, {} from nowhere)",
        replies.len(),
        silence.len()
    );
    let kept = lab_prefix(dxvpn).is_ok_and(|p| p == prefix);
    tally.check(
        "the lab changed its data plane in place: the same run, namespaces and daemons",
        kept,
        || format!("run {prefix} is gone: the lab rebuilt everything"),
    );
    // Tunnel 2 carries the pings while tunnel 1 is modified: the gap is BGP moving the
    // routes, not the whole change. Replies from nowhere would mean the count proves nothing.
    tally.check(
        "pings kept being answered through tunnel 2 (longest gap under half the change)",
        silence.is_empty() && !replies.is_empty() && gap < during / 2.0,
        || {
            format!(
                "longest gap {gap:.1} s of {during:.1} s, {} replies, {} from nowhere",
                replies.len(),
                silence.len()
            )
        },
    );
    let _ = std::fs::remove_file(&changed_path);
    Ok(())
}

fn story(tally: &mut Tally, dxvpn: &str, use_case: &str) -> Result {
    eprintln!("\n{use_case}:");
    let config = lab_up(dxvpn, use_case, &format!("dxvpn-e2e-{use_case}.toml"))?;
    let tunnels = if use_case == "development" { 2 } else { 4 };
    let keys: Vec<String> = (0..tunnels).map(|_| random_key()).collect();
    // Keys given in the config: the secret to search for everywhere else.
    let mut text_config = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
    text_config.push_str(&format!(
        "\n[tunnels]\npreshared_keys = [{}]\n",
        keys.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    std::fs::write(&config, &text_config).map_err(|e| e.to_string())?;
    // Negative control: the search finds a key where one is.
    tally.check(
        "the key search finds a key in the config itself",
        keys.iter().all(|k| text_config.contains(k.as_str())),
        || "the config lacks its keys".into(),
    );
    let c = config.as_str();

    let out = tally.dxvpn(dxvpn, &["plan", "-c", c]);
    tally.check("plan", code(&out) == 0, || text(&out));
    let out = tally.dxvpn(dxvpn, &["up", "-c", c, "--yes"]);
    tally.check("up: every tunnel UP with BGP", code(&out) == 0, || {
        text(&out)
    });
    let out = tally.dxvpn(dxvpn, &["status", "-c", c, "--output", "json"]);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    tally.check(
        &format!("status: {tunnels} tunnels up"),
        code(&out) == 0 && status.matches("\"up\": true").count() == tunnels,
        || text(&out),
    );
    if use_case == "development" {
        // The lab's config names no forwarder: `up` created both hosts (an EC2 instance and an
        // Azure VM), and the lab runs their cloud-init; `validate` below resolves through them.
        tally.check(
            "status: the forwarder hosts up created are running, the AWS one with its instance profile",
            status.contains("\"forwarder_host\"")
                && status.contains("\"state\": \"running\"")
                && status.contains(":instance-profile/dxvpn/")
                && status.contains("\"azure_forwarder_host\"")
                && status.contains("\"power_state\": \"running\""),
            || status.clone(),
        );
        // Also the negative control of the search after `down`: it finds the running ones.
        tally.check(
            "the lab runs both forwarder hosts' unbound, as their cloud-init says",
            lab_forwarders().len() == 2,
            || format!("unbound started by the lab: {:?}", lab_forwarders()),
        );
    }
    diff_story(tally, dxvpn, c, &text_config, &keys)?;
    let metrics = MetricsRun::start(dxvpn, c)?;
    let (ok, exposition) = metrics.until(SETTLE, |e| all_tunnels_read(e, 2 * tunnels, "1"));
    tally.check(
        "metrics: dxvpn_tunnel_up 1 for every tunnel in both clouds' series",
        ok,
        || exposition.clone(),
    );
    let (ok, said) = promtool(&exposition);
    tally.check("promtool check metrics accepts the exposition", ok, || {
        format!("{said}\n{exposition}")
    });
    tally.printed.push_str(&exposition);
    // Byte counters: one per tunnel, cloud and direction, and both clouds' grow while
    // validate's probes cross (the lab test in crates/metrics holds the quiet control).
    let (ok, probed) = metrics.until(SETTLE, |e| {
        let losses = probe_losses(e);
        !losses.is_empty() && losses.iter().all(|l| *l == 0.0)
    });
    tally.check(
        "metrics --from aws: every validate target answers the AWS host's pings (loss 0)",
        ok,
        || probed.clone(),
    );
    let (series, before) = bytes_by_cloud(&exposition);
    tally.check(
        "metrics: dxvpn_tunnel_bytes_total for every tunnel, cloud and direction",
        series == 4 * tunnels,
        || exposition.clone(),
    );
    for from in ["aws", "azure"] {
        let (ok, report) = tally.dxvpn_until(
            dxvpn,
            &["validate", "-c", c, "--from", from, "--output", "json"],
            |code, _| code == 0,
        );
        tally.check(
            &format!("validate --from {from}: pings, names and TCP across"),
            ok && report.contains("\"verdict\": \"pass\""),
            || report.clone(),
        );
    }
    let (ok, exposition) = metrics.until(SETTLE, |e| {
        let (_, now) = bytes_by_cloud(e);
        ["aws", "azure"].iter().all(|c| {
            now.get(*c).copied().unwrap_or(0.0) > before.get(*c).copied().unwrap_or(f64::MAX)
        })
    });
    tally.check(
        "metrics: both clouds' byte counters grew while validate's probes crossed",
        ok,
        || format!("before {before:?}\n{exposition}"),
    );
    let out = tally.dxvpn(dxvpn, &["lab", "cut", "--tunnel", "c1t1"]);
    tally.check("lab cut --tunnel c1t1", code(&out) == 0, || text(&out));
    let (ok, report) = tally.dxvpn_until(
        dxvpn,
        &["validate", "-c", c, "--from", "aws", "--output", "json"],
        |code, json| code == 0 && json.contains("\"id\": \"redundancy-lost\""),
    );
    tally.check(
        "validate after the cut: passes, warns that redundancy is lost",
        ok && report.contains("\"verdict\": \"warn\""),
        || report.clone(),
    );
    // The negative control of the metrics above: the cut tunnel reads 0, in both clouds.
    let (ok, exposition) = metrics.until(SETTLE, |e| {
        let (cut, other) = (tunnel_up(e, "c1t1"), tunnel_up(e, "c1t2"));
        cut.len() == 2 && cut.iter().all(|v| v == "0") && other.iter().all(|v| v == "1")
    });
    tally.check(
        "metrics after the cut: c1t1 reads 0 in both clouds' series, c1t2 still 1",
        ok,
        || exposition.clone(),
    );
    let (exit, log) = metrics.stop();
    tally.printed.push_str(&log);
    tally.check("metrics: SIGTERM stops it, exit 0", exit == Some(0), || {
        let last: Vec<&str> = log.lines().rev().take(20).collect();
        format!("exit {exit:?}\n{}", last.join("\n"))
    });
    let out = tally.dxvpn(dxvpn, &["lab", "restore"]);
    tally.check("lab restore", code(&out) == 0, || text(&out));
    if use_case == "development" {
        inside_cidr_story(tally, dxvpn, c, &text_config)?;
    }
    let run_prefix = lab_prefix(dxvpn).ok();
    let out = tally.dxvpn(dxvpn, &["down", "-c", c, "--yes"]);
    tally.check("down", code(&out) == 0, || text(&out));
    bad_day(tally, dxvpn, c);
    let out = tally.dxvpn(dxvpn, &["status", "-c", c, "--output", "json"]);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    if use_case == "development" {
        tally.check(
            "after down, the forwarder hosts are gone and no forwarder runs in the lab",
            status.contains("\"instance\": null")
                && status.contains("\"vm\": null")
                && lab_forwarders().is_empty(),
            || format!("{status}\nstill running: {:?}", lab_forwarders()),
        );
    }
    tally.check(
        "after down, no tunnel is left in either cloud",
        status.matches("\"aws_status\": \"MISSING\"").count() == tunnels
            && status.matches("\"azure_status\": \"Missing\"").count() == tunnels,
        || text(&out),
    );

    // Everything printed, and every file the lab wrote, before the lab removes its files.
    let mut written = String::new();
    files_below(Path::new("/tmp/dxvpn-lab"), &mut written);
    run(dxvpn, &["lab", "down"], &[])?;
    if let Some(p) = run_prefix {
        let left = crate::namespaces(&format!("{p}-"));
        tally.check("lab down: no namespace left", left.is_empty(), || {
            left.join(", ")
        });
    }
    let leaked: Vec<&String> = keys
        .iter()
        .filter(|k| tally.printed.contains(k.as_str()) || written.contains(k.as_str()))
        .collect();
    tally.check(
        "no key in any output (trace level) or lab file",
        leaked.is_empty(),
        || format!("{} key(s) found", leaked.len()),
    );
    let _ = std::fs::remove_file(&config);
    Ok(())
}

/// Pids of forwarders the lab runs for instances (their files are in the lab's folder).
fn lab_forwarders() -> Vec<String> {
    std::process::Command::new("pgrep")
        .args(["-f", "unbound -d -p -c /tmp/dxvpn-lab/"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A bad day on both clouds: a fifth of all calls to each twin fail at random (5xx, throttling
/// with Retry-After, connections dropped mid-answer, some after the effect); `up` and `down`
/// still succeed, and the faults did happen.
fn bad_day(tally: &mut Tally, dxvpn: &str, c: &str) {
    let out = tally.dxvpn(dxvpn, &["lab", "chaos", "--rate", "1.5"]);
    tally.check(
        "lab chaos --rate 1.5 is refused (exit 2)",
        code(&out) == 2,
        || text(&out),
    );
    let out = tally.dxvpn(dxvpn, &["lab", "chaos", "--rate", "0.2", "--seed", "7"]);
    tally.check("lab chaos --rate 0.2", code(&out) == 0, || text(&out));
    let out = tally.dxvpn(dxvpn, &["up", "-c", c, "--yes"]);
    tally.check(
        "up while a fifth of all calls fail",
        code(&out) == 0,
        || text(&out),
    );
    let out = tally.dxvpn(dxvpn, &["down", "-c", c, "--yes"]);
    tally.check(
        "down while a fifth of all calls fail",
        code(&out) == 0,
        || text(&out),
    );
    let out = tally.dxvpn(dxvpn, &["lab", "chaos", "--rate", "0", "--output", "json"]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let injected = |cloud: &str| -> u64 {
        crate::json_field(&report, cloud)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (aws, azure) = (injected("aws"), injected("azure"));
    tally.check(
        &format!("the faults happened: {aws} AWS, {azure} Azure"),
        code(&out) == 0 && aws >= 3 && azure >= 3,
        || text(&out),
    );
}

/// Every invalid config: `up` exits 2 naming the expected path, and no API call is made
/// (the AWS SDK is pointed at a listener that counts connections).
fn invalid_corpus(tally: &mut Tally, dxvpn: &str) -> Result {
    eprintln!("\ninvalid configs:");
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let endpoint = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let connections = Arc::new(AtomicUsize::new(0));
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/configs/invalid"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for file in files {
        let content = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let Some(expected_path) = content
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .and_then(|e| e.split_whitespace().next())
        else {
            continue;
        };
        let out = Command::new(dxvpn)
            .args(["up", "--yes", "-c"])
            .arg(&file)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .current_dir(root())
            .output()
            .map_err(|e| e.to_string())?;
        while listener.accept().is_ok() {
            connections.fetch_add(1, Ordering::Relaxed);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        // Values the file marks as secrets never come back, in text or in JSON.
        let secrets: Vec<&str> = content
            .lines()
            .find_map(|l| l.strip_prefix("# secrets: "))
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        if !secrets.is_empty() {
            // The control: each marked secret is in the file's TOML (not only in the comment),
            // so the search below looks for something `up` was given.
            let toml: String = content.lines().filter(|l| !l.starts_with('#')).collect();
            tally.check(
                &format!(
                    "{}: its marked secrets are in the config",
                    name.clone().unwrap_or_default()
                ),
                secrets.iter().all(|s| toml.contains(s)),
                || format!("{secrets:?}"),
            );
            let json = Command::new(dxvpn)
                .args(["up", "--yes", "--output", "json", "-c"])
                .arg(&file)
                .env("AWS_ENDPOINT_URL", &endpoint)
                .current_dir(root())
                .output()
                .map_err(|e| e.to_string())?;
            let whole = |o: &Output| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            };
            let shown = format!("{}{}", whole(&out), whole(&json));
            let leaked: Vec<&&str> = secrets.iter().filter(|s| shown.contains(**s)).collect();
            tally.check(
                &format!(
                    "up -c {}: no secret of the file in what it printed",
                    name.clone().unwrap_or_default()
                ),
                leaked.is_empty(),
                || format!("{leaked:?} in {shown}"),
            );
        }
        tally.check(
            &format!(
                "up -c {}: exit 2 at {expected_path}",
                name.unwrap_or_default()
            ),
            code(&out) == 2 && stderr.contains(expected_path),
            || text(&out),
        );
    }
    let calls = connections.load(Ordering::Relaxed);
    tally.check("no API call for any invalid config", calls == 0, || {
        format!("{calls} connection(s)")
    });
    Ok(())
}

pub(crate) fn e2e() -> Result {
    ensure_debian_packages(LAB_PACKAGES)?;
    ensure_debian_packages(TEST_PACKAGES)?;
    let dxvpn = dxvpn_binary()?;
    let mut tally = Tally::default();
    invalid_corpus(&mut tally, &dxvpn)?;
    // `DXVPN_E2E_ONLY=development` runs one story, for a developer's loop; CI runs both.
    let only = std::env::var("DXVPN_E2E_ONLY").ok();
    for use_case in ["development", "high_availability"] {
        if only.as_deref().is_some_and(|o| o != use_case) {
            continue;
        }
        if let Err(e) = story(&mut tally, &dxvpn, use_case) {
            tally.check(&format!("{use_case} story"), false, || e.clone());
            let _ = run(&dxvpn, &["lab", "down"], &[]);
        }
    }
    println!(
        "e2e: {} passed, {} failed",
        tally.passed,
        tally.failed.len()
    );
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", tally.failed.join("; ")))
    }
}
