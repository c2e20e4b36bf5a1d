//! The whole lab as a background service, and the records by which it is found again.
//!
//! [`spawn`] starts a program that serves the lab (`dxvpn lab serve --bind ...`: both twins and
//! the binder) in its own process group, so that Ctrl-C in the terminal that started it does
//! not stop it, and waits until it has written its [`ServiceRecord`]. The serving side is
//! [`Service::start`]: the lab, its config file, signal handlers, then the record (written
//! whole, then renamed). [`stop_all`] stops every running service by its recorded pid, after
//! checking that the pid still is a lab service; [`endpoints`] and [`served_runs`] find the
//! twins and the data planes of running services.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{Lab, LabError, LabScenario};

/// Where running lab services record themselves: `twins/` in the lab's folder.
pub fn services_dir() -> PathBuf {
    dxvpn_netlab::private_dir::lab_dir().join("twins")
}
/// How long [`spawn`] waits for the service to be ready.
const READY: Duration = Duration::from_secs(30);
/// How long [`stop_all`] waits for a service to remove its data plane and exit.
const STOPPED: Duration = Duration::from_secs(60);

/// What a running lab service writes once it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its process.
    pub pid: u32,
    /// The AWS twin's endpoint.
    pub aws_endpoint: String,
    /// The Azure twin's endpoint.
    pub azure_endpoint: String,
    /// The dxvpn config file it wrote for this lab.
    pub config: PathBuf,
    /// Its time factor.
    pub time_factor: f64,
    /// Both twins' seed of their undocumented choices (`DXVPN_TWIN_SEED` replays them).
    #[serde(default)]
    pub twin_seed: u64,
}

/// What can go wrong starting or stopping the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// One runs already: the lab is a singleton on a machine.
    #[error("a lab is already running (pid {}, config {})", .0.pid, .0.config.display())]
    AlreadyRunning(Box<ServiceRecord>),
    /// The service ended before it was ready.
    #[error("the lab stopped ({status}):\n{log}")]
    Stopped {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        log: String,
    },
    /// The service was not ready in time (and was killed).
    #[error("the lab was not ready in {READY:?}; its log: {}", .log.display())]
    NotReady {
        /// Its log file.
        log: PathBuf,
    },
    /// The lab's folder failed its check.
    #[error(transparent)]
    Folder(#[from] dxvpn_netlab::NetlabError),
    /// A file or process call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
    let what = what.into();
    move |source| ServiceError::Io { what, source }
}

/// What to start: the program that serves (`program lab serve --bind ...`) and its settings.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    /// The dxvpn binary.
    pub program: PathBuf,
    /// A scenario file for the twins.
    pub scenario: Option<PathBuf>,
    /// Real durations times this.
    pub time_factor: f64,
    /// The twins answer as slowly as the clouds and throttle as they do
    /// ([`dxvpn_twin_kit::pace::PaceSetting::realistic`]).
    pub cloud_pace: bool,
    /// Where the lab's dxvpn config file goes.
    pub config_out: PathBuf,
    /// `development` or `high_availability`, for that config.
    pub use_case: &'static str,
    /// The deployment name in that config.
    pub name: String,
}

/// Every record in [`services_dir`], of live services or not; none when the folder fails its
/// check (a record names a pid that `lab down` signals).
fn records() -> Vec<(PathBuf, ServiceRecord)> {
    records_in(&services_dir())
}

fn records_in(dir: &Path) -> Vec<(PathBuf, ServiceRecord)> {
    if !dir.exists() {
        return Vec::new();
    }
    // Every folder on the way is checked too: a squatted lab folder fails here.
    if let Err(e) = dxvpn_netlab::private_dir::private_dir(dir) {
        tracing::warn!(error = %e, "lab services not read");
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
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

/// The records of lab services whose process still runs.
pub fn live_records() -> Vec<ServiceRecord> {
    records()
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| is_lab_service(r.pid))
        .collect()
}

/// True when `pid` is a `dxvpn lab serve --bind` process, not a recycled pid.
fn is_lab_service(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        args.contains(&b"serve".as_slice()) && args.contains(&b"--bind".as_slice())
    })
}

/// Those of `runs` (data plane prefixes) that a running lab service owns.
pub fn served_runs(runs: &[String]) -> Vec<String> {
    let services: Vec<String> = live_records().iter().map(|r| r.pid.to_string()).collect();
    runs.iter()
        .filter(|run| {
            let owner = dxvpn_netlab::private_dir::lab_dir().join(run).join("owner");
            std::fs::read_to_string(owner).is_ok_and(|o| services.contains(&o.trim().to_owned()))
        })
        .cloned()
        .collect()
}

