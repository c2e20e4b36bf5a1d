//! `dxvpn metrics`: the Prometheus exporter of `dxvpn-metrics` on an address, until Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use dxvpn_metrics::Exporter;

use crate::deploy::{open, runtime};
use crate::shared::{ConfigArg, EXIT_BAD_INPUT, Output, shutdown_signal};

#[derive(Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address and port to serve `/metrics` on (0.0.0.0:9475 for every interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9475")]
    listen: SocketAddr,
    /// Seconds a reading of both clouds is reused, however many scrapers ask (each reading
    /// makes about 6 read calls per cloud); 0 reads on every scrape.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    max_age: u64,
}

pub(crate) fn main(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let (plan, deployer) = match open(&args.config, Output::Text).await? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
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
        let exporter = Arc::new(Exporter::new(
            plan,
            deployer,
            Duration::from_secs(args.max_age),
        ));
        dxvpn_metrics::serve(exporter, listener, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}
