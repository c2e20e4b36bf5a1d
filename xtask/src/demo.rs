//! `cargo xtask demo`: dxvpn's whole job on one machine, as a story a user can repeat by hand.
//! Each step says what it shows, then prints the command and runs it: plan, the lab, `up` with
//! progress, both clouds' status, validation from each cloud, a tunnel cut and validation again
//! (green, with redundancy lost), `down`, and the lab stopped (or kept, with `--keep`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LAB_PACKAGES, Result, dxvpn_binary, ensure_debian_packages, lab_up, run};

/// How long BGP may take to move traffic off a cut tunnel (AWS's hold time is 30 s).
const FAILOVER: Duration = Duration::from_secs(90);

fn say(step: &str) {
    eprintln!("\n=== {step}");
}

struct Options {
    use_case: String,
    keep: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        use_case: "development".into(),
        keep: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keep" => options.keep = true,
            "--use-case" => match args.next().map(String::as_str) {
                Some(u @ ("development" | "high_availability")) => options.use_case = u.into(),
                other => {
                    return Err(format!(
                        "--use-case: {other:?} is not a use case; give development or high_availability"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: cargo xtask demo [--use-case development|high_availability] [--keep]"
                ));
            }
        }
    }
    Ok(options)
}

/// `dxvpn validate ... --output json` without printing: (exit code, JSON text).
fn validate_quietly(dxvpn: &str, config: &str, from: &str) -> Result<(i32, String)> {
    let out = Command::new(dxvpn)
        .args(["validate", "-c", config, "--from", from, "--output", "json"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// Waits (quietly) until validation from `from` meets `done`; the visible run comes after.
fn wait_for_validation(
    dxvpn: &str,
    config: &str,
    from: &str,
    done: impl Fn(i32, &str) -> bool,
) -> Result {
    let start = Instant::now();
    loop {
        let (code, json) = validate_quietly(dxvpn, config, from)?;
        if done(code, &json) {
            return Ok(());
        }
        if start.elapsed() > FAILOVER {
            return Err(format!("validation from {from} did not settle: {json}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub(crate) fn demo(args: &[String]) -> Result {
    let options = options(args)?;
    let use_case = options.use_case.as_str();
    say("Installing what the lab needs (strongSwan, BIRD, nftables, dig) and building dxvpn");
    ensure_debian_packages(LAB_PACKAGES)?;
    let dxvpn = dxvpn_binary()?;

    say(
        "1. The lab: AWS and Azure API twins in the background (a VPC and a VNet with a host each), and a data plane of real strongSwan IPsec, BIRD BGP and each cloud's DNS resolver in network namespaces that follows whatever the twins hold. It writes a config pointing at the twins.",
    );
    let config = lab_up(&dxvpn, use_case, &format!("dxvpn-demo-{use_case}.toml"))?;
    let story = story(&dxvpn, &config, use_case);
    if options.keep && story.is_ok() {
        say("The lab is still running. Try:");
        eprintln!(
            "  {dxvpn} validate -c {config} --from azure\n  {dxvpn} lab status                        # shows the run prefix <run>\n  ip netns exec <run>-aws-host ping 10.1.1.10\n  {dxvpn} lab cut --tunnel c1t1; {dxvpn} lab restore\n  {dxvpn} down -c {config} --yes && {dxvpn} lab down   # when done"
        );
        return Ok(());
    }
    say("8. Stopping the lab: its daemons by pid, then its namespaces.");
    // The lab comes down whatever happened in the story.
    let stopped = run(&dxvpn, &["lab", "down"], &[]);
    story.and(stopped)
}

fn story(dxvpn: &str, config: &str, use_case: &str) -> Result {
    say(&format!(
        "2. The plan for this {use_case} config: every resource of both clouds, the tunnels, DNS and the monthly cost. Nothing is created yet."
    ));
    run(dxvpn, &["plan", "-c", config], &[])?;

    say(
        "3. `dxvpn up`: the real AWS and Azure SDKs call the twins; each resource starts the moment its inputs exist, then it waits for every tunnel to be UP with BGP.",
    );
    run(dxvpn, &["up", "-c", config, "--yes"], &[])?;

    say(
        "4. Both clouds' view of every tunnel: AWS telemetry, Azure connection status, BGP peers, route propagation.",
    );
    run(dxvpn, &["status", "-c", config], &[])?;

    say(
        "5. Proof: pings, DNS names and a TCP port across the tunnels, from the VPC host and from the VNet host.",
    );
    // The VNet fabric learns the way back a moment after the clouds report the tunnels up.
    for from in ["aws", "azure"] {
        wait_for_validation(dxvpn, config, from, |code, _| code == 0)?;
        run(dxvpn, &["validate", "-c", config, "--from", from], &[])?;
    }

    say(
        "6. A tunnel fails: c1t1 is cut in the lab's internet. BGP moves traffic to the other tunnel(s) within its hold time (30 s); validation stays green and warns that redundancy is lost.",
    );
    run(dxvpn, &["lab", "cut", "--tunnel", "c1t1"], &[])?;
    eprintln!("(waiting until both clouds report c1t1 down and traffic has moved)");
    wait_for_validation(dxvpn, config, "aws", |code, json| {
        code == 0 && json.contains("\"id\": \"redundancy-lost\"")
    })?;
    for from in ["aws", "azure"] {
        run(dxvpn, &["validate", "-c", config, "--from", from], &[])?;
    }
    run(dxvpn, &["lab", "restore"], &[])?;

    say(&format!(
        "7. `dxvpn down`: everything the {use_case} deployment created, dependents first; the twins are back at their seeds."
    ));
    run(dxvpn, &["down", "-c", config, "--yes"], &[])
}
