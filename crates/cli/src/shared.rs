//! What every command shares: exit codes, the output format, loading a config file into a plan,
//! and reporting its problems.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use dxvpn_plan::{Plan, Problems};

use crate::render;

/// Exit codes: 0 done, 1 failed, 2 bad input.
pub(crate) const EXIT_FAILED: u8 = 1;
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

#[derive(Args)]
pub(crate) struct ConfigArg {
    /// The dxvpn config file (TOML).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) config: PathBuf,
}

/// `--stats`: how many API calls the command took of each cloud, and how long it ran.
#[derive(Args, Clone, Copy)]
pub(crate) struct StatsArg {
    /// Also report the API calls each cloud took (every try, retries included) and the
    /// seconds the command ran: `stats` in JSON, a line on stderr in text.
    #[arg(long)]
    pub(crate) stats: bool,
}

impl StatsArg {
    /// `value` (a JSON object) with `stats` added when asked; in text, the line is printed.
    pub(crate) fn add(
        self,
        mut value: serde_json::Value,
        calls: dxvpn_deploy::CallCounts,
        started: std::time::Instant,
        output: Output,
    ) -> serde_json::Value {
        if !self.stats {
            return value;
        }
        let seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        match output {
            Output::Json => {
                if let serde_json::Value::Object(map) = &mut value {
                    map.insert(
                        "stats".into(),
                        serde_json::json!({"calls": calls, "seconds": seconds}),
                    );
                }
            }
            Output::Text => eprintln!(
                "stats: {} AWS calls, {} Azure calls, {seconds:.3} s",
                calls.aws, calls.azure
            ),
        }
        value
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// For people.
    Text,
    /// For programs: one JSON document on stdout.
    Json,
}

/// Reads and plans a config file; an unreadable file is a problem with the input too.
pub(crate) fn load_plan(path: &Path) -> Result<Plan, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut problems = Problems::default();
        problems.errors.push(dxvpn_plan::Problem {
            path: "--config".into(),
            rule: "config-readable",
            message: format!("cannot read {}: {e}", path.display()),
            hint: "check the path; examples/development.toml is a starting point".into(),
        });
        problems
    })?;
    tracing::debug!(path = %path.display(), bytes = text.len(), "planning");
    dxvpn_plan::plan_from_toml(&text)
}

pub(crate) fn report_problems(
    path: &Path,
    problems: &Problems,
    output: Output,
) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => {
            let mut stdout = io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, problems)?;
            writeln!(stdout)?;
        }
        Output::Text => render::problems_text(&mut io::stderr().lock(), path, problems)?,
    }
    Ok(ExitCode::from(EXIT_BAD_INPUT))
}

pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Completes on Ctrl-C or SIGTERM, the two ways a long-running command is stopped.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut interrupt)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        // No signal handler (never on Linux): run until killed.
        _ => std::future::pending().await,
    }
}
