//! `dxvpn`: the command line. Argument parsing and output only; the work is in the library crates.

mod deploy;
mod diff;
mod dns;
mod lab;
mod lab_serve;
mod metrics;
mod redact;
mod render;
mod shared;
mod status_view;
mod validate;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::shared::{ConfigArg, EXIT_FAILED, Output, is_broken_pipe, load_plan, report_problems};

#[derive(Parser)]
#[command(
    name = "dxvpn",
    version,
    about = "Join an AWS VPC and an Azure VNet into one private network: IPsec tunnels, BGP and cross-cloud DNS",
    after_help = "Examples:\n  dxvpn plan -c examples/high_availability.toml\n  dxvpn graph -c examples/development.toml > topology.mmd"
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config and show every resource, tunnel, DNS route and the monthly cost.
    #[command(
        after_help = "Examples:\n  dxvpn plan -c examples/development.toml\n  dxvpn plan -c dxvpn.toml --output json | jq '.tunnels[].inside_cidr'\n\nExit codes: 0 valid plan, 2 problems in the config (all listed, with a fix each)."
    )]
    Plan(PlanArgs),
    /// Print the topology as a Mermaid flowchart (tunnels, inside addresses, ASNs, DNS).
    #[command(
        after_help = "Examples:\n  dxvpn graph -c examples/high_availability.toml > topology.mmd\n  dxvpn graph -c dxvpn.toml | mmdc -i - -o topology.svg"
    )]
    Graph(ConfigArg),
    /// Print the strongSwan or BIRD configuration a Linux box needs to stand in for one side.
    #[command(
        after_help = "Examples:\n  dxvpn render -c examples/development.toml --side azure --format strongswan > swanctl.conf\n  dxvpn render -c examples/development.toml --side aws --format bird > bird.conf\n\nKeys are never printed: each tunnel's secret is a placeholder to replace."
    )]
    Render(RenderArgs),
    /// Create (or resume) the deployment in both clouds, then wait for tunnels and BGP.
    #[command(
        after_help = "Examples:\n  dxvpn up -c dxvpn-lab.toml --yes\n  dxvpn up -c dxvpn.toml --output json > up.json\n\nShows what will change (as `dxvpn diff`) and asks (on a terminal, unless --yes); replacing or deleting also needs --allow-replace. A re-run resumes and writes only what differs; a changed AWS tunnel is modified in place.\nExit codes: 0 done and every tunnel up, 1 failed or tunnels not up, 2 bad input."
    )]
    Up(deploy::UpArgs),
    /// Both clouds' view of every tunnel: AWS telemetry, Azure connection status, BGP peers, route propagation.
    #[command(
        after_help = "Examples:\n  dxvpn status -c dxvpn-lab.toml\n  dxvpn status -c dxvpn.toml --output json | jq '.status.tunnels[] | {key, up}'\n  dxvpn status -c dxvpn.toml --watch             # redrawn every 5 s, changes highlighted\n  dxvpn status -c dxvpn.toml --watch --output json >> status.ndjson   # a line per change\n\nExit codes: 0 every tunnel up, 1 otherwise, 2 bad input (with --watch: of the last reading)."
    )]
    Status(deploy::StatusArgs),
    /// Serve a Prometheus exporter: both clouds' reports of every tunnel, BGP session and route table, read on scrape.
    #[command(
        after_help = "Examples:\n  dxvpn metrics -c dxvpn.toml --listen 127.0.0.1:9475\n  curl -s localhost:9475/metrics | promtool check metrics\n\nPer tunnel and cloud: dxvpn_tunnel_up, dxvpn_tunnel_bgp_up, dxvpn_bgp_routes_received; per tunnel dxvpn_tunnel_healthy; per route table dxvpn_route_propagation; dxvpn_forwarder_host_up, dxvpn_read_success. Labels deployment, cloud, connection, tunnel, outside_ip. Needs read access only, like status.\nExit codes: 0 stopped by Ctrl-C or SIGTERM, 2 bad input (a config problem, an address it cannot listen on)."
    )]
    Metrics(metrics::MetricsArgs),
    /// What `up` would change: each resource created, unchanged, updated in place (which fields), replaced (and why) or deleted.
    #[command(
        after_help = "Examples:\n  dxvpn diff -c dxvpn.toml\n  dxvpn diff -c dxvpn.toml --output json | jq '.changes[] | select(.change != \"unchanged\")'\n\nSecrets are shown only as (changed). Exit codes: 0 nothing would change, 3 something would (gate CI on it), 1 failed, 2 bad input."
    )]
    Diff(diff::DiffArgs),
    /// Prove the clouds are joined: pings, DNS lookups and TCP connects across, both clouds' reports, and the cause of any failure.
    #[command(
        after_help = "Examples:\n  dxvpn validate -c dxvpn-lab.toml --from aws\n  dxvpn validate -c dxvpn-lab.toml --from azure --output json | jq '.findings'\n  dxvpn validate -c dxvpn.toml --target 10.51.1.4 --target vm1.azure.internal --target 10.51.1.4:22   # on an EC2 instance\n\nTargets come from [[validate.targets]] in the config (those in the other cloud) or --target. Pings need root, CAP_NET_RAW or net.ipv4.ping_group_range.\nExit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 bad input."
    )]
    Validate(validate::ValidateArgs),
    /// Delete everything this deployment created (tagged dxvpn:deployment), dependents first.
    #[command(
        after_help = "Examples:\n  dxvpn down -c dxvpn-lab.toml --yes\n\nResources given in the config (VPC, route tables, an existing gateway) are never deleted."
    )]
    Down(deploy::DownArgs),
    /// Run a conditional DNS forwarder: the other cloud's zones to its resolvers, the rest upstream.
    #[command(
        after_help = "Examples:\n  dxvpn dns-forwarder --listen 0.0.0.0:53 --forward azure.internal=10.1.0.4 --upstream 10.0.0.2\n  dxvpn dns-forwarder --config forwarder.toml   # kill -HUP re-reads it\n\nThe cheap DNS path of the development use case, on a small VM or container on each side. Exit codes: 0 stopped by SIGTERM or Ctrl-C, 2 bad input."
    )]
    DnsForwarder(dns::ForwarderArgs),
    /// Local twin clouds: the AWS and Azure VPN data plane in network namespaces.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Print the config file's JSON Schema (for editor completion), or its reference as Markdown.
    #[command(
        after_help = "Examples:\n  dxvpn schema > dxvpn.schema.json       # then in dxvpn.toml: #:schema ./dxvpn.schema.json (Taplo, Even Better TOML)\n  dxvpn schema --format markdown          # the table in docs/config-reference.md"
    )]
    Schema {
        /// What to print.
        #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
        format: SchemaFormat,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Examples:\n  dxvpn completions bash > /etc/bash_completion.d/dxvpn\n  dxvpn completions zsh > \"${fpath[1]}/_dxvpn\"\n  dxvpn completions fish > ~/.config/fish/completions/dxvpn.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct RenderArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Which cloud's side to stand in for.
    #[arg(long, value_enum)]
    side: SideArg,
    /// Which daemon's configuration.
    #[arg(long, value_enum)]
    format: FormatArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum SideArg {
    Aws,
    Azure,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// swanctl.conf for strongSwan.
    Strongswan,
    /// bird.conf for BIRD 2.
    Bird,
    /// The cloud-init user data `up` sends to the forwarder host it creates.
    Forwarder,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaFormat {
    /// JSON Schema (draft 2020-12).
    Json,
    /// A Markdown table of every key.
    Markdown,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match try_main(cli) {
        Ok(code) => code,
        // A closed pipe (`dxvpn plan | head`) is a normal way to stop reading.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = io::stdout().lock();
    match cli.command {
        Command::Plan(args) => {
            let plan = match load_plan(&args.config.config) {
                Ok(plan) => plan,
                Err(problems) => {
                    return report_problems(&args.config.config, &problems, args.output);
                }
            };
            match args.output {
                Output::Text => render::plan_text(&mut stdout, &plan)?,
                Output::Json => {
                    serde_json::to_writer_pretty(&mut stdout, &plan)?;
                    writeln!(stdout)?;
                }
            }
        }
        Command::Graph(args) => {
            let plan = match load_plan(&args.config) {
                Ok(plan) => plan,
                Err(problems) => return report_problems(&args.config, &problems, Output::Text),
            };
            stdout.write_all(dxvpn_plan::graph::mermaid(&plan).as_bytes())?;
        }
        Command::Render(args) => {
            let plan = match load_plan(&args.config.config) {
                Ok(plan) => plan,
                Err(problems) => {
                    return report_problems(&args.config.config, &problems, Output::Text);
                }
            };
            let side = match args.side {
                SideArg::Aws => dxvpn_plan::Cloud::Aws,
                SideArg::Azure => dxvpn_plan::Cloud::Azure,
            };
            let format = match args.format {
                FormatArg::Strongswan => dxvpn_plan::device::DeviceFormat::Strongswan,
                FormatArg::Bird => dxvpn_plan::device::DeviceFormat::Bird,
                FormatArg::Forwarder => {
                    let Some(text) = dxvpn_plan::forwarder_host::planned_user_data(&plan, side)
                    else {
                        let fix = match side {
                            dxvpn_plan::Cloud::Aws => {
                                "`up` creates one in forwarder mode (development) when Azure has zones to answer and dns.aws_forwarder_ip is not given"
                            }
                            dxvpn_plan::Cloud::Azure => {
                                "`up` creates one in forwarder mode (development) when AWS has zones to answer and dns.azure_forwarder_ip is not given"
                            }
                        };
                        eprintln!(
                            "error: --format forwarder: the plan creates no forwarder host on the {} side\n  fix: {fix}",
                            side.as_str()
                        );
                        return Ok(ExitCode::from(2));
                    };
                    stdout.write_all(text.as_bytes())?;
                    return Ok(ExitCode::SUCCESS);
                }
            };
            stdout.write_all(dxvpn_plan::device::device_config(&plan, side, format).as_bytes())?;
        }
        Command::Up(args) => {
            drop(stdout);
            return deploy::up(args);
        }
        Command::Status(args) => {
            drop(stdout);
            return deploy::status(args);
        }
        Command::Metrics(args) => {
            drop(stdout);
            return metrics::main(args);
        }
        Command::Diff(args) => {
            drop(stdout);
            return diff::diff(args);
        }
        Command::Validate(args) => {
            drop(stdout);
            return validate::validate(args);
        }
        Command::Down(args) => {
            drop(stdout);
            return deploy::down(args);
        }
        Command::DnsForwarder(args) => {
            drop(stdout);
            return dns::main(args);
        }
        Command::Lab(command) => {
            drop(stdout);
            return lab::main(command);
        }
        Command::Schema { format } => match format {
            SchemaFormat::Json => {
                serde_json::to_writer_pretty(&mut stdout, &dxvpn_plan::schema::config_schema())?;
                writeln!(stdout)?;
            }
            SchemaFormat::Markdown => {
                stdout.write_all(dxvpn_plan::schema::config_reference_markdown().as_bytes())?;
            }
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dxvpn", &mut stdout);
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // azure_core logs whole request bodies (pre-shared keys) there. A more specific RUST_LOG
    // directive wins over this cap; the redacting writer holds whatever it says.
    if let Ok(quiet) = format!("{}=info", dxvpn_azure::SECRET_BEARING_LOG_TARGET).parse() {
        filter = filter.add_directive(quiet);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| redact::RedactingStderr)
        .with_target(false)
        .init();
}
