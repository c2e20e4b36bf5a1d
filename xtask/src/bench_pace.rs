//! `cargo xtask bench pace`: the read-only commands at the clouds' pace (`dxvpn lab up
//! --cloud-pace`: every API call takes a drawn 100-400 ms or more, and the twins throttle as
//! the clouds do), for both use cases, side by side in one run against a baseline binary
//! (`DXVPN_BASELINE`: dxvpn built from an earlier commit, which read one resource at a time
//! with a call per role): wall time and API calls of a converged `up`, `status`, `diff` and
//! `validate` (its control plane against its probes). The calls are the twins' own counts
//! (answered and throttled), the same for both binaries.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{LAB_PACKAGES, Result, dxvpn_binary, ensure_debian_packages, json_field, run};

/// Runs of each command by each binary; the median is reported.
const RUNS: usize = 3;
const USE_CASES: [&str; 2] = ["development", "high_availability"];
/// How to build the baseline, for the error that asks for it.
const BASELINE_HOWTO: &str = "git worktree add /tmp/dxvpn-base 3acedc5 && cargo build --manifest-path /tmp/dxvpn-base/Cargo.toml --bin dxvpn --target-dir /tmp/dxvpn-base-target, then DXVPN_BASELINE=/tmp/dxvpn-base-target/debug/dxvpn";

/// One command's figures by one binary.
#[derive(Clone, Copy, Default)]
struct Figures {
    seconds: f64,
    calls: u64,
    /// `validate` only: its control plane's and its slowest probe's milliseconds.
    control_ms: f64,
    probes_ms: f64,
}

/// The sum of the numbers in the JSON object under `"key":` (the twins' `calls` and
/// `throttled`, flat maps of counts). Read without a JSON parser: the xtask has no dependencies.
fn sum_of(json: &str, key: &str) -> u64 {
    let Some(rest) = json.split_once(&format!("\"{key}\":")) else {
        return 0;
    };
    let Some(object) = rest.1.split_once('{').and_then(|(_, o)| o.split_once('}')) else {
        return 0;
    };
    object
        .0
        .split(',')
        .filter_map(|pair| pair.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum()
}

/// Calls a twin answered and refused so far.
fn twin_calls(endpoint: &str) -> Result<u64> {
    let out = Command::new("curl")
        .args(["-sf", &format!("{endpoint}/_dxvpn/inventory")])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{endpoint}: no inventory"));
    }
    Ok(sum_of(&json, "calls") + sum_of(&json, "throttled"))
}

/// Both twins' endpoints, from the lab's config.
fn endpoints(config: &str) -> Result<(String, String)> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{config}: {e}"))?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix('=')) // key = "..."
            .map(|v| v.trim().trim_matches('"').to_owned())
            .ok_or_else(|| format!("{config}: no {key}"))
    };
    Ok((value("endpoint_url")?, value("endpoint")?))
}

/// The milliseconds of every check of `kind` in a validate report.
fn check_millis(json: &str, kinds: &[&str]) -> Vec<f64> {
    json.split("\"kind\": \"")
        .skip(1)
        .filter(|part| kinds.iter().any(|k| part.starts_with(&format!("{k}\""))))
        .filter_map(|part| json_field(part, "millis")?.parse().ok())
        .collect()
}

/// Runs `dxvpn <args>` once: its wall time and the calls both twins counted meanwhile.
fn once(dxvpn: &str, args: &[&str], twins: &(String, String)) -> Result<(Figures, String)> {
    let before = twin_calls(&twins.0)? + twin_calls(&twins.1)?;
    let started = Instant::now();
    let out = Command::new(dxvpn)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let healthy = out.status.success() || (args[0] == "diff" && out.status.code() == Some(3));
    if !healthy {
        return Err(format!("`dxvpn {}` failed: {json}", args.join(" ")));
    }
    let calls = twin_calls(&twins.0)? + twin_calls(&twins.1)? - before;
    let mut figures = Figures {
        seconds,
        calls,
        ..Figures::default()
    };
    if args[0] == "validate" {
        figures.control_ms = check_millis(&json, &["resources"])
            .into_iter()
            .fold(0.0, f64::max);
        figures.probes_ms = check_millis(&json, &["ping", "path_mtu", "dns", "tcp"])
            .into_iter()
            .fold(0.0, f64::max);
    }
    Ok((figures, json))
}

/// The median run of `RUNS` (by wall time).
fn median(dxvpn: &str, args: &[&str], twins: &(String, String)) -> Result<Figures> {
    let mut runs: Vec<Figures> = (0..RUNS)
        .map(|_| once(dxvpn, args, twins).map(|(f, _)| f))
        .collect::<Result<_>>()?;
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    Ok(runs[runs.len() / 2])
}

