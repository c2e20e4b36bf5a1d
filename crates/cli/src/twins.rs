//! The whole lab as a background service: `dxvpn lab up` starts `dxvpn lab serve --bind` (both
//! twins and the binder that drives the data plane) in its own process group, waits until it
//! has written the ready config, and returns; `dxvpn lab down` stops it by its recorded pid.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use dxvpn_lab::{Lab, LabScenario};
use serde::{Deserialize, Serialize};

use crate::{EXIT_BAD_INPUT, EXIT_FAILED, Output};

/// Where running labs record themselves.
const TWINS_DIR: &str = "/tmp/dxvpn-lab/twins";
/// How long `lab up` waits for the background lab to be ready.
const READY: Duration = Duration::from_secs(30);
/// How long `lab down` waits for it to remove its data plane and exit.
const STOPPED: Duration = Duration::from_secs(60);

/// What a running lab writes once it serves.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LabRecord {
    pub(crate) pid: u32,
    pub(crate) aws_endpoint: String,
    pub(crate) azure_endpoint: String,
    pub(crate) config: PathBuf,
    pub(crate) time_factor: f64,
}

/// What `lab up` asks of the background lab.
pub(crate) struct Start {
    pub(crate) scenario: Option<PathBuf>,
    pub(crate) time_factor: f64,
    pub(crate) config_out: PathBuf,
    pub(crate) use_case: &'static str,
    pub(crate) name: String,
    pub(crate) output: Output,
}

fn records() -> Vec<(PathBuf, LabRecord)> {
    let Ok(entries) = std::fs::read_dir(TWINS_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let record = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            Some((p, record))
        })
        .collect()
}

/// The records of background labs whose process still runs.
fn live_records() -> impl Iterator<Item = (PathBuf, LabRecord)> {
    records().into_iter().filter(|(_, r)| is_lab_service(r.pid))
}

/// True when `pid` is a `dxvpn lab serve` process, not a recycled pid.
fn is_lab_service(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        args.contains(&b"serve".as_slice()) && args.contains(&b"--bind".as_slice())
    })
}

/// Those of `runs` (data plane prefixes) that a running background lab owns.
pub(crate) fn served_runs(runs: &[String]) -> Vec<String> {
    let services: Vec<String> = live_records().map(|(_, r)| r.pid.to_string()).collect();
    runs.iter()
        .filter(|run| {
            let owner = Path::new(dxvpn_lab::run::RUNS_DIR).join(run).join("owner");
            std::fs::read_to_string(owner).is_ok_and(|o| services.contains(&o.trim().to_owned()))
        })
        .cloned()
        .collect()
}

/// The AWS and Azure twins' endpoints of each running background lab.
pub(crate) fn endpoints() -> Vec<(String, String)> {
    live_records()
        .map(|(_, r)| (r.aws_endpoint, r.azure_endpoint))
        .collect()
}

