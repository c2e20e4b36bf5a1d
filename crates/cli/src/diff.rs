//! `dxvpn diff`: what `up` would change, resource by resource, and the exit code CI gates on.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use dxvpn_deploy::{Change, ChangeKind, any_writes};
use serde_json::json;

use crate::deploy::{open, print_json, runtime};
use crate::shared::{ConfigArg, EXIT_FAILED, Output, StatsArg};

/// Something would change (as `terraform plan -detailed-exitcode`).
pub(crate) const EXIT_CHANGES: u8 = 3;

#[derive(Args)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    stats: StatsArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub(crate) fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let started = std::time::Instant::now();
        let (plan, deployer) = match open(&args.config, args.output).await? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
        };
        let changes = match deployer.diff(&plan).await {
            Ok(changes) => changes,
            Err(e) => {
                eprintln!("error: reading what exists: {e}");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        };
        let answer = json!({"changes": changes});
        let answer = args
            .stats
            .add(answer, deployer.calls(), started, args.output);
        match args.output {
            Output::Json => print_json(&answer)?,
            Output::Text => print_changes(&changes, true)?,
        }
        Ok(if any_writes(&changes) {
            ExitCode::from(EXIT_CHANGES)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn word(kind: ChangeKind) -> (&'static str, &'static str) {
    match kind {
        ChangeKind::Create => ("+", "create"),
        ChangeKind::Unchanged => (" ", "unchanged"),
        ChangeKind::Update => ("~", "update"),
        ChangeKind::Replace => ("-/+", "replace"),
        ChangeKind::Delete => ("-", "delete"),
        ChangeKind::Reference => (" ", "reference"),
        ChangeKind::Yours => (" ", "yours"),
    }
}

/// A count per kind, then every resource that changes with its fields and reason (with
/// `all`, the unchanged ones too).
pub(crate) fn print_changes(changes: &[Change], all: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let count = |k: ChangeKind| changes.iter().filter(|c| c.change == k).count();
    writeln!(
        out,
        "{} to create, {} to update in place, {} to replace, {} to delete, {} unchanged, {} referenced, {} yours to run (DNS forwarder hosts)",
        count(ChangeKind::Create),
        count(ChangeKind::Update),
        count(ChangeKind::Replace),
        count(ChangeKind::Delete),
        count(ChangeKind::Unchanged),
        count(ChangeKind::Reference),
        count(ChangeKind::Yours),
    )?;
    for c in changes.iter().filter(|c| all || c.change.writes()) {
        let (sign, what) = word(c.change);
        writeln!(out, "  {sign:>3} {:38} {:24} {what}", c.role, c.name)?;
        for f in &c.fields {
            writeln!(out, "        {}: {} -> {}", f.path, f.from, f.to)?;
        }
        if let Some(reason) = &c.reason {
            writeln!(out, "        because {reason}")?;
        }
    }
    Ok(())
}
