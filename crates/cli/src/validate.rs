//! `dxvpn validate`: pings, lookups and TCP connects across the clouds, both clouds' reports,
//! and what is wrong when something fails.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use dxvpn_deploy::{CallCounts, Deployer};
use dxvpn_netlab::{Side, host_namespace};
use dxvpn_plan::{Cloud, Plan};
use dxvpn_validate::probe::{Probe, ProbeOptions, run_probes};
use dxvpn_validate::targets::{
    default_dns_server, parse_target, probes_for_forwarder_hosts, probes_for_targets,
};
use dxvpn_validate::{ControlFacts, Report, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::shared::{
    ConfigArg, EXIT_BAD_INPUT, EXIT_FAILED, Output, StatsArg, load_plan, report_problems,
};

#[derive(Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Where the checks run: `here` (this machine: an EC2 instance or an Azure VM), or in the
    /// lab, `aws` (the VPC host) or `azure` (the VNet host).
    #[arg(long, value_enum, default_value_t = Vantage::Here)]
    from: Vantage,
    /// Check this instead of [[validate.targets]]: IP (ping and path MTU), IP:PORT (TCP
    /// connect) or a DNS name (lookup); repeat for more.
    #[arg(long = "target", value_name = "IP|IP:PORT|NAME")]
    targets: Vec<String>,
    /// The DNS server to ask (default: the VPC resolver from aws, 168.63.129.16 from azure,
    /// this machine's resolver configuration from here).
    #[arg(long, value_name = "IP[:PORT]")]
    dns_server: Option<String>,
    /// How long one echo reply, DNS answer or TCP handshake may take (e.g. 2s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Echo requests per ping, 200 ms apart.
    #[arg(long, default_value_t = 3)]
    count: u16,
    /// With --from aws|azure: the lab run; needed only when several labs run.
    #[arg(long)]
    run: Option<String>,
    #[command(flatten)]
    stats: StatsArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Vantage {
    /// This machine.
    Here,
    /// The lab's VPC host.
    Aws,
    /// The lab's VNet host.
    Azure,
}

impl Vantage {
    pub(crate) fn cloud(self) -> Option<Cloud> {
        match self {
            Vantage::Here => None,
            Vantage::Aws => Some(Cloud::Aws),
            Vantage::Azure => Some(Cloud::Azure),
        }
    }

    /// The lab namespace that plays this side's host.
    /// The lab host the probes run on, if not here.
    pub(crate) fn lab_side(self) -> Option<Side> {
        match self {
            Vantage::Here => None,
            Vantage::Aws => Some(Side::Aws),
            Vantage::Azure => Some(Side::Azure),
        }
    }
}

fn bad_input(message: &str, fix: &str) -> ExitCode {
    eprintln!("error: {message}\n  fix: {fix}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// The probes to run, or the exit code of bad input.
fn probes(args: &ValidateArgs, plan: &Plan) -> Result<Vec<Probe>, ExitCode> {
    let from = args.from.cloud();
    let dns_server = match &args.dns_server {
        None => default_dns_server(plan, from),
        Some(text) => match text
            .parse::<SocketAddr>()
            .or_else(|_| text.parse().map(|ip| SocketAddr::new(ip, 53)))
        {
            Ok(addr) => Some(addr),
            Err(_) => {
                return Err(bad_input(
                    &format!("--dns-server: `{text}` is not an IP address or IP:PORT"),
                    "give the resolver's address, e.g. --dns-server 10.0.0.2",
                ));
            }
        },
    };
    if !args.targets.is_empty() {
        return args
            .targets
            .iter()
            .map(|t| parse_target(t, dns_server))
            .collect::<Result<Vec<Probe>, _>>()
            // An address is checked as a config target is: pinged, and its path MTU measured.
            .map(dxvpn_validate::targets::with_path_mtu)
            .map_err(|e| {
                bad_input(
                    &format!("--target: {e}"),
                    "write 10.1.1.10 (ping), 10.1.1.10:22 (TCP) or vm1.azure.internal (lookup)",
                )
            });
    }
    let mut probes = probes_for_targets(&plan.validate_targets, from, dns_server);
    // From inside a cloud, the other cloud's forwarder host is asked directly too.
    if let Some(from) = from
        && !probes.is_empty()
    {
        probes.extend(probes_for_forwarder_hosts(plan, from));
    }
    if probes.is_empty() {
        let other = match from {
            Some(Cloud::Aws) => "cloud = \"azure\"",
            Some(Cloud::Azure) => "cloud = \"aws\"",
            None => "cloud = \"aws\" or \"azure\"",
        };
        return Err(bad_input(
            "validate.targets: nothing to check from here: the config has no target in the other cloud",
            &format!(
                "add [[validate.targets]] with {other}, address = \"...\" (pinged), name = \"...\" (resolved) and tcp_ports = [...], or pass --target"
            ),
        ));
    }
    Ok(probes)
}

pub(crate) fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let plan = match load_plan(&args.config.config) {
        Ok(plan) => plan,
        Err(problems) => return report_problems(&args.config.config, &problems, args.output),
    };
    if args.count == 0 {
        return Ok(bad_input(
            "--count: 0 echo requests prove nothing",
            "use 1 or more (default 3)",
        ));
    }
    if args.timeout.is_zero() {
        return Ok(bad_input(
            "--timeout: a zero timeout fails every check",
            "use a few round trips or more, e.g. --timeout 2s",
        ));
    }
    let probes = match probes(&args, &plan) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let namespace = match args.from.lab_side() {
        None => None,
        // `pick_run` says why when there is no lab, or more than one.
        Some(side) => match crate::lab::pick_run(args.run.clone()) {
            Ok(run) => Some(host_namespace(&run, side)),
            Err(code) => return Ok(code),
        },
    };
    let options = ProbeOptions {
        count: args.count,
        timeout: args.timeout,
        ..ProbeOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let bar = spinner(args.output, probes.len(), args.from);
    let from = args.from.cloud();
    let started = Instant::now();
    let (report, calls) = runtime.block_on(async {
        let addresses = dxvpn_validate::targets::filtered_addresses(&plan, &probes);
        let control = async {
            match Deployer::connect(&plan).await {
                Ok(deployer) => {
                    let facts = ControlFacts::read(&deployer, &plan, &addresses).await;
                    (facts, deployer.calls())
                }
                Err(e) => (
                    ControlFacts {
                        status: Err(e.to_string()),
                        missing: Err(e.to_string()),
                        traffic: Vec::new(),
                        filters: Vec::new(),
                        millis: 0.0,
                    },
                    CallCounts::default(),
                ),
            }
        };
        let data = async {
            match &namespace {
                None => Ok(run_probes(&probes, &options).await),
                Some(ns) => {
                    let probes = probes.clone();
                    dxvpn_netlab::run::run_in_namespace(ns, move || async move {
                        run_probes(&probes, &options).await
                    })
                    .await
                    .map_err(|e| e.to_string())
                }
            }
        };
        let (results, (facts, calls)) = tokio::join!(data, control);
        let report = results.map(|r| {
            Report::assemble(
                &plan,
                from,
                r,
                &facts,
                started.elapsed().as_secs_f64() * 1000.0,
            )
        });
        (report, calls)
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: cannot run the checks from the lab's {} host: {e}\n  fix: the lab builds its hosts when `dxvpn up -c FILE` has created the gateways; run it first (`dxvpn lab status` shows the lab)",
                plan_side(args.from)
            );
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    let answer = args
        .stats
        .add(serde_json::to_value(&report)?, calls, started, args.output);
    match args.output {
        Output::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &answer)?;
            writeln!(out)?;
        }
        Output::Text => print_report(&report)?,
    }
    Ok(if report.verdict == Verdict::Fail {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn plan_side(from: Vantage) -> &'static str {
    match from {
        Vantage::Here => "here",
        Vantage::Aws => "aws",
        Vantage::Azure => "azure",
    }
}

fn spinner(output: Output, checks: usize, from: Vantage) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if output == Output::Text && std::io::stderr().is_terminal() {
        bar.set_message(format!(
            "{checks} checks from {} and both clouds' reports",
            plan_side(from)
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

fn print_report(report: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_header(["check", "target", "", "time", "evidence"]);
    for c in &report.checks {
        table.add_row([
            c.kind.to_owned(),
            c.target.clone(),
            c.verdict.word().to_owned(),
            format!("{:.0} ms", c.millis),
            c.evidence.clone(),
        ]);
    }
    writeln!(out, "{table}")?;
    for f in &report.findings {
        writeln!(
            out,
            "{} {}: {}\n  fix: {}",
            f.severity.word(),
            f.id,
            f.message,
            f.fix
        )?;
    }
    let counts = |v: Verdict| report.checks.iter().filter(|c| c.verdict == v).count();
    writeln!(
        out,
        "{}: {} passed, {} warned, {} failed, from {}, in {:.1} s",
        match report.verdict {
            Verdict::Pass => "connected",
            Verdict::Warn => "connected, with warnings",
            Verdict::Fail => "NOT connected",
        },
        counts(Verdict::Pass),
        counts(Verdict::Warn),
        counts(Verdict::Fail),
        report.from,
        report.elapsed_ms / 1000.0
    )?;
    Ok(())
}