/// Starts the background lab and waits for its config file.
pub(crate) fn up(start: Start) -> anyhow::Result<ExitCode> {
    if let Some((_, running)) = live_records().next() {
        eprintln!(
            "error: a lab is already running (pid {}, config {})\n  fix: use it, or stop it with `dxvpn lab down`",
            running.pid,
            running.config.display()
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    std::fs::create_dir_all(TWINS_DIR)?;
    let config = std::path::absolute(&start.config_out)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let log = Path::new(TWINS_DIR).join(format!("lab-{stamp}.log"));
    let record = Path::new(TWINS_DIR).join(format!("lab-{stamp}.json"));
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args([
        "lab",
        "serve",
        "--bind",
        "--aws",
        "127.0.0.1:0",
        "--azure",
        "127.0.0.1:0",
    ]);
    command
        .arg("--time-factor")
        .arg(start.time_factor.to_string());
    command.arg("--record").arg(&record);
    command.arg("--config-out").arg(&config);
    command.args(["--use-case", start.use_case, "--name", &start.name]);
    if let Some(scenario) = &start.scenario {
        command
            .arg("--scenario")
            .arg(std::path::absolute(scenario)?);
    }
    // Its own process group: Ctrl-C in this terminal later must not stop the lab.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let log_file = std::fs::File::create(&log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()?;
    let started = Instant::now();
    let ready = loop {
        if let Ok(text) = std::fs::read_to_string(&record)
            && let Ok(r) = serde_json::from_str::<LabRecord>(&text)
        {
            break r;
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!("error: the lab stopped ({status}):\n{text}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        if started.elapsed() > READY {
            let _ = child.kill();
            eprintln!(
                "error: the lab was not ready in {READY:?}; its log: {}",
                log.display()
            );
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = std::io::stdout().lock();
    if start.output == Output::Json {
        serde_json::to_writer_pretty(&mut out, &ready)?;
        writeln!(out)?;
    } else {
        let c = ready.config.display();
        writeln!(
            out,
            "lab ready in {:.1} s (pid {}): AWS twin {}, Azure twin {}, time factor {}\nconfig: {c}\nNext:\n  dxvpn plan -c {c}\n  dxvpn up -c {c} --yes\n  dxvpn status -c {c}\n  dxvpn lab status        # the data plane's daemons, once tunnels exist\n  ip netns exec <run>-aws-host dig @10.0.0.2 vm1.azure.internal   # DNS across, <run> from lab status\n  dxvpn down -c {c} --yes\n  dxvpn lab down",
            started.elapsed().as_secs_f64(),
            ready.pid,
            ready.aws_endpoint,
            ready.azure_endpoint,
            ready.time_factor,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Stops every background lab; true when one was running.
pub(crate) fn down() -> anyhow::Result<bool> {
    let mut any = false;
    for (path, record) in records() {
        if is_lab_service(record.pid) {
            any = true;
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &record.pid.to_string()])
                .status();
            let started = Instant::now();
            while Path::new(&format!("/proc/{}", record.pid)).exists()
                && is_lab_service(record.pid)
                && started.elapsed() < STOPPED
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("lab service {} stopped", record.pid);
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("log"));
    }
    Ok(any)
}

/// What `lab serve --bind` was asked for.
pub(crate) struct Bind {
    pub(crate) aws: std::net::SocketAddr,
    pub(crate) azure: std::net::SocketAddr,
    pub(crate) scenario: LabScenario,
    pub(crate) time_factor: f64,
    pub(crate) record: Option<PathBuf>,
    pub(crate) config_out: Option<PathBuf>,
    pub(crate) use_case: &'static str,
    pub(crate) name: String,
}

/// Serves both twins with the binder until Ctrl-C or SIGTERM, then removes the data plane.
pub(crate) async fn serve(bind: Bind) -> anyhow::Result<ExitCode> {
    let lab = Lab::start(bind.aws, bind.azure, &bind.scenario, bind.time_factor).await?;
    let config = bind
        .config_out
        .clone()
        .unwrap_or_else(|| PathBuf::from("dxvpn-lab.toml"));
    std::fs::write(&config, lab.config(&bind.name, bind.use_case))?;
    let record = LabRecord {
        pid: std::process::id(),
        aws_endpoint: lab.aws.endpoint.clone(),
        azure_endpoint: lab.azure.endpoint.clone(),
        config: std::path::absolute(&config)?,
        time_factor: bind.time_factor,
    };
    // Listening before anyone can know the pid: `lab down` may signal right after the record.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    println!(
        "AWS twin {}, Azure twin {}; config {}; the data plane follows the twins. Ctrl-C stops it.",
        record.aws_endpoint,
        record.azure_endpoint,
        record.config.display()
    );
    if let Some(path) = &bind.record {
        // Written whole then renamed: `lab up` must never read half a record.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, serde_json::to_string(&record)?)?;
        std::fs::rename(&partial, path)?;
    }
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    lab.stop().await;
    if let Some(path) = &bind.record {
        let _ = std::fs::remove_file(path);
    }
    Ok(ExitCode::SUCCESS)
}
