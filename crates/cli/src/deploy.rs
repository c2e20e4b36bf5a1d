//! `dxvpn up | status | down`: the deployment over both clouds, with progress and a tunnel table.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use dxvpn_deploy::{ChangeKind, Deployer, NodeState, Report, Status};
use dxvpn_plan::Plan;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::diff::print_changes;
use crate::shared::{
    ConfigArg, EXIT_BAD_INPUT, EXIT_FAILED, Output, StatsArg, load_plan, report_problems,
};
use crate::status_view::{print_status, watch};

#[derive(Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Apply without asking (asking happens only on a terminal).
    #[arg(long)]
    yes: bool,
    /// Also replace and delete what `dxvpn diff` lists so (a resource a cloud cannot change in
    /// place, or one the plan no longer has); without it `up` refuses such a change.
    #[arg(long)]
    allow_replace: bool,
    /// How long to wait for every tunnel to report UP with BGP connected, in seconds (0: do not wait).
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    wait: u64,
    #[command(flatten)]
    stats: StatsArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Keep reading: on a terminal the table is redrawn in place with each change highlighted;
    /// otherwise a new table (or JSON line) is printed whenever something changes. Ctrl-C stops.
    #[arg(long)]
    watch: bool,
    /// With --watch, seconds between readings (each reads both clouds: about 6 calls each).
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600), requires = "watch")]
    every: u64,
    #[command(flatten)]
    stats: StatsArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args)]
pub(crate) struct DownArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Delete without asking (asking happens only on a terminal).
    #[arg(long)]
    yes: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The plan and both clouds' clients, or the exit code of bad input.
pub(crate) async fn open(
    config: &ConfigArg,
    output: Output,
) -> anyhow::Result<Result<(Arc<Plan>, Deployer), ExitCode>> {
    let plan = match load_plan(&config.config) {
        Ok(plan) => plan,
        Err(problems) => return Ok(Err(report_problems(&config.config, &problems, output)?)),
    };
    let deployer = match Deployer::connect(&plan).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "error: {e}\n  fix: sign in (az login, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET), or set azure.endpoint for the lab"
            );
            return Ok(Err(ExitCode::from(EXIT_BAD_INPUT)));
        }
    };
    Ok(Ok((Arc::new(plan), deployer)))
}

/// Off a terminal nobody can be asked: a change goes ahead only with `--yes`.
fn no_consent(what: &str) -> ExitCode {
    eprintln!(
        "error: --yes: {what}, and there is no terminal to ask on\n  fix: pass --yes to confirm (in scripts and CI), or run it on a terminal"
    );
    ExitCode::from(EXIT_BAD_INPUT)
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on the terminal; true when the answer is yes.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES")
}

/// One progress line per resource on a terminal; plain lines otherwise.
struct Progress {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    plain: bool,
}

impl Progress {
    fn new(plan: &Plan, quiet: bool) -> Arc<Self> {
        let plain = !std::io::stderr().is_terminal();
        let multi = MultiProgress::new();
        if plain || quiet {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template("{prefix:38} {spinner} {msg:24} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = plan
            .resources
            .iter()
            .map(|r| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_prefix(r.role.clone());
                bar.set_message("waiting");
                (r.role.clone(), bar)
            })
            .collect();
        Arc::new(Progress {
            multi,
            bars: Mutex::new(bars),
            plain: plain && !quiet,
        })
    }

    fn event(&self, role: &str, state: &NodeState, at: Duration) {
        let word = match state {
            NodeState::Waiting => "waiting".to_owned(),
            NodeState::Working => "working".to_owned(),
            NodeState::Done => "done".to_owned(),
            NodeState::Skipped(why) => format!("yours: {why}"),
            NodeState::Failed(_) => "FAILED".to_owned(),
            NodeState::NotStarted => "not started".to_owned(),
        };
        if self.plain {
            eprintln!("[{:>6.1}s] {role}: {word}", at.as_secs_f64());
        }
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bar) = bars.get(role) {
            match state {
                NodeState::Working => {
                    bar.reset_elapsed();
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar.set_message(word);
                }
                NodeState::Waiting => bar.set_message(word),
                _ => bar.finish_with_message(word),
            }
        }
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}

pub(crate) fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let started = Instant::now();
        let (plan, deployer) = match open(&args.config, args.output).await? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
        };
        let diff = match deployer.diff(&plan).await {
            Ok(diff) => diff,
            Err(e) => {
                eprintln!("error: reading what exists: {e}");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        };
        if args.output == Output::Text {
            print_changes(&diff, false)?;
        }
        let destroys = diff.iter().filter(|c| c.change.destroys()).count();
        // Azure's replacements need a gateway rebuilt around them: not automated yet.
        if let Some(c) = diff
            .iter()
            .find(|c| c.change == ChangeKind::Replace && c.cloud == dxvpn_plan::Cloud::Azure)
        {
            eprintln!(
                "error: {} must be replaced ({}), and dxvpn does not replace Azure resources yet\n  fix: set the config back, or `dxvpn down` and `dxvpn up` again",
                c.role,
                c.reason.as_deref().unwrap_or("a field Azure cannot change")
            );
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        if destroys > 0 && !args.allow_replace {
            eprintln!(
                "error: --allow-replace: up would replace or delete {destroys} resources (listed above), and what runs on them goes down\n  fix: review `dxvpn diff -c {}`, then run up with --allow-replace",
                args.config.config.display()
            );
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        let writes = diff.iter().filter(|c| c.change.writes()).count();
        if writes > 0 && !args.yes {
            if !interactive() {
                return Ok(no_consent(&format!("up would change {writes} resources")));
            }
            if !confirm(&format!("Change {writes} resources?")) {
                eprintln!("nothing done");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        }
        let progress = Progress::new(&plan, args.output == Output::Json);
        let listener = progress.clone();
        let deployer = deployer.with_events(move |e| listener.event(&e.role, &e.state, e.at));
        let pruned = deployer.prune(&plan, &diff, false).await;
        let mut report = deployer.up_after(plan.clone(), &diff).await;
        if report.ok() {
            let after = deployer.prune(&plan, &diff, true).await;
            report.nodes.extend(after);
        }
        report.nodes.splice(0..0, pruned);
        progress.clear();
        let status = if report.ok() && args.wait > 0 {
            wait_for_tunnels(&deployer, &plan, Duration::from_secs(args.wait), args.output).await
        } else {
            deployer.status(&plan).await.ok()
        };
        let healthy = status.as_ref().is_some_and(Status::healthy);
        let ok = report.ok() && (healthy || args.wait == 0);
        let answer = json!({"ok": ok, "plan": diff, "report": report, "status": status});
        let answer = args.stats.add(answer, deployer.calls(), started, args.output);
        match args.output {
            Output::Json => print_json(&answer)?,
            Output::Text => {
                print_report(&report, "up")?;
                if let Some(status) = &status {
                    print_status(status)?;
                }
                if !ok && report.ok() {
                    println!("tunnels not all up after {} s: see the table; `dxvpn status -c {}` reads them again", args.wait, args.config.config.display());
                }
            }
        }
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILED) })
    })
}

