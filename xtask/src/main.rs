//! dxvpn's automation, run as `cargo xtask <task>`:
//!
//! - `test`: installs what the tests need (Node.js + npm, the pinned Mermaid parser,
//!   cargo-nextest) and runs every test of the workspace, doctests included, then `e2e`. The
//!   README's test command.
//! - `bench [plan|lab|up|validate|dns|seeds|pace]`: runs the benchmarks; with no name, all of them, written to
//!   BENCHMARKS.md.
//! - `demo [--use-case development|high_availability] [--keep]`: the README's demo command,
//!   the whole story on the lab with each command printed before it runs.
//! - `e2e`: the whole story as assertions for both use cases, secrets searched for in every
//!   output and lab file, the invalid-config corpus; ends with `e2e: N passed, N failed`.
//! - `lab ...`: `dxvpn lab ...` with the packages the lab needs installed first.

mod bench_dns;
mod bench_pace;
mod bench_validate;
mod demo;
mod e2e;
mod e2e_metrics;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("demo") => demo::demo(&args[1..]),
        Some("e2e") => e2e::e2e(),
        Some("lab") => lab(&args[1..]),
        _ => Err(
            "usage: cargo xtask test | bench [plan|lab|up|validate|dns|seeds|pace] | demo [--use-case development|high_availability] [--keep] | e2e | lab up|status|cut|restore|down ..."
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace this xtask was run from. Read at run time (cargo sets it for `cargo run`):
/// a binary built in a target directory shared by two checkouts may come from the other one.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.join("..")
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/dxvpn")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// A command for `program`. For a nested cargo, without the variables `cargo run` set for this
/// xtask (`CARGO_PKG_NAME=xtask`, ...): build scripts such as ring's rerun when they change, so
/// a build from here would otherwise rebuild half the tree that a plain `cargo build` made.
fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    if program == "cargo" {
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                ]
                .contains(&key.as_ref())
            {
                command.env_remove(key.as_ref());
            }
        }
    }
    command
}

/// Runs a command in the workspace root, echoing it first so the user can repeat it.
fn run(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let status = command(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v.as_os_str())))
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("`{program} {}` failed ({status})", args.join(" ")))
}

/// True when `program` is on PATH, or is an existing absolute path.
fn has(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// What the lab's data plane runs, and the Debian package that brings it.
const LAB_PACKAGES: &[(&str, &str)] = &[
    ("/usr/lib/ipsec/charon", "strongswan-charon"),
    ("swanctl", "strongswan-swanctl"),
    (
        "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
        "libcharon-extra-plugins",
    ),
    ("bird", "bird2"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("tcpdump", "tcpdump"),
    ("dig", "dnsutils"),
    // What the forwarder hosts `up` creates run (their cloud-init installs the same package).
    ("/usr/sbin/unbound", "unbound"),
];

/// Installs Debian packages that are missing (CI and fresh machines run as root).
fn ensure_debian_packages(programs_and_packages: &[(&str, &str)]) -> Result {
    let mut missing: Vec<&str> = programs_and_packages
        .iter()
        .filter(|(p, _)| !has(p))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    run("apt-get", &["update", "-q"], &[])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing);
    run("apt-get", &args, &[])
}

/// The pinned Mermaid parser in the cache, reinstalled when tests/mermaid/package.json changes.
fn ensure_mermaid() -> Result<PathBuf> {
    ensure_debian_packages(&[("node", "nodejs"), ("npm", "npm")])?;
    let dir = cache_dir().join("mermaid");
    let wanted =
        std::fs::read(root().join("tests/mermaid/package.json")).map_err(|e| e.to_string())?;
    let installed = std::fs::read(dir.join("package.json")).ok();
    if installed.as_deref() != Some(&wanted[..]) || !dir.join("node_modules/mermaid").is_dir() {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("package.json"), &wanted).map_err(|e| e.to_string())?;
        let prefix = dir.to_string_lossy().into_owned();
        run(
            "npm",
            &[
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
                &prefix,
            ],
            &[],
        )?;
    }
    Ok(dir)
}

