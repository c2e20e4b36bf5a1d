//! `dxvpn lab up | status | down`: the lab's data plane on this machine.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use dxvpn_lab::service::{self, ServiceError, SpawnRequest};
use dxvpn_netlab::run::LabRun;
use dxvpn_netlab::{DataPlane, DataPlaneStatus, Side, Topology, host_namespace};
use dxvpn_tunnel::UseCase;
use dxvpn_twin_kit::admin::AdminClient;
use dxvpn_twin_kit::faults::ChaosSetting;
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::shared::{EXIT_BAD_INPUT, EXIT_FAILED, Output};

/// How long `lab up` waits for every tunnel and BGP session.
const CONVERGE: Duration = Duration::from_secs(90);

#[derive(Subcommand)]
pub(crate) enum LabCommand {
    /// Start the whole lab in the background: both cloud twins, and a data plane that follows what they hold; writes a ready config.
    #[command(
        after_help = "Examples:\n  dxvpn lab up && dxvpn up -c dxvpn-lab.toml --yes\n  dxvpn lab up --use-case high_availability --config-out ha.toml --realistic\n  dxvpn lab up --data-plane-only --use-case high_availability   # only the data plane, from a fixed topology\n  dxvpn lab up --data-plane-only --topology lab-topology.toml --output json\n\nNeeds root and the Debian packages strongswan-charon strongswan-swanctl bird2 nftables iproute2."
    )]
    Up(UpArgs),
    /// Show the tunnels, BGP sessions and routes of a running lab, read from its daemons.
    #[command(
        after_help = "Examples:\n  dxvpn lab status\n  dxvpn lab status --run dxl1a2b3c --output json"
    )]
    Status(StatusArgs),
    /// Serve the twin clouds' APIs on this machine until Ctrl-C, for any client (the SDKs, the aws and az CLIs).
    #[command(
        after_help = "Examples:\n  dxvpn lab serve --aws 127.0.0.1:4566\n  dxvpn lab serve --azure 127.0.0.1:4567\n  dxvpn lab serve --aws 127.0.0.1:4566 --azure 127.0.0.1:4567 --scenario lab-scenario.toml\n  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url http://127.0.0.1:4566 --region eu-south-1 ec2 describe-vpcs\n  curl -H 'Authorization: Bearer x' 'http://127.0.0.1:4567/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/VNET?api-version=2024-03-01'\n\nThe AWS twin speaks the EC2 Query protocol for the VPN subset dxvpn uses; the Azure twin speaks Azure Resource Manager (Microsoft.Network 2024-03-01, DNS resolver 2022-07-01) and takes any bearer token. Both scale the clouds' real durations by --time-factor and dump their inventory at /_dxvpn/inventory.\n\nA scenario file has an [aws] table (region, vpc_cidr, subnet_cidrs) and an [azure] table (subscription_id, resource_group, location, vnet_name, vnet_cidr, subnets = [{ name, cidr }], optional existing_gateway = { name, active_active, asn })."
    )]
    Serve(crate::lab_serve::ServeArgs),
    /// Cut a tunnel or a whole Azure instance off the lab's internet, to watch failover, or
    /// black-hole large packets.
    #[command(
        after_help = "Examples:\n  dxvpn lab cut --tunnel c1t1\n  dxvpn lab cut --instance 2\n  dxvpn lab cut --black-hole-above 1300\n  dxvpn lab restore"
    )]
    Cut(CutArgs),
    /// Undo every cut.
    Restore(StatusArgs),
    /// Make both twins fail a share of calls at random, as a cloud does on a bad day: 5xx, throttling (with Retry-After) and connections dropped mid-answer, some after the call took effect.
    #[command(
        after_help = "Examples:\n  dxvpn lab chaos --rate 0.2 && dxvpn up -c dxvpn-lab.toml --yes && dxvpn down -c dxvpn-lab.toml --yes\n  dxvpn lab chaos --rate 0 --output json   # stop, and count what was injected\n\nA seed replays the same sequence of faults. Stopping (or changing) the chaos reports how many faults the setting before injected."
    )]
    Chaos(ChaosArgs),
    /// Stop a running lab: its daemons by pid, then its namespaces.
    #[command(after_help = "Examples:\n  dxvpn lab down\n  dxvpn lab down --all")]
    Down(DownArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum UseCaseArg {
    Development,
    /// Spelled as in the config file.
    #[value(name = "high_availability", alias = "high-availability")]
    HighAvailability,
}

#[derive(Args)]
pub(crate) struct UpArgs {
    /// The shape of the config written (with --data-plane-only: of the data plane built).
    #[arg(long, value_enum, default_value_t = UseCaseArg::Development, conflicts_with = "topology")]
    use_case: UseCaseArg,
    /// Build only the data plane from a fixed topology, in the foreground, without the twins.
    #[arg(long)]
    data_plane_only: bool,
    /// With --data-plane-only: a topology file (TOML: use_case, aws_asn, azure_asn, route_propagation, [[tunnels]] inside_cidr / psk).
    #[arg(long, value_name = "FILE", requires = "data_plane_only")]
    topology: Option<PathBuf>,
    /// Where to write the ready dxvpn config.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "dxvpn-lab.toml",
        conflicts_with = "data_plane_only"
    )]
    config_out: PathBuf,
    /// The deployment name in that config.
    #[arg(long, default_value = "dx-lab", conflicts_with = "data_plane_only")]
    name: String,
    /// Scenario file for the twins' seeds (see `dxvpn lab serve --help`).
    #[arg(long, value_name = "FILE", conflicts_with = "data_plane_only")]
    scenario: Option<PathBuf>,
    /// The clouds' real durations divided by 60 (a VPN gateway takes 40 s) instead of
    /// near-instant, and the twins at the clouds' pace (--cloud-pace).
    #[arg(long, conflicts_with = "data_plane_only")]
    realistic: bool,
    /// Each API call takes as long as the cloud's (reads 100-400 ms, writes longer) and the
    /// twins throttle as the clouds do (EC2's RequestLimitExceeded, ARM's 429).
    #[arg(long, conflicts_with = "data_plane_only")]
    cloud_pace: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    /// The run to show (a prefix such as dxl1a2b3c); needed only when several labs run.
    #[arg(long)]
    run: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

