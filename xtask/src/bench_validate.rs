//! `cargo xtask bench validate`: 200 checks (pings and the path MTU, lookups, TCP connects)
//! from the lab's VPC host to the VNet host, run by `dxvpn validate` at once, against the slowest single check
//! alone and against the guide's manual method, the same checks one after another with
//! `ping -c 3`, `nslookup` and a shell TCP connect.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LAB_PACKAGES, Result, dxvpn_binary, ensure_debian_packages, lab_prefix, lab_up, run};

/// Pings of the one address; its path MTU is measured once (one check).
const PINGS: usize = 79;
const LOOKUPS: usize = 80;
const CONNECTS: usize = 40;
const RUNS: usize = 5;
/// The lab's VNet host, its name, and the VPC resolver (see `dxvpn lab up`'s config).
const VNET_HOST: &str = "10.1.1.10";
const VNET_NAME: &str = "vm1.azure.internal";
const VPC_RESOLVER: &str = "10.0.0.2";

/// A JSON number field of `dxvpn validate --output json`.
fn number(json: &str, field: &str) -> Option<f64> {
    crate::json_field(json, field)?.parse().ok()
}

/// `dxvpn validate --from aws` with these targets: its elapsed ms, if every check passed.
fn validate(dxvpn: &str, config: &str, targets: &[String]) -> Result<f64> {
    let mut args = vec![
        "validate", "-c", config, "--from", "aws", "--output", "json",
    ];
    for t in targets {
        args.extend(["--target", t.as_str()]);
    }
    let out = Command::new(dxvpn)
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !json.contains("\"verdict\": \"pass\"") {
        return Err(format!("validate did not pass: {json}"));
    }
    number(&json, "elapsed_ms").ok_or_else(|| format!("no elapsed_ms in {json}"))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The same checks one after another, as a person would type them in the VPC host.
fn sequential(ns: &str) -> Result<Duration> {
    let in_ns = |args: &[&str]| -> Result {
        let status = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("{args:?} failed in {ns}"))
    };
    let start = Instant::now();
    // The path MTU by hand (lab-notes.md): the largest echo that fits, Don't Fragment set.
    in_ns(&[
        "ping", "-c", "1", "-M", "do", "-s", "1372", "-W", "2", VNET_HOST,
    ])?;
    for _ in 0..PINGS {
        // The same three echoes 200 ms apart that dxvpn sends (plain `ping -c 3` waits 1 s).
        in_ns(&["ping", "-c", "3", "-i", "0.2", "-W", "2", VNET_HOST])?;
    }
    for _ in 0..LOOKUPS {
        in_ns(&["nslookup", VNET_NAME, VPC_RESOLVER])?;
    }
    let connect = format!("exec 3<>/dev/tcp/{VNET_HOST}/53");
    for _ in 0..CONNECTS {
        in_ns(&["timeout", "2", "bash", "-c", &connect])?;
    }
    Ok(start.elapsed())
}

pub(crate) fn bench_validate() -> Result<String> {
    ensure_debian_packages(LAB_PACKAGES)?;
    let dxvpn = dxvpn_binary()?;
    let config = lab_up(&dxvpn, "high_availability", "dxvpn-bench-validate.toml")?;
    let result = measure(&dxvpn, &config);
    let _ = run(&dxvpn, &["down", "-c", &config, "--yes"], &[]);
    run(&dxvpn, &["lab", "down"], &[])?;
    let _ = std::fs::remove_file(&config);
    result
}

fn measure(dxvpn: &str, config: &str) -> Result<String> {
    run(dxvpn, &["up", "-c", config, "--yes"], &[])?;
    let prefix = lab_prefix(dxvpn)?;
    // Until the VNet fabric has learned the way back: the config's own targets pass.
    let mut last = Err(String::new());
    for _ in 0..120 {
        last = validate(dxvpn, config, &[]);
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last.map_err(|e| format!("the lab never validated: {e}"))?;
    let mut all: Vec<String> = Vec::new();
    all.extend((0..PINGS).map(|_| VNET_HOST.to_owned()));
    all.extend((0..LOOKUPS).map(|_| VNET_NAME.to_owned()));
    all.extend((0..CONNECTS).map(|_| format!("{VNET_HOST}:53")));
    let singles = [
        VNET_HOST.to_owned(),
        VNET_NAME.to_owned(),
        format!("{VNET_HOST}:53"),
    ];
    let mut slowest_single = 0.0f64;
    for single in &singles {
        let runs: Vec<f64> = (0..RUNS)
            .map(|_| validate(dxvpn, config, std::slice::from_ref(single)))
            .collect::<Result<_>>()?;
        slowest_single = slowest_single.max(median(runs));
    }
    let concurrent: Vec<f64> = (0..RUNS)
        .map(|_| validate(dxvpn, config, &all))
        .collect::<Result<_>>()?;
    let concurrent = median(concurrent);
    let sequential = sequential(&format!("{prefix}-aws-host"))?.as_secs_f64() * 1000.0;
    let total = PINGS + 1 + LOOKUPS + CONNECTS;
    Ok(format!(
        "## `dxvpn validate` (lab, high availability, from the VPC host)\n\n\
         {total} checks against the VNet host: {PINGS} pings (3 echoes 200 ms apart) and the path MTU measured once (an address is measured once however often it is given), {LOOKUPS} lookups of {VNET_NAME} at {VPC_RESOLVER}, {CONNECTS} TCP connects to {VNET_HOST}:53. `dxvpn validate -c F --from aws --target ...` (debug build; the time is the report's `elapsed_ms`, control-plane reads included, median of {RUNS} runs). Sequential: the same checks in the host's namespace with `ping -c 3 -i 0.2`, `ping -M do -s 1372` (the path MTU by hand: one size), `nslookup` and bash's `/dev/tcp`, one after another.\n\n\
         | measure | time |\n|---|---|\n\
         | slowest single target alone (an address: its ping and path MTU) | {slowest_single:.0} ms |\n\
         | {total} checks at once | {concurrent:.0} ms |\n\
         | the same {total} checks one after another (ping, ping -M do, nslookup, /dev/tcp) | {sequential:.0} ms |\n\n\
         {total} checks / slowest single check = **{:.2}** (goal under 1.5). Concurrent / sequential = **{:.3}**.\n",
        concurrent / slowest_single,
        concurrent / sequential,
    ))
}