/// A virtual environment in the cache with the pinned Python SDKs, reinstalled when
/// tests/python/requirements.txt changes; its interpreter.
fn ensure_python_sdks() -> Result<PathBuf> {
    let venv_works = || {
        command("python3")
            .args(["-m", "venv", "--help"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !venv_works() {
        // Debian keeps venv's ensurepip apart from python3.
        ensure_debian_packages(&[
            ("python3", "python3"),
            ("/usr/share/doc/python3-venv", "python3-venv"),
        ])?;
    }
    let dir = cache_dir().join("python-azure");
    let python = dir.join("bin/python");
    let wanted =
        std::fs::read(root().join("tests/python/requirements.txt")).map_err(|e| e.to_string())?;
    let marker = dir.join("requirements.txt");
    if std::fs::read(&marker).ok().as_deref() != Some(&wanted[..]) || !python.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.to_string_lossy().into_owned();
        run("python3", &["-m", "venv", &path], &[])?;
        let requirements = root().join("tests/python/requirements.txt");
        run(
            &python.to_string_lossy(),
            &[
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                &requirements.to_string_lossy(),
            ],
            &[],
        )?;
        std::fs::write(&marker, &wanted).map_err(|e| e.to_string())?;
    }
    Ok(python)
}

/// What the tests need beyond the lab: a real Prometheus to scrape `dxvpn metrics`.
const TEST_PACKAGES: &[(&str, &str)] = &[("prometheus", "prometheus"), ("promtool", "prometheus")];

fn test() -> Result {
    ensure_debian_packages(LAB_PACKAGES)?;
    ensure_debian_packages(TEST_PACKAGES)?;
    let mermaid = ensure_mermaid()?;
    let python = ensure_python_sdks()?;
    if !command("cargo")
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        run("cargo", &["install", "--locked", "cargo-nextest"], &[])?;
    }
    let envs = [
        ("DXVPN_MERMAID_DIR", mermaid.as_path()),
        ("DXVPN_PYTHON", python.as_path()),
    ];
    run("cargo", &["test", "--doc", "--workspace"], &envs)?;
    let tests = run(
        "cargo",
        &["nextest", "run", "--workspace", "--no-fail-fast"],
        &envs,
    );
    // Then the whole story through the binary; last, so that its summary is the closing line.
    let story = e2e::e2e();
    tests.and(story)
}

fn dxvpn_binary() -> Result<String> {
    run("cargo", &["build", "-q", "-p", "dxvpn"], &[])?;
    Ok(target_dir()
        .join("debug/dxvpn")
        .to_string_lossy()
        .into_owned())
}

fn lab(args: &[String]) -> Result {
    ensure_debian_packages(LAB_PACKAGES)?;
    let dxvpn = dxvpn_binary()?;
    let mut full = vec!["lab"];
    full.extend(args.iter().map(String::as_str));
    run(&dxvpn, &full, &[])
}

/// The running lab's data-plane run prefix, from `dxvpn lab status`.
fn lab_prefix(dxvpn: &str) -> Result<String> {
    let out = Command::new(dxvpn)
        .args(["lab", "status", "--output", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    json_field(&text, "prefix")
        .map(str::to_owned)
        .ok_or_else(|| format!("lab status printed no prefix: {text}"))
}

/// The value of the first `"key":` in JSON text: a string without its quotes, or a number's
/// text. Read without a JSON parser: the xtask has no dependencies.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = json.split_once(&format!("\"{key}\":"))?.1.trim_start();
    match rest.strip_prefix('"') {
        Some(string) => string.split('"').next(),
        None => rest.split([',', '\n', '}']).next().map(str::trim),
    }
}

/// Network namespaces whose names start with `prefix`.
fn namespaces(prefix: &str) -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| n.starts_with(prefix))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `dxvpn lab up --use-case USE_CASE` (both twins in the background, and the data plane that
/// follows them), its config written to a temporary file named `file`, whose path is returned.
fn lab_up(dxvpn: &str, use_case: &str, file: &str) -> Result<String> {
    let config = std::env::temp_dir().join(file);
    let config = config.to_string_lossy().into_owned();
    run(
        dxvpn,
        &["lab", "up", "--use-case", use_case, "--config-out", &config],
        &[],
    )?;
    Ok(config)
}

/// Sorted durations -> (median, 99th percentile).
fn median_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn bench(which: Option<&str>) -> Result {
    let mut sections = Vec::new();
    match which {
        None => {
            sections.push(bench_plan()?);
            sections.push(bench_lab()?);
            sections.push(bench_up()?);
            sections.push(bench_validate::bench_validate()?);
            sections.push(bench_dns::bench_dns()?);
            sections.push(bench_seeds()?);
            if std::env::var_os("DXVPN_BASELINE").is_some() {
                sections.push(bench_pace::bench_pace()?);
            } else {
                eprintln!(
                    "bench pace skipped: it needs DXVPN_BASELINE (`cargo xtask bench pace` says how)"
                );
            }
        }
        Some("pace") => sections.push(bench_pace::bench_pace()?),
        Some("seeds") => sections.push(bench_seeds()?),
        Some("validate") => sections.push(bench_validate::bench_validate()?),
        Some("dns") => sections.push(bench_dns::bench_dns()?),
        Some("plan") => sections.push(bench_plan()?),
        Some("lab") => sections.push(bench_lab()?),
        Some("up") => sections.push(bench_up()?),
        Some(other) => {
            return Err(format!(
                "unknown benchmark {other:?}; available: plan, lab, up, validate, dns, seeds, pace"
            ));
        }
    }
    let date = Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let report = format!(
        "# Benchmarks\n\nProduced by `cargo xtask bench`; every figure comes from one run of that command.\n\nMachine: {}. Date: {date}.\n\n{}",
        machine(),
        sections.join("\n")
    );
    // Only a full run rewrites the file, so that it never mixes figures of different runs.
    if which.is_none() {
        std::fs::write(root().join("BENCHMARKS.md"), &report).map_err(|e| e.to_string())?;
    }
    print!("{report}");
    Ok(())
}

/// How many twin seeds `bench seeds` runs `up` and `down` over, in a row.
const SEEDS: u32 = 20;

/// `up` then `down` on both twins for [`SEEDS`] seeds of their undocumented choices in a row
/// (the test `up_and_down_converge_for_each_twin_seed`, which runs 2 in the suite).
fn bench_seeds() -> Result<String> {
    let seeds = SEEDS.to_string();
    let started = std::time::Instant::now();
    let status = command("cargo")
        .args([
            "test",
            "-q",
            "-p",
            "dxvpn-deploy",
            "--test",
            "twins",
            "--",
            "--exact",
            "up_and_down_converge_for_each_twin_seed",
        ])
        .env("DXVPN_SEEDS", &seeds)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`up` and `down` did not converge for every one of {SEEDS} seeds"
        ));
    }
    let converged = SEEDS;
    Ok(format!(
        "## Unkind twins: `up` and `down` over {SEEDS} seeds\n\n`cargo xtask bench seeds` (`DXVPN_SEEDS={SEEDS}`, seeds from 1000 or `DXVPN_TWIN_SEED`): high availability on both twins with their undocumented orders and choices drawn from each seed; one of everything and every tunnel on its planned inside CIDR after `up`, nothing after `down`.\n\n| seeds | converged in a row | wall time |\n|---|---|---|\n| {SEEDS} | {converged} | {:.0} s |\n",
        started.elapsed().as_secs_f64()
    ))
}

