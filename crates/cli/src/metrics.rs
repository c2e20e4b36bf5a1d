//! `dxvpn metrics`: the Prometheus exporter of `dxvpn-metrics` on an address, until Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use dxvpn_metrics::{Exporter, Prober, Probing};
use dxvpn_netlab::host_namespace;
use dxvpn_validate::probe::{Probe, ProbeOptions, run_probes};
use dxvpn_validate::targets::probes_for_targets;

use crate::deploy::{open, runtime};
use crate::shared::{ConfigArg, EXIT_BAD_INPUT, Output, shutdown_signal};
use crate::validate::Vantage;

#[derive(Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address and port to serve `/metrics` on (0.0.0.0:9475 for every interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9475")]
    listen: SocketAddr,
    /// Seconds a reading of both clouds is reused, however many scrapers ask (each reading
    /// makes about 7 read calls per cloud); 0 reads on every scrape.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    max_age: u64,
    /// Also ping the [[validate.targets]] in the other cloud on every reading, for RTT and loss:
    /// from `here` (the exporter runs on an instance in a cloud) or, in the lab, from the
    /// `aws` (VPC) or `azure` (VNet) host.
    #[arg(long, value_enum, value_name = "WHERE")]
    from: Option<Vantage>,
    /// With --from aws|azure: the lab run; needed only when several labs run.
    #[arg(long)]
    run: Option<String>,
}

pub(crate) fn main(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let (plan, deployer) = match open(&args.config, Output::Text).await? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
        };
        let probing = match args.from.map(|from| probing(&plan, from, args.run.clone())) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(code)) => return Ok(code),
        };
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!(
                    "error: --listen: cannot listen on {}: {e}\n  fix: pick an address of this machine and a free port, e.g. --listen 127.0.0.1:9476",
                    args.listen
                );
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
        };
        // Listening before the banner: a supervisor may scrape as soon as it reads it.
        eprintln!(
            "serving the metrics of deployment {} on http://{}/metrics (both clouds read at most every {} s); Ctrl-C or SIGTERM stops",
            plan.name,
            listener.local_addr()?,
            args.max_age
        );
        let mut exporter = Exporter::new(plan, deployer, Duration::from_secs(args.max_age));
        if let Some(probing) = probing {
            exporter = exporter.with_probing(probing);
        }
        let exporter = Arc::new(exporter);
        dxvpn_metrics::serve(exporter, listener, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The pings of `--from`: every [[validate.targets]] address in the other cloud, run here or
/// on a thread in the lab host's namespace. Exit code 2 when there is nothing to ping, or no
/// lab to run them in.
fn probing(
    plan: &dxvpn_plan::Plan,
    from: Vantage,
    run: Option<String>,
) -> Result<Probing, ExitCode> {
    let probes: Vec<Probe> = probes_for_targets(&plan.validate_targets, from.cloud(), None)
        .into_iter()
        .filter(|p| matches!(p, Probe::Ping { .. }))
        .collect();
    if probes.is_empty() {
        eprintln!(
            "error: --from: no [[validate.targets]] address to ping in the other cloud\n  fix: add [[validate.targets]] with cloud and address (what `dxvpn validate` pings), or leave --from out"
        );
        return Err(ExitCode::from(EXIT_BAD_INPUT));
    }
    let label = match from.cloud() {
        Some(dxvpn_plan::Cloud::Aws) => "aws",
        Some(dxvpn_plan::Cloud::Azure) => "azure",
        None => "here",
    }
    .to_owned();
    let prober = match from.lab_side() {
        None => dxvpn_metrics::here(),
        Some(side) => {
            let ns = host_namespace(&crate::lab::pick_run(run)?, side);
            let prober: Prober = Arc::new(move |probes: Vec<Probe>| {
                let ns = ns.clone();
                Box::pin(async move {
                    dxvpn_netlab::run::run_in_namespace(&ns, move || async move {
                        run_probes(&probes, &ProbeOptions::default()).await
                    })
                    .await
                    .map_err(|e| e.to_string())
                })
            });
            prober
        }
    };
    Ok(Probing {
        from: label,
        probes,
        prober,
    })
}