impl UseCaseArg {
    pub(crate) fn config_word(self) -> &'static str {
        match self {
            UseCaseArg::Development => "development",
            UseCaseArg::HighAvailability => "high_availability",
        }
    }
}

/// Time factor of `lab up`: fast by default, the clouds' durations / 60 with --realistic.
const FAST: f64 = 0.001;
const REALISTIC: f64 = 1.0 / 60.0;

#[derive(Args)]
pub(crate) struct CutArgs {
    /// The tunnel to cut, e.g. c1t1.
    #[arg(
        long,
        required_unless_present_any = ["instance", "black_hole_above"],
        conflicts_with_all = ["instance", "black_hole_above"]
    )]
    tunnel: Option<String>,
    /// The Azure gateway instance to cut, 1 or 2.
    #[arg(long, conflicts_with = "black_hole_above")]
    instance: Option<usize>,
    /// Instead of a cut: the AWS gateway drops every packet longer than this many bytes
    /// without "fragmentation needed", as a path with a smaller MTU that filters ICMP does.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(68..=1500))]
    black_hole_above: Option<u16>,
    /// The run; needed only when several labs run.
    #[arg(long)]
    run: Option<String>,
}

#[derive(Args)]
pub(crate) struct ChaosArgs {
    /// Share of calls that fail, 0 to 1 (0 stops the chaos).
    #[arg(long)]
    rate: f64,
    /// Seed of the random sequence, to replay a run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args)]
pub(crate) struct DownArgs {
    /// The run to stop; needed only when several labs run.
    #[arg(long, conflicts_with = "all")]
    run: Option<String>,
    /// Stop every lab on this machine.
    #[arg(long)]
    all: bool,
}

pub(crate) fn main(command: LabCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            LabCommand::Up(args) => up(args).await,
            LabCommand::Status(args) => status(args).await,
            LabCommand::Serve(args) => crate::lab_serve::serve(args).await,
            LabCommand::Cut(args) => cut(args).await,
            LabCommand::Restore(args) => restore(args).await,
            LabCommand::Chaos(args) => chaos(args).await,
            LabCommand::Down(args) => down(args).await,
        }
    })
}

