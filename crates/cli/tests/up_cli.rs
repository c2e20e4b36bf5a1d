//! `dxvpn lab up`, `up`, `status`, `down`, `lab down` through the binary, as root: the story a
//! user runs, on the whole lab (twins and the data plane they drive), and `up` killed after
//! each mutating call in turn (a real process kill), followed once by a `down` of the half-made
//! deployment that leaves no orphan, and once by a re-run that converges without a duplicate
//! and a `down` that leaves no orphan.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn dxvpn() -> Command {
    Command::cargo_bin("dxvpn").unwrap()
}

/// A raw HTTP/1.1 call to a twin's `/_dxvpn/` hooks; (status, body).
fn http(endpoint: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn inventory(endpoint: &str) -> Value {
    serde_json::from_str(&http(endpoint, "GET", "/_dxvpn/inventory", "").1).unwrap()
}

fn mutating(inventory: &Value, read_only: impl Fn(&str) -> bool) -> u64 {
    inventory["calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(call, _)| !read_only(call))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

fn aws_writes(endpoint: &str) -> u64 {
    // Reads: EC2's Describe*, Route 53 Resolver's Get* and List*.
    mutating(&inventory(endpoint), |c| {
        ["Describe", "Get", "List"].iter().any(|p| c.starts_with(p))
    })
}

fn azure_writes(endpoint: &str) -> u64 {
    mutating(&inventory(endpoint), |c| {
        c.starts_with("GET ") || c.starts_with("POST get")
    })
}

fn aws_live(endpoint: &str, list: &str) -> usize {
    inventory(endpoint)[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] != "deleted")
        .count()
}

fn azure_created(endpoint: &str) -> Vec<String> {
    inventory(endpoint)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["seeded"] == false)
        .map(|r| r["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Exit code 0, or both streams in the failure message.
fn expect_ok(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The background lab comes down whatever happens to the test.
struct LabDownOnDrop;

impl Drop for LabDownOnDrop {
    fn drop(&mut self) {
        let _ = dxvpn().args(["lab", "down"]).output();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dxvpn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn the_story(dir: &Path, use_case: &str, tamper: bool) {
    let config = dir.join(format!("{use_case}.toml"));
    let out = dxvpn()
        .args(["lab", "up", "--use-case", use_case, "--output", "json"])
        .arg("--config-out")
        .arg(&config)
        .output()
        .unwrap();
    expect_ok(&out);
    let _down = LabDownOnDrop;
    let lab = json(&out);
    let (aws, azure) = (
        lab["aws_endpoint"].as_str().unwrap().to_owned(),
        lab["azure_endpoint"].as_str().unwrap().to_owned(),
    );
    let tunnels = if use_case == "development" { 2 } else { 4 };

    // Before `up`, status is honest: nothing is up, exit 1.
    let out = dxvpn()
        .args(["status", "--output", "json", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["healthy"], false);

    let out = dxvpn()
        .args(["up", "--yes", "--wait", "180", "--output", "json", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let up = json(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{up:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = &up["status"];
    assert_eq!(status["tunnels"].as_array().unwrap().len(), tunnels);
    for t in status["tunnels"].as_array().unwrap() {
        assert_eq!(t["aws_status"], "UP", "{t}");
        assert_eq!(t["azure_status"], "Connected", "{t}");
        assert_eq!(t["bgp_state"], "Connected", "{t}");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pre_shared_key"));

    // A ping crosses from the VPC host to the VNet host.
    let lab_status = dxvpn()
        .args(["lab", "status", "--output", "json"])
        .output()
        .unwrap();
    let prefix = json(&lab_status)["prefix"].as_str().unwrap().to_owned();
    // The clouds report tunnels up; the VNet fabric learns the way back a moment later.
    let host = format!("{prefix}-aws-host");
    let ping = |count: &str| {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &host,
                "ping",
                "-c",
                count,
                "-W",
                "2",
                "10.1.1.10",
            ])
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ping("1").status.success() {
        assert!(Instant::now() < deadline, "no ping crossed in 30 s");
    }
    let crossed = ping("3");
    assert!(
        crossed.status.success(),
        "{}",
        String::from_utf8_lossy(&crossed.stdout)
    );

    // A second `up` writes nothing and is quick.
    let writes = (aws_writes(&aws), azure_writes(&azure));
    let started = Instant::now();
    let out = dxvpn()
        .args(["up", "--yes", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!((aws_writes(&aws), azure_writes(&azure)), writes);
    println!("{use_case}: converged re-run of `dxvpn up` took {took:?}");

    if tamper {
        // Negative control: Azure now holds another key for tunnel c1t1. It must read DOWN.
        let outside = status["tunnels"][0]["outside_ip"].as_str().unwrap();
        let (code, _) = http(
            &azure,
            "POST",
            "/_dxvpn/tamper",
            &format!(r#"{{"what":"psk","outside_ip":"{outside}"}}"#),
        );
        assert_eq!(code, 204);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = dxvpn()
                .args(["status", "--output", "json", "-c"])
                .arg(&config)
                .output()
                .unwrap();
            let s = json(&out);
            let t = &s["status"]["tunnels"];
            if t[0]["azure_status"] != "Connected" && t[1]["aws_status"] == "UP" {
                assert_eq!(out.status.code(), Some(1), "status must not say healthy");
                assert_eq!(t[0]["aws_status"], "DOWN");
                break;
            }
            assert!(Instant::now() < deadline, "{s:#}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    let out = dxvpn()
        .args(["down", "--yes", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    expect_ok(&out);
    for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
        assert_eq!(aws_live(&aws, list), 0, "{list}");
    }
    assert_eq!(azure_created(&azure), Vec::<String>::new());
    let out = dxvpn().args(["lab", "down"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        dxvpn_netlab::run::namespaces_with_prefix_blocking(&format!("{prefix}-")),
        Vec::<String>::new(),
        "data plane left behind"
    );
}

#[test]
fn lab_up_then_up_status_down_for_both_use_cases() {
    let dir = scratch("story");
    the_story(&dir, "development", true);
    the_story(&dir, "high_availability", false);
    let _ = std::fs::remove_dir_all(dir);
}

/// Plain twins (no data plane): `lab serve` in the background for this test alone.
struct Twins {
    child: std::process::Child,
    aws: String,
    azure: String,
    config: PathBuf,
}

impl Drop for Twins {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn twins(dir: &Path) -> Twins {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
        .args([
            "lab",
            "serve",
            "--aws",
            "127.0.0.1:0",
            "--azure",
            "127.0.0.1:0",
            "--time-factor",
            "0.0002",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let banner: Value = serde_json::from_str(&line).unwrap();
    let (a, z) = (&banner["aws"], &banner["azure"]);
    let rtbs: Vec<String> = a["seeded"]["route_table_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{r}"))
        .collect();
    let config = dir.join("kill.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"dx-kill\"\nuse_case = \"development\"\n[aws]\nregion = \"eu-south-1\"\nvpc_id = {}\nvpc_cidr = \"10.0.0.0/16\"\nroute_table_ids = [{}]\nendpoint_url = {}\n[azure]\nsubscription_id = {}\nresource_group = {}\nlocation = {}\nvnet_name = \"dxvpn-lab-vnet\"\nvnet_cidr = \"10.1.0.0/16\"\ngateway_subnet_cidr = \"10.1.255.0/27\"\nendpoint = {}\n",
            a["seeded"]["vpc_id"], rtbs.join(", "), a["endpoint"], z["seeded"]["subscription_id"], z["seeded"]["resource_group"], z["seeded"]["location"], z["endpoint"]
        ),
    )
    .unwrap();
    Twins {
        child,
        aws: a["endpoint"].as_str().unwrap().to_owned(),
        azure: z["endpoint"].as_str().unwrap().to_owned(),
        config,
    }
}

fn converged_once(t: &Twins) {
    assert_eq!(aws_live(&t.aws, "vpn_gateways"), 1);
    assert_eq!(aws_live(&t.aws, "customer_gateways"), 1);
    assert_eq!(aws_live(&t.aws, "vpn_connections"), 1);
    let mut created = azure_created(&t.azure);
    created.sort();
    assert_eq!(
        created,
        [
            "Microsoft.Network/connections",
            "Microsoft.Network/connections",
            "Microsoft.Network/localNetworkGateways",
            "Microsoft.Network/localNetworkGateways",
            "Microsoft.Network/publicIPAddresses",
            "Microsoft.Network/virtualNetworkGateways",
        ]
    );
}

#[test]
fn up_killed_after_each_mutating_call_is_taken_down_clean_or_reruns_to_one_of_everything() {
    let dir = scratch("kill");
    let t = twins(&dir);
    let up = |extra: &[&str]| {
        dxvpn()
            .args(["up", "--yes", "--wait", "0", "-c"])
            .arg(&t.config)
            .args(extra)
            .output()
            .unwrap()
    };
    let down = || {
        let out = dxvpn()
            .args(["down", "--yes", "-c"])
            .arg(&t.config)
            .output()
            .unwrap();
        expect_ok(&out);
        assert_eq!(azure_created(&t.azure), Vec::<String>::new());
        for list in ["vpn_gateways", "customer_gateways", "vpn_connections"] {
            assert_eq!(aws_live(&t.aws, list), 0, "{list}");
        }
    };
    // A clean run counts each cloud's mutating calls.
    let before = (aws_writes(&t.aws), azure_writes(&t.azure));
    assert_eq!(up(&[]).status.code(), Some(0));
    converged_once(&t);
    let per_up = (
        aws_writes(&t.aws) - before.0,
        azure_writes(&t.azure) - before.1,
    );
    assert!(per_up.0 >= 5 && per_up.1 >= 5, "{per_up:?}");
    down();

    // The n-th write of an `up` takes effect and its answer never comes; then the process is
    // killed (SIGKILL) while it waits.
    let kill_at = |endpoint: &str, writes: fn(&str) -> u64, n: u64| {
        let at = writes(endpoint) + n;
        let (code, _) = http(
            endpoint,
            "POST",
            "/_dxvpn/faults",
            &format!(
                r#"{{"action":"*","at_call":{at},"kind":{{"kind":"stall"}},"after_effect":true}}"#
            ),
        );
        assert_eq!(code, 204);
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
            .args(["up", "--yes", "--wait", "0", "-c"])
            .arg(&t.config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while writes(endpoint) < at {
            assert!(Instant::now() < deadline, "write {n} never came");
            assert!(
                child.try_wait().unwrap().is_none(),
                "up ended before write {n}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    };

    let mut kills = 0;
    for (endpoint, count, writes) in [
        (&t.aws, per_up.0, aws_writes as fn(&str) -> u64),
        (&t.azure, per_up.1, azure_writes as fn(&str) -> u64),
    ] {
        for n in 1..=count {
            // Killed at write n, then taken down at once: down finds the half-made deployment
            // (some resources still provisioning) and leaves nothing.
            kill_at(endpoint, writes, n);
            down();
            // Killed at write n again, then re-run: one of everything, then a clean down.
            kill_at(endpoint, writes, n);
            kills += 2;
            let out = up(&[]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "re-run after kill at write {n} of {endpoint}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            converged_once(&t);
            down();
        }
    }
    println!(
        "{kills} kills, each followed by a clean down, or by a converging re-run and a clean down"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Off a terminal (as here: no tty on stdin or stderr) `up` and `down` change nothing without
/// `--yes`: exit 2 naming the flag. They used to go ahead. The control: with `--yes` they do.
#[test]
fn up_and_down_off_a_terminal_need_yes() {
    let dir = scratch("consent");
    let t = twins(&dir);
    let run = |args: &[&str]| dxvpn().args(args).arg(&t.config).output().unwrap();
    let refused = |out: &std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--yes"), "{stderr}");
    };
    refused(&run(&["up", "--wait", "0", "-c"]));
    assert_eq!(
        aws_writes(&t.aws) + azure_writes(&t.azure),
        0,
        "up wrote without --yes"
    );
    expect_ok(&run(&["up", "--yes", "--wait", "0", "-c"]));
    converged_once(&t);
    let writes = aws_writes(&t.aws) + azure_writes(&t.azure);
    refused(&run(&["down", "-c"]));
    assert_eq!(
        aws_writes(&t.aws) + azure_writes(&t.azure),
        writes,
        "down wrote without --yes"
    );
    converged_once(&t);
    expect_ok(&run(&["down", "--yes", "-c"]));
    assert_eq!(aws_live(&t.aws, "vpn_connections"), 0);
}

/// Whatever RUST_LOG says, no key and no token reaches stderr: a directive more specific than
/// the CLI's cap (`azure_core::policies::transport=trace`) used to print whole request bodies
/// (`sharedKey`) and the `Authorization` header. The control: under that directive the scrubbed
/// lines are there, marked `<redacted>`, so the test sees the lines it guards.
#[test]
fn no_key_or_token_in_the_log_whatever_rust_log_says() {
    let dir = scratch("redact");
    let t = twins(&dir);
    let keys = ["LogKeyOne_1234", "LogKeyTwo_5678"];
    let config = dir.join("keys.toml");
    let text = std::fs::read_to_string(&t.config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}[tunnels]\npreshared_keys = [\"{}\", \"{}\"]\n",
            keys[0], keys[1]
        ),
    )
    .unwrap();
    let directives = [
        "azure_core::policies::transport=trace",
        "trace",
        "azure_core=trace,aws_smithy_runtime=trace,aws_smithy_runtime_api=trace,hyper=trace,reqwest=trace,dxvpn_azure=trace,dxvpn_aws=trace",
    ];
    for (i, directive) in directives.iter().enumerate() {
        let command = if i % 2 == 0 { "up" } else { "down" };
        let mut cmd = dxvpn();
        cmd.env("RUST_LOG", directive)
            .args([command, "--yes", "-c"])
            .arg(&config);
        if command == "up" {
            cmd.args(["--wait", "0"]);
        }
        let out = cmd.output().unwrap();
        expect_ok(&out);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in keys.iter().copied().chain(["Bearer dxvpn-lab"]) {
            assert!(
                !printed.contains(secret),
                "{directive}: {secret} in the log"
            );
        }
        if i == 0 {
            assert!(
                printed.contains("<redacted>"),
                "{directive}: nothing was scrubbed"
            );
        }
    }
    expect_ok(
        &dxvpn()
            .args(["down", "--yes", "-c"])
            .arg(&config)
            .output()
            .unwrap(),
    );
}