pub(crate) fn bench_pace() -> Result<String> {
    let baseline = std::env::var("DXVPN_BASELINE").map_err(|_| {
        format!(
            "bench pace needs DXVPN_BASELINE, a dxvpn binary of an earlier commit: {BASELINE_HOWTO}"
        )
    })?;
    ensure_debian_packages(LAB_PACKAGES)?;
    let dxvpn = dxvpn_binary()?;
    let mut rows = String::new();
    let mut worst = (0.0f64, 0.0f64, 0.0f64, f64::MAX);
    for use_case in USE_CASES {
        let config = std::env::temp_dir().join(format!("dxvpn-bench-pace-{use_case}.toml"));
        let config = config.to_string_lossy().into_owned();
        run(
            &dxvpn,
            &[
                "lab",
                "up",
                "--cloud-pace",
                "--use-case",
                use_case,
                "--config-out",
                &config,
            ],
            &[],
        )?;
        let measured = measure(&baseline, &dxvpn, &config, use_case, &mut worst);
        let _ = run(&dxvpn, &["down", "-c", &config, "--yes"], &[]);
        run(&dxvpn, &["lab", "down"], &[])?;
        let _ = std::fs::remove_file(&config);
        rows.push_str(&measured?);
    }
    let (up, status, over, fewer) = worst;
    Ok(format!(
        "## At the clouds' pace: converged `up`, `status`, `diff`, `validate`\n\n\
         `DXVPN_BASELINE=... cargo xtask bench pace`: the lab with `--cloud-pace` (every API call takes a drawn time, reads 100-400 ms and writes 200-1000 ms, and both twins throttle with the clouds' documented buckets; docs/lab.md, \"Pace\"). Each command run {RUNS} times by the baseline (dxvpn 3acedc5: a call per role, one resource after another) and by this build, side by side on the same deployment, median by wall time (debug builds, whole process). Calls: both twins' counts of what the command sent, throttled calls included. `validate --from aws` with the config's targets: its control plane (`resources` check) against its slowest probe.\n\n\
         | use case | command | baseline | calls | now | calls | time now / baseline | calls baseline / now |\n|---|---|---|---|---|---|---|---|\n{rows}\n\
         Goals: converged `up` under 2 s (slowest: **{up:.2} s**), `status` under 1 s (slowest: **{status:.2} s**), `validate`'s control plane at most 0.3 s past its probes (worst: **{over:+.2} s**), at least 3 times fewer calls (fewest: **{fewer:.1}x**).\n"
    ))
}

fn measure(
    baseline: &str,
    dxvpn: &str,
    config: &str,
    use_case: &str,
    worst: &mut (f64, f64, f64, f64),
) -> Result<String> {
    run(dxvpn, &["up", "-c", config, "--yes"], &[])?;
    let twins = endpoints(config)?;
    // Until the data plane has converged: validate passes.
    let validate = [
        "validate", "-c", config, "--from", "aws", "--output", "json",
    ];
    let mut last = Err(String::new());
    for _ in 0..120 {
        last = once(dxvpn, &validate, &twins).map(drop);
        if last.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    last.map_err(|e| format!("the lab never validated: {e}"))?;
    let commands: [(&str, Vec<&str>); 4] = [
        ("up", vec!["up", "-c", config, "--yes", "--output", "json"]),
        ("status", vec!["status", "-c", config, "--output", "json"]),
        ("diff", vec!["diff", "-c", config, "--output", "json"]),
        ("validate", validate.to_vec()),
    ];
    let mut rows = String::new();
    for (name, args) in commands {
        let before = median(baseline, &args, &twins)?;
        let now = median(dxvpn, &args, &twins)?;
        let fewer = before.calls as f64 / now.calls.max(1) as f64;
        worst.3 = worst.3.min(fewer);
        match name {
            "up" => worst.0 = worst.0.max(now.seconds),
            "status" => worst.1 = worst.1.max(now.seconds),
            "validate" => worst.2 = worst.2.max((now.control_ms - now.probes_ms) / 1000.0),
            _ => {}
        }
        let detail = |f: &Figures| {
            if name == "validate" {
                format!(
                    "{:.2} s (control {:.0} ms, probes {:.0} ms)",
                    f.seconds, f.control_ms, f.probes_ms
                )
            } else {
                format!("{:.2} s", f.seconds)
            }
        };
        rows.push_str(&format!(
            "| {use_case} | {name} | {} | {} | {} | {} | **{:.2}** | **{fewer:.1}** |\n",
            detail(&before),
            before.calls,
            detail(&now),
            now.calls,
            now.seconds / before.seconds,
        ));
    }
    Ok(rows)
}
