//! `dxvpn dns-forwarder`: the conditional DNS forwarder of the development use case.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dxvpn_dns::{ForwardZone, Forwarder, ForwarderConfig};

use crate::shared::EXIT_BAD_INPUT;

#[derive(Args)]
pub(crate) struct ForwarderArgs {
    /// Configuration file (TOML: listen, upstream, timeout_ms, [[forward]] zone/targets,
    /// [[local]] zone/records); re-read on SIGHUP.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to answer on (UDP and TCP); overrides the file's.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// A zone and its targets, e.g. azure.internal=10.1.0.4,10.1.0.5 (repeatable).
    #[arg(long, value_name = "ZONE=IP[,IP]")]
    forward: Vec<String>,
    /// Where every other name goes, e.g. 10.0.0.2 (repeatable).
    #[arg(long, value_name = "IP[:PORT]")]
    upstream: Vec<String>,
    /// A network to answer besides loopback, e.g. the VPC's 10.0.0.0/16 (repeatable). Without
    /// any (here or in the file): the private ranges 10/8, 172.16/12 and 192.168/16.
    #[arg(long, value_name = "CIDR")]
    allow: Vec<String>,
}

/// The configuration the arguments describe, or the message for a bad one.
fn configure(args: &ForwarderArgs) -> Result<ForwarderConfig, String> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| {
                    format!(
                        "--config: cannot read {}: {e}\n  fix: check the path, or give --forward and --upstream instead",
                        path.display()
                    )
                })?;
            ForwarderConfig::from_toml(&text)
                .map_err(|e| format!("--config {}: {e}", path.display()))?
        }
        None => ForwarderConfig::from_toml("").map_err(|e| e.to_string())?,
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    for (i, f) in args.forward.iter().enumerate() {
        let Some((zone, targets)) = f.split_once('=') else {
            return Err(format!(
                "--forward[{i}]: `{f}` has no `=`\n  fix: write ZONE=IP[,IP], e.g. azure.internal=10.1.0.4"
            ));
        };
        config.forward.push(ForwardZone {
            zone: zone.to_owned(),
            targets: targets.split(',').map(str::to_owned).collect(),
        });
    }
    config.upstream.extend(args.upstream.iter().cloned());
    config.allow.extend(args.allow.iter().cloned());
    config.check().map_err(|e| e.to_string())?;
    Ok(config)
}

pub(crate) fn main(args: ForwarderArgs) -> anyhow::Result<ExitCode> {
    let config = match configure(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let forwarder = match Forwarder::start(&config).await {
            Ok(f) => f,
            Err(e @ dxvpn_dns::ForwarderError::Bind { .. }) => {
                eprintln!("error: {e}\n  fix: pick a free address with --listen (port 53 needs root)");
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
            Err(e) => return Err(e.into()),
        };
        // Listening before the banner: a supervisor may signal as soon as it reads it.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        println!(
            "dxvpn dns-forwarder on {} (udp and tcp): {} forwarded zones, {} local, {} upstreams",
            forwarder.addr,
            config.forward.len(),
            config.local.len(),
            config.upstream.len()
        );
        loop {
            tokio::select! {
                _ = interrupt.recv() => break,
                _ = term.recv() => break,
                _ = hup.recv() => match configure(&args) {
                    // The address stays; everything else follows the file.
                    Ok(fresh) => match forwarder.reload(&fresh) {
                        Ok(()) => eprintln!("reloaded: {} forwarded zones", fresh.forward.len()),
                        Err(e) => eprintln!("reload refused, still serving the old config: {e}"),
                    },
                    Err(message) => eprintln!("reload refused, still serving the old config: {message}"),
                },
            }
        }
        forwarder.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