/// The AWS and Azure twins' endpoints of each running lab service.
pub fn endpoints() -> Vec<(String, String)> {
    live_records()
        .into_iter()
        .map(|r| (r.aws_endpoint, r.azure_endpoint))
        .collect()
}

/// Starts the lab service and waits until it is ready: its record, and how long it took.
pub fn spawn(request: &SpawnRequest) -> Result<(ServiceRecord, Duration), ServiceError> {
    if let Some(running) = live_records().into_iter().next() {
        return Err(ServiceError::AlreadyRunning(Box::new(running)));
    }
    let services = services_dir();
    // The lab's top folder is checked as its own on the way.
    dxvpn_netlab::private_dir::private_dir(&services)?;
    let config = std::path::absolute(&request.config_out).map_err(io("the config path"))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let log = services.join(format!("lab-{stamp}.log"));
    let record = services.join(format!("lab-{stamp}.json"));
    let mut command = std::process::Command::new(&request.program);
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
        .arg(request.time_factor.to_string());
    if request.cloud_pace {
        command.arg("--cloud-pace");
    }
    command.arg("--record").arg(&record);
    command.arg("--config-out").arg(&config);
    command.args(["--use-case", request.use_case, "--name", &request.name]);
    if let Some(scenario) = &request.scenario {
        command
            .arg("--scenario")
            .arg(std::path::absolute(scenario).map_err(io("the scenario path"))?);
    }
    // Its own process group: Ctrl-C in this terminal later must not stop the lab.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let log_file = std::fs::File::create(&log).map_err(io(log.display().to_string()))?;
    let log_err = log_file.try_clone().map_err(io("the log file"))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(io(request.program.display().to_string()))?;
    wait_ready(&mut child, &record, &log)
}

