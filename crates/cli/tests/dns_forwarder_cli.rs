//! `dxvpn dns-forwarder` through the binary: bad input is exit 2 naming the field; a running
//! forwarder answers, re-reads its file on SIGHUP (a broken file is refused and the old one kept),
//! and exits 0 on SIGTERM.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dxvpn_dns::ResponseCode;

fn ask(server: SocketAddr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(dxvpn_dns::ask_a(server, name, Duration::from_secs(5)))
        .unwrap()
}

/// Starts the binary and reads the address from its banner.
fn forwarder(args: &[&str]) -> (Child, SocketAddr, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
        .arg("dns-forwarder")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = banner_address(&mut child);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, addr, stderr)
}

/// The address the forwarder's banner (its first line on stdout) names.
fn banner_address(child: &mut Child) -> SocketAddr {
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    banner
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn bad_input_is_exit_2_naming_the_field() {
    for (args, field) in [
        (vec!["--forward", "azure.internal"], "--forward[0]"),
        (
            vec!["--forward", "azure.internal=nope"],
            "forward[0].targets[0]",
        ),
        (vec!["--upstream", "x"], "upstream[0]"),
        (vec!["--config", "/nonexistent/forwarder.toml"], "--config"),
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin("dxvpn"))
            .arg("dns-forwarder")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(field) && stderr.contains("fix"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn answers_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("dxvpn-dnsfwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("forwarder.toml");
    let zone = |ip: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\n[[local]]\nzone = \"azure.internal\"\nrecords = {{ vm1 = \"{ip}\" }}\n"
        )
    };
    std::fs::write(&file, zone("10.1.1.10")).unwrap();
    let (azure, azure_addr, _azure_err) = forwarder(&["--config", file.to_str().unwrap()]);
    let target = format!("azure.internal={azure_addr}");
    let (aws, aws_addr, _aws_err) = forwarder(&["--listen", "127.0.0.1:0", "--forward", &target]);

    assert_eq!(
        ask(aws_addr, "vm1.azure.internal."),
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 1, 1, 10)])
    );

    // A broken file is refused on SIGHUP: the old answers stay.
    std::fs::write(&file, "[[local]]\nzone = \"-bad\"\n").unwrap();
    signal(&azure, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ask(azure_addr, "vm1.azure.internal.").1,
        vec![Ipv4Addr::new(10, 1, 1, 10)]
    );
    // A good one is taken, on the same address (queries straight at it: the other side caches).
    std::fs::write(&file, zone("10.1.1.20")).unwrap();
    signal(&azure, "HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ask(azure_addr, "vm1.azure.internal.").1 != vec![Ipv4Addr::new(10, 1, 1, 20)] {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for mut child in [aws, azure] {
        signal(&child, "TERM");
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// CPU time (user and system, in clock ticks) that process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Out of file descriptors, a failed accept is retried after a pause, not at once: the
/// forwarder under a low descriptor limit, with more TCP clients than it can take, stays nearly
/// idle. hickory's own accept loop retried at once and spun a core.
#[test]
fn out_of_file_descriptors_the_tcp_accept_backs_off() {
    let log = std::env::temp_dir().join(format!("dxvpn-fd-{}.log", std::process::id()));
    let mut child = Command::new("prlimit")
        .args(["--nofile=48:48", "--"])
        .arg(assert_cmd::cargo::cargo_bin("dxvpn"))
        .args([
            "dns-forwarder",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            "lab.test=127.0.0.1:9",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = banner_address(&mut child);
    // More clients than its descriptors allow (each takes three: the client, the relay, and
    // hickory's side of it), fewer than the connection cap.
    let held: Vec<std::net::TcpStream> = (0..40)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
    // 2 s of a spinning core are about 200 ticks.
    assert!(
        used < 50,
        "{used} clock ticks in 2 s: the accept loop spins"
    );
    // The control: the limit did bite, so the accept loop was tested where it used to spin.
    let said = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert!(
        said.contains("TCP accept failed"),
        "no accept failed: {said}"
    );
}