fn bench_plan() -> Result<String> {
    run("cargo", &["build", "--release", "-q", "-p", "dxvpn"], &[])?;
    let config_path = "examples/high_availability.toml";

    // Timed as whole processes of the release binary: the xtask itself is a debug build, so
    // timing the library in-process here would measure unoptimized code.
    let binary = target_dir().join("release/dxvpn");
    let time_runs = |args: &[&str]| -> Vec<Duration> {
        (0..100)
            .map(|_| {
                let start = Instant::now();
                let status = Command::new(&binary)
                    .args(args)
                    .current_dir(root())
                    .stdout(Stdio::null())
                    .status();
                let elapsed = start.elapsed();
                assert!(status.is_ok_and(|s| s.success()), "{args:?} failed");
                elapsed
            })
            .collect()
    };
    let (start_median, start_p99) = median_p99(time_runs(&["--version"]));
    let (cmd_median, cmd_p99) =
        median_p99(time_runs(&["plan", "-c", config_path, "--output", "json"]));
    let ratio = cmd_p99.as_secs_f64() / Duration::from_millis(50).as_secs_f64();
    Ok(format!(
        "## Plan latency (`dxvpn plan` on {config_path})\n\n\
         | measure | median | p99 |\n|---|---|---|\n\
         | process start alone: `dxvpn --version` (100 runs) | {:.2} ms | {:.2} ms |\n\
         | command: `dxvpn plan -c {config_path} --output json`, release build, whole process (100 runs) | {:.2} ms | {:.2} ms |\n\n\
         Target: under 50 ms. Command p99 / target = **{ratio:.3}**.\n",
        start_median.as_secs_f64() * 1e3,
        start_p99.as_secs_f64() * 1e3,
        cmd_median.as_secs_f64() * 1e3,
        cmd_p99.as_secs_f64() * 1e3,
    ))
}