fn wait_ready(
    child: &mut Child,
    record: &Path,
    log: &Path,
) -> Result<(ServiceRecord, Duration), ServiceError> {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(record)
            && let Ok(r) = serde_json::from_str::<ServiceRecord>(&text)
        {
            return Ok((r, started.elapsed()));
        }
        if let Some(status) = child.try_wait().map_err(io("the lab service"))? {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(ServiceError::Stopped { status, log });
        }
        if started.elapsed() > READY {
            let _ = child.kill();
            return Err(ServiceError::NotReady {
                log: log.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What [`stop_all`] did to one running lab service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopping {
    /// Its process.
    pub pid: u32,
    /// False when it still ran after the wait: its record is kept, so that `lab down` finds it
    /// again.
    pub stopped: bool,
}

/// Stops every running lab service (each removes its own data plane) and forgets the records
/// of dead ones; what became of each that was running.
pub fn stop_all() -> Vec<Stopping> {
    let dir = services_dir();
    stop_all_in(records_in(&dir), STOPPED)
}

fn stop_all_in(records: Vec<(PathBuf, ServiceRecord)>, wait: Duration) -> Vec<Stopping> {
    let mut report = Vec::new();
    for (path, record) in records {
        if is_lab_service(record.pid) {
            terminate(record.pid);
            let started = Instant::now();
            while is_lab_service(record.pid) && started.elapsed() < wait {
                std::thread::sleep(Duration::from_millis(100));
            }
            let stopped = !is_lab_service(record.pid);
            report.push(Stopping {
                pid: record.pid,
                stopped,
            });
            if !stopped {
                tracing::warn!(
                    pid = record.pid,
                    ?wait,
                    "lab service still running; its record is kept"
                );
                continue;
            }
            tracing::info!(pid = record.pid, "lab service stopped");
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("log"));
    }
    report
}

/// SIGTERM to `pid`, which the caller has just checked is a lab service.
fn terminate(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// What the serving side was asked for.
#[derive(Debug, Clone)]
pub struct Bind {
    /// The AWS twin's address (port 0: a free one).
    pub aws: SocketAddr,
    /// The Azure twin's address.
    pub azure: SocketAddr,
    /// The twins' seeds.
    pub scenario: LabScenario,
    /// Real durations times this.
    pub time_factor: f64,
    /// The twins answer at the clouds' pace (latencies, throttling).
    pub cloud_pace: bool,
    /// Where to write the [`ServiceRecord`] once ready.
    pub record: Option<PathBuf>,
    /// Where to write the lab's dxvpn config file (default `dxvpn-lab.toml`).
    pub config_out: Option<PathBuf>,
    /// `development` or `high_availability`, for that config.
    pub use_case: &'static str,
    /// The deployment name in that config.
    pub name: String,
}

/// The serving side: the lab running until a signal.
#[derive(Debug)]
pub struct Service {
    lab: Lab,
    record: ServiceRecord,
    record_path: Option<PathBuf>,
    term: Signal,
    interrupt: Signal,
}

impl Service {
    /// Starts the lab, writes its config, listens for SIGTERM and SIGINT, and only then writes
    /// the record that announces it (a `stop_all` may signal right after reading it).
    pub async fn start(bind: Bind) -> Result<Self, LabError> {
        let lab = Lab::start(bind.aws, bind.azure, &bind.scenario, bind.time_factor).await?;
        if bind.cloud_pace {
            let pace = dxvpn_twin_kit::pace::PaceSetting::realistic();
            lab.aws.set_pace(pace);
            lab.azure.set_pace(pace);
        }
        let config = bind
            .config_out
            .clone()
            .unwrap_or_else(|| PathBuf::from("dxvpn-lab.toml"));
        let file = |source| {
            LabError::Service(ServiceError::Io {
                what: config.display().to_string(),
                source,
            })
        };
        std::fs::write(&config, lab.config(&bind.name, bind.use_case)).map_err(file)?;
        let record = ServiceRecord {
            pid: std::process::id(),
            aws_endpoint: lab.aws.endpoint.clone(),
            azure_endpoint: lab.azure.endpoint.clone(),
            config: std::path::absolute(&config).map_err(file)?,
            time_factor: bind.time_factor,
            twin_seed: lab.aws.seeded.seed,
        };
        let signals = |source| {
            LabError::Service(ServiceError::Io {
                what: "signal handlers".into(),
                source,
            })
        };
        let term = signal(SignalKind::terminate()).map_err(signals)?;
        let interrupt = signal(SignalKind::interrupt()).map_err(signals)?;
        if let Some(path) = &bind.record {
            // Written whole then renamed: `spawn` must never read half a record.
            let write = |source| {
                LabError::Service(ServiceError::Io {
                    what: path.display().to_string(),
                    source,
                })
            };
            let partial = path.with_extension("partial");
            let text = serde_json::to_string(&record).unwrap_or_default();
            std::fs::write(&partial, text).map_err(write)?;
            std::fs::rename(&partial, path).map_err(write)?;
        }
        Ok(Service {
            lab,
            record,
            record_path: bind.record,
            term,
            interrupt,
        })
    }

    /// What it announced.
    pub fn record(&self) -> &ServiceRecord {
        &self.record
    }

    /// Serves until SIGTERM or SIGINT, then removes the data plane, stops the twins and
    /// removes the record.
    pub async fn run_until_signal(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.term.recv() => {}
        }
        self.lab.stop().await;
        if let Some(path) = &self.record_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that outlives the wait is reported as still running and keeps its record
    /// (`lab down` used to say "stopped" and forget it).
    #[test]
    fn a_service_that_does_not_stop_keeps_its_record() {
        let dir = std::env::temp_dir().join(format!("dxvpn-stop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dxvpn_netlab::private_dir::private_dir(&dir).expect("a private folder");
        // Looks like `dxvpn lab serve --bind` to the pid check, and ignores SIGTERM.
        let mut stubborn = std::process::Command::new("sh")
            .args([
                "-c",
                "trap '' TERM; while :; do sleep 0.1; done",
                "serve",
                "--bind",
            ])
            .spawn()
            .expect("sh runs");
        std::thread::sleep(Duration::from_millis(200));
        let record = ServiceRecord {
            pid: stubborn.id(),
            aws_endpoint: String::new(),
            azure_endpoint: String::new(),
            config: PathBuf::new(),
            time_factor: 1.0,
            twin_seed: 0,
        };
        let path = dir.join("lab-1.json");
        std::fs::write(&path, serde_json::to_string(&record).expect("json")).expect("written");
        let report = stop_all_in(records_in(&dir), Duration::from_millis(500));
        let _ = stubborn.kill();
        let _ = stubborn.wait();
        assert_eq!(
            report,
            vec![Stopping {
                pid: record.pid,
                stopped: false
            }]
        );
        assert!(path.exists(), "the record of a running service is kept");
        let report = stop_all_in(records_in(&dir), Duration::from_millis(500));
        assert!(
            report.is_empty(),
            "a dead service is not reported: {report:?}"
        );
        assert!(!path.exists(), "and its record is forgotten");
        std::fs::remove_dir_all(&dir).expect("cleaned");
    }
}