async fn wait_for_tunnels(
    deployer: &Deployer,
    plan: &Plan,
    limit: Duration,
    output: Output,
) -> Option<Status> {
    let bar = ProgressBar::new_spinner();
    if output == Output::Json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    let start = Instant::now();
    let mut last = None;
    let mut said = String::new();
    loop {
        match deployer.status(plan).await {
            Ok(status) => {
                let up = status.tunnels.iter().filter(|t| t.up).count();
                let message = format!(
                    "waiting for tunnels and BGP: {up}/{} up",
                    status.tunnels.len()
                );
                if bar.is_hidden() && output == Output::Text && message != said {
                    eprintln!("[{:>6.1}s] {message}", start.elapsed().as_secs_f64());
                }
                said.clone_from(&message);
                bar.set_message(message);
                let healthy = status.healthy();
                last = Some(status);
                if healthy {
                    break;
                }
            }
            Err(e) => tracing::warn!(error = %e, "status not readable yet"),
        }
        if start.elapsed() >= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bar.finish_and_clear();
    last
}

pub(crate) fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let started = Instant::now();
        let (plan, deployer) = match open(&args.config, args.output).await? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
        };
        if args.watch {
            return watch(
                &deployer,
                &plan,
                args.output,
                Duration::from_secs(args.every),
            )
            .await;
        }
        let status = match deployer.status(&plan).await {
            Ok(status) => status,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        };
        let answer = json!({"healthy": status.healthy(), "status": status});
        let answer = args
            .stats
            .add(answer, deployer.calls(), started, args.output);
        match args.output {
            Output::Json => print_json(&answer)?,
            Output::Text => print_status(&status)?,
        }
        Ok(if status.healthy() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        })
    })
}

pub(crate) fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let (plan, deployer) = match open(&args.config, args.output).await? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
        };
        if !args.yes {
            if !interactive() {
                return Ok(no_consent(&format!(
                    "down would delete every resource of deployment `{}`",
                    plan.name
                )));
            }
            if !confirm(&format!(
                "Delete every resource of deployment `{}`?",
                plan.name
            )) {
                eprintln!("nothing done");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        }
        let progress = Progress::new(&plan, args.output == Output::Json);
        let listener = progress.clone();
        let deployer = deployer.with_events(move |e| listener.event(&e.role, &e.state, e.at));
        let report = deployer.down(plan.clone()).await;
        progress.clear();
        match args.output {
            Output::Json => print_json(&json!({"ok": report.ok(), "report": report}))?,
            Output::Text => print_report(&report, "down")?,
        }
        Ok(if report.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        })
    })
}

pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn print_report(report: &Report, verb: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let done = report
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Done)
        .count();
    let failures: Vec<_> = report.failures().collect();
    writeln!(
        out,
        "{verb}: {done} resources done, {} failed, in {:.1} s",
        failures.len(),
        report.makespan.as_secs_f64()
    )?;
    for n in &failures {
        if let NodeState::Failed(message) = &n.state {
            writeln!(out, "  FAILED {}: {message}", n.role)?;
        }
    }
    let not_started = report
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::NotStarted)
        .count();
    if not_started > 0 {
        writeln!(
            out,
            "  {not_started} not started because of the failure; run `dxvpn {verb}` again once it is fixed: it resumes"
        )?;
    }
    Ok(())
}