fn progress() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Says `message` on the spinner, or as a plain line when stderr is not a terminal (once per
/// change, so that logs stay short).
fn say(bar: &ProgressBar, message: String) {
    if bar.is_hidden() && bar.message() != message {
        eprintln!("{message}");
    }
    bar.set_message(message);
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    if !args.data_plane_only {
        let request = SpawnRequest {
            program: std::env::current_exe()?,
            scenario: args.scenario,
            time_factor: if args.realistic { REALISTIC } else { FAST },
            cloud_pace: args.realistic || args.cloud_pace,
            config_out: args.config_out,
            use_case: args.use_case.config_word(),
            name: args.name,
        };
        return tokio::task::spawn_blocking(move || service_up(&request, args.output)).await?;
    }
    let topology = match &args.topology {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: --topology: cannot read {}: {e}", path.display());
                    return Ok(ExitCode::from(EXIT_BAD_INPUT));
                }
            };
            match Topology::from_toml(&text) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!(
                        "error: --topology {}: {e}\n  fix: see `dxvpn lab up --help` for the keys",
                        path.display()
                    );
                    return Ok(ExitCode::from(EXIT_BAD_INPUT));
                }
            }
        }
        None => Topology::for_use_case(match args.use_case {
            UseCaseArg::Development => UseCase::Development,
            UseCaseArg::HighAvailability => UseCase::HighAvailability,
        }),
    };
    let bar = progress();
    let started = Instant::now();
    say(
        &bar,
        format!(
            "building {} tunnel ends, gateways and hosts in network namespaces",
            topology.tunnels.len() * 2
        ),
    );
    // Ctrl-C drops the build, and dropping a half-built data plane removes it.
    let built = tokio::select! {
        built = build_and_wait(topology, &bar) => built,
        _ = tokio::signal::ctrl_c() => {
            bar.finish_and_clear();
            eprintln!("interrupted: the partial lab was removed");
            return Ok(ExitCode::from(130));
        }
    };
    bar.finish_and_clear();
    let (plane, status, converged) = built?;
    let prefix = plane.run().prefix().to_owned();
    let (vpc_host, vnet_host) = (plane.topology().aws.host_ip, plane.topology().azure.host_ip);
    plane.detach()?;
    print_status(&status, args.output)?;
    if args.output == Output::Text {
        let verdict = if converged { "ready" } else { "NOT converged" };
        println!(
            "\nlab {prefix} {verdict} in {:.1} s. Next:\n  ip netns exec {aws_host} ping {vnet_host}\n  ip netns exec {azure_host} ping {vpc_host}\n  dxvpn lab status\n  dxvpn lab down",
            started.elapsed().as_secs_f64(),
            aws_host = host_namespace(&prefix, Side::Aws),
            azure_host = host_namespace(&prefix, Side::Azure),
        );
    }
    Ok(if converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

async fn build_and_wait(
    topology: Topology,
    bar: &ProgressBar,
) -> anyhow::Result<(DataPlane, DataPlaneStatus, bool)> {
    let plane = DataPlane::build(topology).await?;
    let deadline = Instant::now() + CONVERGE;
    loop {
        let status = plane.status().await;
        let up = status.tunnels.iter().filter(|t| t.up()).count();
        say(
            bar,
            format!(
                "waiting for tunnels and BGP: {up}/{} up",
                status.tunnels.len()
            ),
        );
        if status.all_up() {
            return Ok((plane, status, true));
        }
        if Instant::now() > deadline {
            return Ok((plane, status, false));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The run to act on: the one given, or the only one running.
pub(crate) fn pick_run(given: Option<String>) -> Result<String, ExitCode> {
    if let Some(run) = given {
        return Ok(run);
    }
    let mut runs = LabRun::list();
    // With the background lab running, its data plane is the one meant.
    let served = service::served_runs(&runs);
    if !served.is_empty() {
        runs = served;
    }
    match runs.as_slice() {
        [only] => Ok(only.clone()),
        [] => {
            eprintln!("error: no lab is running\n  fix: start one with `dxvpn lab up`");
            Err(ExitCode::from(EXIT_FAILED))
        }
        many => {
            eprintln!(
                "error: --run: {} labs are running: {}\n  fix: name one with --run",
                many.len(),
                many.join(", ")
            );
            Err(ExitCode::from(EXIT_BAD_INPUT))
        }
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let run = match pick_run(args.run) {
        Ok(run) => run,
        Err(code) => return Ok(code),
    };
    let plane = DataPlane::attach(&run)?;
    let status = plane.status().await;
    plane.detach()?;
    print_status(&status, args.output)?;
    Ok(if status.all_up() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// `lab up`: starts the background lab and says how to use it.
fn service_up(request: &SpawnRequest, output: Output) -> anyhow::Result<ExitCode> {
    let (ready, took) = match service::spawn(request) {
        Ok(ready) => ready,
        Err(e @ ServiceError::AlreadyRunning(_)) => {
            eprintln!("error: {e}\n  fix: use it, or stop it with `dxvpn lab down`");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    let mut out = std::io::stdout().lock();
    if output == Output::Json {
        serde_json::to_writer_pretty(&mut out, &ready)?;
        writeln!(out)?;
    } else {
        let c = ready.config.display();
        writeln!(
            out,
            "lab ready in {:.1} s (pid {}): AWS twin {}, Azure twin {}, time factor {}, twin seed {} (DXVPN_TWIN_SEED replays it)\nconfig: {c}\nNext:\n  dxvpn plan -c {c}\n  dxvpn up -c {c} --yes\n  dxvpn status -c {c}\n  dxvpn lab status        # the data plane's daemons, once tunnels exist\n  ip netns exec <run>-aws-host dig @10.0.0.2 vm1.azure.internal   # DNS across, <run> from lab status\n  dxvpn down -c {c} --yes\n  dxvpn lab down",
            took.as_secs_f64(),
            ready.pid,
            ready.aws_endpoint,
            ready.azure_endpoint,
            ready.time_factor,
            ready.twin_seed,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn cut(args: CutArgs) -> anyhow::Result<ExitCode> {
    let run = match pick_run(args.run) {
        Ok(run) => run,
        Err(code) => return Ok(code),
    };
    let plane = DataPlane::attach(&run)?;
    if let Some(bytes) = args.black_hole_above {
        let result = plane.black_hole_above(bytes).await;
        plane.detach()?;
        result?;
        eprintln!(
            "packets over {bytes} bytes now vanish at the AWS gateway; `dxvpn validate` names it path-mtu. Undo with `dxvpn lab restore`."
        );
        return Ok(ExitCode::SUCCESS);
    }
    let result = match (&args.tunnel, args.instance) {
        (Some(key), _) if plane.topology().tunnels.iter().any(|t| &t.key == key) => plane
            .cut_tunnel(key)
            .await
            .map(|()| format!("tunnel {key}")),
        (None, Some(n)) if (1..=plane.topology().azure_instances()).contains(&n) => plane
            .cut_instance(n - 1)
            .await
            .map(|()| format!("Azure instance {n}")),
        _ => {
            let keys: Vec<&str> = plane
                .topology()
                .tunnels
                .iter()
                .map(|t| t.key.as_str())
                .collect();
            eprintln!(
                "error: --tunnel/--instance: no such tunnel or instance in lab {run}\n  fix: tunnels are {}, instances 1 to {}",
                keys.join(", "),
                plane.topology().azure_instances()
            );
            plane.detach()?;
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    plane.detach()?;
    eprintln!(
        "cut {}; BGP withdraws its routes within the hold time (30 s). Undo with `dxvpn lab restore`.",
        result?
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let run = match pick_run(args.run) {
        Ok(run) => run,
        Err(code) => return Ok(code),
    };
    let plane = DataPlane::attach(&run)?;
    let result = plane.restore().await;
    plane.detach()?;
    result?;
    eprintln!("every cut undone");
    Ok(ExitCode::SUCCESS)
}

async fn chaos(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.rate) {
        eprintln!(
            "error: --rate: {} is not a share between 0 and 1\n  fix: 0.2 fails one call in five; 0 stops the chaos",
            args.rate
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    // The twins live in the background lab's service, which outlasts any data plane.
    let (aws, azure) = match service::endpoints().as_slice() {
        [one] => one.clone(),
        [] => {
            eprintln!(
                "error: no background lab is running (chaos needs its twins)\n  fix: start one with `dxvpn lab up`"
            );
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        many => {
            eprintln!(
                "error: {} background labs are running; chaos would not know which\n  fix: stop the others with `dxvpn lab down --all` and start one with `dxvpn lab up`",
                many.len()
            );
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    let setting = ChaosSetting {
        rate: args.rate,
        seed: args.seed,
    };
    let mut before = serde_json::Map::new();
    for (cloud, endpoint) in [("aws", &aws), ("azure", &azure)] {
        let injected = AdminClient::new(endpoint.as_str())
            .set_chaos(setting)
            .await?;
        before.insert(cloud.to_owned(), injected.into());
    }
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "aws_endpoint": aws,
                "azure_endpoint": azure,
                "rate": args.rate,
                "seed": args.seed,
                "injected_before": before,
            }))?
        ),
        Output::Text => {
            if args.rate > 0.0 {
                eprintln!(
                    "chaos: {:.0}% of the calls to each twin now fail transiently (seed {}); stop with `dxvpn lab chaos --rate 0`",
                    args.rate * 100.0,
                    args.seed
                );
            } else {
                eprintln!("chaos stopped");
            }
            eprintln!(
                "faults injected by the setting before: {} AWS, {} Azure",
                before["aws"], before["azure"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    // The background lab removes its own data plane when it stops.
    let service = if args.run.is_none() {
        let report = tokio::task::spawn_blocking(service::stop_all).await?;
        for s in &report {
            if s.stopped {
                eprintln!("lab service {} stopped", s.pid);
            } else {
                eprintln!(
                    "error: lab service {} still runs after the wait; its record is kept\n  fix: run `dxvpn lab down` again, or `kill -KILL {}` (its namespaces go with the next lab)",
                    s.pid, s.pid
                );
            }
        }
        if report.iter().any(|s| !s.stopped) {
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        !report.is_empty()
    } else {
        false
    };
    if service && !args.all {
        return Ok(ExitCode::SUCCESS);
    }
    let runs = if args.all {
        LabRun::list()
    } else {
        match pick_run(args.run.clone()) {
            // Unless named, a run that another live process holds is that process's to stop.
            Ok(run) => match LabRun::owner_pid(&run) {
                Some(pid) if args.run.is_none() => {
                    eprintln!(
                        "error: lab {run} belongs to running process {pid} (a test, or `dxvpn lab serve`)\n  fix: stop that process, or name the run with --run {run}"
                    );
                    return Ok(ExitCode::from(EXIT_FAILED));
                }
                _ => vec![run],
            },
            Err(code) => return Ok(code),
        }
    };
    for run in runs {
        LabRun::open(&run)?.teardown().await;
        eprintln!("lab {run} stopped");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(status: &DataPlaneStatus, output: Output) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if output == Output::Json {
        serde_json::to_writer_pretty(&mut out, status)?;
        writeln!(out)?;
        return Ok(());
    }
    let mark = |ok: bool| if ok { "up" } else { "DOWN" };
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header([
        "tunnel",
        "ipsec aws",
        "ipsec azure",
        "bgp aws",
        "bgp azure",
        "routes aws/azure",
        "why",
    ]);
    for t in &status.tunnels {
        let aws = t.aws_ipsec.ike_established && t.aws_ipsec.child_installed;
        let azure = t.azure_ipsec.ike_established && t.azure_ipsec.child_installed;
        let why = t
            .aws_bgp
            .last_error
            .clone()
            .or_else(|| t.azure_bgp.last_error.clone())
            .unwrap_or_default();
        table.add_row([
            t.key.clone(),
            mark(aws).into(),
            mark(azure).into(),
            t.aws_bgp.state.clone(),
            t.azure_bgp.state.clone(),
            format!(
                "{}/{}",
                t.aws_bgp.routes_received, t.azure_bgp.routes_received
            ),
            why,
        ]);
    }
    writeln!(out, "lab {}\n{table}", status.prefix)?;
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_header(["router", "to", "next hops"]);
    for r in &status.routes {
        table.add_row([
            r.router.clone(),
            r.prefix.to_string(),
            r.next_hops.to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}
