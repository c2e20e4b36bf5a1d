//! `dxvpn lab serve`: either twin or both on addresses given, or (`--bind`) both twins with
//! the data plane that follows them, the process `dxvpn lab up` starts in the background.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dxvpn_lab::service;

use crate::lab::UseCaseArg;
use crate::shared::{EXIT_BAD_INPUT, Output};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("twin").required(true).multiple(true).args(["aws", "azure"]))]
pub(crate) struct ServeArgs {
    /// Address for the AWS twin (EC2), e.g. 127.0.0.1:4566; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    aws: Option<std::net::SocketAddr>,
    /// Address for the Azure twin (Resource Manager), e.g. 127.0.0.1:4567; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    azure: Option<std::net::SocketAddr>,
    /// Scenario file (TOML with [aws] and [azure] tables); default a VPC 10.0.0.0/16 with two
    /// private subnets, and a resource group with a VNet 10.1.0.0/16 and a GatewaySubnet 10.1.255.0/27.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Multiplies the clouds' real durations (1 = as slow as the clouds, 0 = instant).
    #[arg(long, default_value_t = 0.01)]
    time_factor: f64,
    /// Each API call takes as long as the cloud's, and the twins throttle as the clouds do.
    #[arg(long)]
    cloud_pace: bool,
    /// Both twins, and a data plane that follows them (needs root; needs --aws and --azure).
    #[arg(long, requires_all = ["aws", "azure"])]
    bind: bool,
    /// With --bind: where to write the ready dxvpn config.
    #[arg(long, value_name = "FILE", requires = "bind")]
    config_out: Option<PathBuf>,
    /// With --bind: the config's use case.
    #[arg(long, value_enum, default_value_t = UseCaseArg::Development)]
    use_case: UseCaseArg,
    /// With --bind: the config's deployment name.
    #[arg(long, default_value = "dx-lab")]
    name: String,
    /// With --bind: a file to record the endpoints and pid in, once serving (`dxvpn lab up`).
    #[arg(long, value_name = "FILE", hide = true)]
    record: Option<PathBuf>,
    /// Output format of the banner.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// `lab serve --bind`: both twins with the binder until Ctrl-C or SIGTERM.
async fn serve_bound(bind: service::Bind) -> anyhow::Result<ExitCode> {
    let running = service::Service::start(bind).await?;
    let record = running.record();
    println!(
        "AWS twin {}, Azure twin {}; config {}; the data plane follows the twins. Ctrl-C stops it.",
        record.aws_endpoint,
        record.azure_endpoint,
        record.config.display()
    );
    running.run_until_signal().await;
    Ok(ExitCode::SUCCESS)
}

fn read_scenario(path: &std::path::Path) -> Result<dxvpn_lab::LabScenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    dxvpn_lab::LabScenario::from_toml(&text)
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let scenario = match &args.scenario {
        None => dxvpn_lab::LabScenario::default(),
        Some(path) => match read_scenario(path) {
            Ok(scenario) => scenario,
            Err(e) => {
                eprintln!(
                    "error: --scenario {}: {e}\n  fix: see `dxvpn lab serve --help` for the [aws] and [azure] keys",
                    path.display()
                );
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
        },
    };
    if !dxvpn_twin_kit::time_factor_ok(args.time_factor) {
        eprintln!(
            "error: --time-factor: {} is not a factor from 0 to {}\n  fix: 1 keeps the clouds' real durations, 0.01 makes them 100 times shorter",
            args.time_factor,
            dxvpn_twin_kit::TIME_FACTOR_MAX
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    if args.bind {
        let (Some(aws), Some(azure)) = (args.aws, args.azure) else {
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        };
        return serve_bound(service::Bind {
            aws,
            azure,
            scenario,
            time_factor: args.time_factor,
            cloud_pace: args.cloud_pace,
            record: args.record,
            config_out: args.config_out,
            use_case: args.use_case.config_word(),
            name: args.name,
        })
        .await;
    }
    let mut banner = serde_json::json!({});
    let mut text = String::new();
    let aws = match args.aws {
        Some(addr) => {
            let aws_scenario = scenario.aws.unwrap_or_default();
            let twin =
                dxvpn_twin_aws::AwsTwin::start(addr, &aws_scenario, args.time_factor).await?;
            if args.cloud_pace {
                twin.set_pace(dxvpn_twin_kit::pace::PaceSetting::realistic());
            }
            banner["aws"] = serde_json::json!({"endpoint": twin.endpoint, "region": aws_scenario.region, "seeded": twin.seeded});
            text.push_str(&format!(
                "AWS twin (EC2) at {} for region {}\n  VPC {} ({}), subnets {}, route tables {}\n  inventory: {}/_dxvpn/inventory\n",
                twin.endpoint,
                aws_scenario.region,
                twin.seeded.vpc_id,
                aws_scenario.vpc_cidr,
                twin.seeded.subnet_ids.join(", "),
                twin.seeded.route_table_ids.join(", "),
                twin.endpoint
            ));
            Some(twin)
        }
        None => None,
    };
    let azure = match args.azure {
        Some(addr) => {
            let azure_scenario = scenario.azure.unwrap_or_default();
            let twin =
                match dxvpn_twin_azure::AzureTwin::start(addr, &azure_scenario, args.time_factor)
                    .await
                {
                    Ok(twin) => twin,
                    Err(e @ dxvpn_twin_kit::TwinError::Scenario { .. }) => {
                        eprintln!(
                            "error: --scenario [azure]: {e}\n  fix: correct the seeded resources"
                        );
                        if let Some(aws) = aws {
                            aws.stop().await;
                        }
                        return Ok(ExitCode::from(EXIT_BAD_INPUT));
                    }
                    Err(e) => return Err(e.into()),
                };
            if args.cloud_pace {
                twin.set_pace(dxvpn_twin_kit::pace::PaceSetting::realistic());
            }
            banner["azure"] = serde_json::json!({"endpoint": twin.endpoint, "seeded": twin.seeded});
            text.push_str(&format!(
                "Azure twin (Resource Manager) at {}\n  subscription {}, resource group {}, location {}\n  VNet {} ({})\n",
                twin.endpoint,
                twin.seeded.subscription_id,
                twin.seeded.resource_group,
                twin.seeded.location,
                twin.seeded.vnet_id,
                azure_scenario.vnet_cidr,
            ));
            if let Some(gw) = &twin.seeded.existing_gateway_id {
                text.push_str(&format!("  existing VPN gateway {gw}\n"));
            }
            text.push_str(&format!(
                "  any bearer token is accepted; inventory: {}/_dxvpn/inventory\n",
                twin.endpoint
            ));
            Some(twin)
        }
        None => None,
    };
    // Listening for Ctrl-C before the banner: a client may signal as soon as it reads it.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut out = std::io::stdout().lock();
    if args.output == Output::Json {
        writeln!(out, "{banner}")?;
    } else {
        writeln!(out, "{text}Ctrl-C stops it.")?;
    }
    out.flush()?;
    drop(out);
    interrupt.recv().await;
    if let Some(twin) = aws {
        twin.stop().await;
    }
    if let Some(twin) = azure {
        twin.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}