/// `up` against both twins with the clouds' real durations / 120: makespan against the critical
/// path of the measured durations (the best any schedule could do) and a sequential apply.
fn bench_up() -> Result<String> {
    let factor = 1.0 / 120.0;
    let out = command("cargo")
        .args([
            "run",
            "-q",
            "-p",
            "dxvpn-deploy",
            "--example",
            "bench_up",
            "--",
        ])
        .arg(factor.to_string())
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err("the bench_up example failed".into());
    }
    let mut rows = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let field = |name: &str| -> f64 {
            json_field(line, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let use_case = json_field(line, "use_case").unwrap_or("?");
        rows.push_str(&format!(
            "| {use_case} | {:.1} s | {:.1} s | {:.1} s | **{:.3}** | **{:.2}** | {:.2} s |\n",
            field("makespan_s"),
            field("critical_path_s"),
            field("sequential_s"),
            field("makespan_over_critical_path"),
            field("makespan_over_sequential"),
            field("converged_rerun_s"),
        ));
    }
    Ok(format!(
        "## `dxvpn up` schedule (both twins, real cloud durations / 120)\n\n`cargo run -p dxvpn-deploy --example bench_up` (I/O-bound: a debug build): `up` with the real SDKs on fresh twins, as a DAG and then one resource at a time. The critical path is the longest chain of the measured durations through the plan's dependencies. Goal: makespan / critical path at most 1.05. The converged re-run is `up` again once everything exists (reads only; its time does not scale with the factor).\n\n| use case | makespan | critical path | sequential apply | makespan / critical path | makespan / sequential | converged re-run |\n|---|---|---|---|---|---|---|\n{rows}"
    ))
}

