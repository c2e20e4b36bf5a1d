//! The status table (`dxvpn status`, and after `up`), and `dxvpn status --watch`: the table read
//! again and redrawn in place on a terminal, each cell that changed since the last read
//! highlighted; off a terminal, a new table (or with `--output json` a JSON line) each time
//! something changes.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Attribute, Cell, Color, Table};
use dxvpn_deploy::{Deployer, Status, TunnelHealth};
use dxvpn_plan::Plan;
use serde_json::json;

use crate::shared::{EXIT_FAILED, Output, shutdown_signal};

const HEADER: [&str; 8] = [
    "tunnel",
    "aws outside ip",
    "aws",
    "aws says",
    "azure",
    "bgp peer",
    "bgp",
    "routes aws/azure",
];

fn cells(t: &TunnelHealth) -> [String; 8] {
    [
        t.key.clone(),
        t.outside_ip.clone(),
        t.aws_status.clone(),
        t.aws_message.clone(),
        t.azure_status.clone(),
        t.bgp_neighbor.clone(),
        t.bgp_state.clone(),
        format!("{}/{}", t.aws_accepted_routes, t.bgp_routes_received),
    ]
}

/// The status as text: the tunnel table, then route propagation, the forwarder hosts and the
/// count of tunnels up. With `before`, each tunnel cell that differs from it is highlighted.
pub(crate) fn status_text(status: &Status, before: Option<&Status>) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(HEADER);
    for t in &status.tunnels {
        let old = before
            .and_then(|b| b.tunnels.iter().find(|o| o.key == t.key))
            .map(cells);
        table.add_row(cells(t).into_iter().enumerate().map(|(i, text)| {
            let changed = before.is_some() && old.as_ref().is_none_or(|o| o[i] != text);
            let cell = Cell::new(text);
            if changed {
                cell.add_attribute(Attribute::Bold).fg(Color::Yellow)
            } else {
                cell
            }
        }));
    }
    let mut out = format!("{table}\n");
    for p in &status.route_propagation {
        let _ = writeln!(
            out,
            "route table {}: {}",
            p.route_table_id,
            if p.propagates {
                "propagates the VGW's routes"
            } else {
                "does NOT propagate the VGW's routes"
            }
        );
    }
    if let Some(host) = &status.forwarder_host {
        let _ = match &host.instance {
            Some(i) => writeln!(
                out,
                "AWS forwarder host {} ({}): {}, instance profile {} (whether it answers DNS: `dxvpn validate --from azure`)",
                host.ip,
                i.id,
                i.state,
                i.instance_profile
                    .as_deref()
                    .and_then(|arn| arn.rsplit('/').next())
                    .unwrap_or("none")
            ),
            None => writeln!(
                out,
                "AWS forwarder host {}: MISSING (`dxvpn up` launches it)",
                host.ip
            ),
        };
    }
    if let Some(host) = &status.azure_forwarder_host {
        let _ = match &host.vm {
            Some(vm) => writeln!(
                out,
                "Azure forwarder VM {} ({}): {}, {} (whether it answers DNS: `dxvpn validate --from aws`)",
                host.ip,
                vm.name,
                vm.provisioning_state,
                vm.power_state.as_deref().unwrap_or("no power state")
            ),
            None => writeln!(
                out,
                "Azure forwarder VM {}: MISSING (`dxvpn up` creates it)",
                host.ip
            ),
        };
    }
    let up = status.tunnels.iter().filter(|t| t.up).count();
    let _ = writeln!(out, "{up}/{} tunnels up", status.tunnels.len());
    out
}

pub(crate) fn print_status(status: &Status) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(status_text(status, None).as_bytes())?;
    Ok(())
}

fn clock() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Reads the status every `every` until Ctrl-C or SIGTERM. Exit code as `status`: of the last
/// reading.
pub(crate) async fn watch(
    deployer: &Deployer,
    plan: &Plan,
    output: Output,
    every: Duration,
) -> anyhow::Result<ExitCode> {
    let term = console::Term::stdout();
    let redraw = output == Output::Text && std::io::stdout().is_terminal();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut last: Option<Status> = None;
    let mut drawn_lines = 0;
    let mut last_error = String::new();
    loop {
        match deployer.status(plan).await {
            Ok(status) => {
                let changed = last.as_ref().is_none_or(|l| {
                    serde_json::to_value(l).ok() != serde_json::to_value(&status).ok()
                });
                if redraw {
                    let text = format!(
                        "deployment {}, read at {} (every {} s; changes since the last read in yellow; Ctrl-C stops)\n{}",
                        plan.name,
                        clock(),
                        every.as_secs_f64(),
                        status_text(&status, last.as_ref())
                    );
                    term.clear_last_lines(drawn_lines)?;
                    term.write_str(&text)?;
                    drawn_lines = text.lines().count();
                } else if changed {
                    let mut out = std::io::stdout().lock();
                    match output {
                        Output::Json => writeln!(
                            out,
                            "{}",
                            json!({"at": clock(), "healthy": status.healthy(), "status": status})
                        )?,
                        Output::Text => {
                            write!(out, "-- {} --\n{}", clock(), status_text(&status, None))?
                        }
                    }
                    out.flush()?;
                }
                last_error.clear();
                last = Some(status);
            }
            Err(e) => {
                // Once per distinct error: a watch over a flaky link should not flood the log.
                let message = e.to_string();
                if message != last_error {
                    eprintln!("[{}] reading both clouds failed: {message}", clock());
                    last_error = message;
                }
            }
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    Ok(if last.as_ref().is_some_and(Status::healthy) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