/// Lab data plane: time until every tunnel and BGP session is up, per shape, and the outage a
/// ping stream sees when a tunnel or an Azure instance is cut, against the BGP hold time.
fn bench_lab() -> Result<String> {
    ensure_debian_packages(LAB_PACKAGES)?;
    run("cargo", &["build", "--release", "-q", "-p", "dxvpn"], &[])?;
    let binary = target_dir().join("release/dxvpn");
    let mut rows = String::new();
    for use_case in ["development", "high_availability"] {
        let mut samples = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let out = Command::new(&binary)
                .args([
                    "lab",
                    "up",
                    "--data-plane-only",
                    "--use-case",
                    use_case,
                    "--output",
                    "json",
                ])
                .stderr(Stdio::null())
                .output()
                .map_err(|e| e.to_string())?;
            let elapsed = start.elapsed();
            let text = String::from_utf8_lossy(&out.stdout);
            let prefix = json_field(&text, "prefix")
                .ok_or("lab up printed no run prefix")?
                .to_owned();
            run(
                &binary.to_string_lossy(),
                &["lab", "down", "--run", &prefix],
                &[],
            )?;
            if !out.status.success() {
                return Err(format!("lab up --use-case {use_case} did not converge"));
            }
            samples.push(elapsed);
        }
        samples.sort();
        rows.push_str(&format!(
            "| `dxvpn lab up --use-case {use_case}` until all tunnels and BGP sessions are up (3 runs) | {:.1} s | {:.1} s |\n",
            samples[1].as_secs_f64(),
            samples[2].as_secs_f64()
        ));
    }
    // The failover figure comes from the HA test, which cuts whichever tunnel and instance
    // carries a 10-per-second ping and checks that traffic resumes.
    run(
        "cargo",
        &[
            "test",
            "--release",
            "-q",
            "-p",
            "dxvpn-netlab",
            "--test",
            "dataplane",
            "--",
            "--exact",
            "high_availability_survives_a_tunnel_cut_and_an_instance_cut",
        ],
        &[],
    )?;
    let figures = std::fs::read_to_string(target_dir().join("tmp/dxvpn-failover.txt"))
        .map_err(|e| e.to_string())?;
    let outages: Vec<f64> = figures
        .lines()
        .filter_map(|l| {
            l.split("outage ")
                .nth(1)?
                .trim_end_matches(" s")
                .parse()
                .ok()
        })
        .collect();
    let [tunnel, instance] = outages[..] else {
        return Err(format!("unexpected failover figures: {figures}"));
    };
    Ok(format!(
        "## Lab data plane\n\n| measure | median | max |\n|---|---|---|\n{rows}\n\
         ## High-availability failover in the lab\n\n\
         A ping every 100 ms from the VPC host to the VNet host; the tunnel (then the whole Azure\n\
         instance) that carries it is cut in the lab's internet. BGP hold time 30 s (AWS's).\n\n\
         | cut | outage | outage / hold time |\n|---|---|---|\n\
         | one tunnel | {tunnel:.1} s | {:.2} |\n\
         | one Azure instance (2 tunnels) | {instance:.1} s | {:.2} |\n",
        tunnel / 30.0,
        instance / 30.0
    ))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024 / 1024);
    format!("{cpu}, {cores} cores, {mem_gib} GiB")
}

#[cfg(test)]
mod tests {
    use super::json_field;

    #[test]
    fn json_field_reads_strings_and_numbers_pretty_or_compact() {
        let pretty = "{\n  \"aws_endpoint\": \"http://127.0.0.1:1\",\n  \"injected_before\": {\n    \"aws\": 34,\n    \"azure\": 42\n  }\n}";
        assert_eq!(json_field(pretty, "aws"), Some("34"));
        assert_eq!(json_field(pretty, "azure"), Some("42"));
        assert_eq!(
            json_field(pretty, "aws_endpoint"),
            Some("http://127.0.0.1:1")
        );
        let compact = r#"{"use_case":"development","makespan_s":21.1}"#;
        assert_eq!(json_field(compact, "use_case"), Some("development"));
        assert_eq!(json_field(compact, "makespan_s"), Some("21.1"));
        assert_eq!(json_field(compact, "prefix"), None);
    }
}
