//! dxvpn's Prometheus exporter: on each scrape it reads both clouds' reports of a deployment
//! (through [`dxvpn_deploy::Deployer::status`]: AWS tunnel telemetry, Azure connection status and
//! BGP peers, route propagation, the forwarder hosts) and their traffic (through
//! [`dxvpn_deploy::Deployer::traffic`], made into byte counters), and answers them as gauges and
//! counters per tunnel and per cloud, written by prometheus-client in OpenMetrics or the classic
//! text format, as the scraper asks. With [`Exporter::with_probing`] it also pings the plan's
//! validate targets from where it runs (RTT and loss).
//!
//! Readings are shared: however many scrapers ask, both clouds are read at most once per
//! `max_age`, and a scrape that arrives while a reading is on its way waits for that one. A
//! reading that fails answers `dxvpn_read_success 0` and no tunnel series, so that Prometheus
//! marks them stale instead of repeating old values.
//!
//! ```no_run
//! # async fn demo(plan: dxvpn_plan::Plan) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! let deployer = dxvpn_deploy::Deployer::connect(&plan).await?;
//! let exporter = Arc::new(dxvpn_metrics::Exporter::new(Arc::new(plan), deployer, Duration::from_secs(10)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9475").await?;
//! dxvpn_metrics::serve(exporter, listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod counters;
mod exposition;
mod probes;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
pub use counters::ByteCounters;
use dxvpn_deploy::{Deployer, Status};
use dxvpn_plan::Plan;
pub use exposition::{Format, encode};
pub use probes::{ProbeReading, Prober, Probing, here};

/// One reading of both clouds.
#[derive(Debug, Clone)]
pub struct Reading {
    /// When it ended.
    pub at: Instant,
    /// How long it took.
    pub took: Duration,
    /// What the clouds reported, or why they could not be read.
    pub status: Result<Status, String>,
    /// The byte counters per tunnel, cloud and direction (none when the status failed).
    pub bytes: Vec<ByteCount>,
    /// Why a cloud's traffic could not be read (its byte counters are then left out).
    pub traffic_errors: Vec<String>,
    /// The last round of pings, when the exporter probes ([`Exporter::with_probing`]).
    pub probes: Vec<ProbeReading>,
}

/// One byte counter: what one cloud's end of a tunnel received (`in`) or sent (`out`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteKey {
    /// `c1t1`, ...
    pub tunnel: String,
    /// `aws` or `azure`.
    pub cloud: String,
    /// AWS: the VPN connection id; Azure: the connection's name.
    pub connection: String,
    /// AWS's outside address of the tunnel.
    pub outside_ip: String,
    /// `in` or `out`.
    pub direction: &'static str,
}

/// A byte counter's value.
#[derive(Debug, Clone, PartialEq)]
pub struct ByteCount {
    /// Which counter.
    pub key: ByteKey,
    /// Bytes so far (since the exporter started, plus the window it first read).
    pub bytes: f64,
}

/// How far back each reading asks the clouds for traffic.
const TRAFFIC_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Reads a deployment's health from both clouds for scrapers, at most once per `max_age`.
pub struct Exporter {
    plan: Arc<Plan>,
    deployer: Deployer,
    max_age: Duration,
    last: tokio::sync::Mutex<Option<Reading>>,
    readings: std::sync::atomic::AtomicU64,
    counters: std::sync::Mutex<ByteCounters<ByteKey>>,
    probing: Option<Probing>,
    /// The last round of pings, which a task of their own refreshes: a target that does not
    /// answer takes the probes' whole timeout, which no scrape should wait for.
    pings: Arc<std::sync::Mutex<Vec<ProbeReading>>>,
    pinger: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(task) = self.pinger.get() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("deployment", &self.plan.name)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter of `plan`'s deployment that reads through `deployer`, reusing a reading for
    /// `max_age`.
    pub fn new(plan: Arc<Plan>, deployer: Deployer, max_age: Duration) -> Self {
        Exporter {
            plan,
            deployer,
            max_age,
            last: tokio::sync::Mutex::new(None),
            readings: 0.into(),
            counters: std::sync::Mutex::new(ByteCounters::new()),
            probing: None,
            pings: Arc::default(),
            pinger: std::sync::OnceLock::new(),
        }
    }

    /// Also pings the plan's validate targets (RTT and loss), where `probing`'s prober runs
    /// them: from inside a cloud, or a lab host. A task of its own pings every `max_age` (a
    /// second at least) from the first reading on; each reading answers the last round.
    pub fn with_probing(mut self, probing: Probing) -> Self {
        self.probing = Some(probing);
        self
    }

    /// The last reading if it is younger than `max_age`, else a new one. The lock is held
    /// across the read, so concurrent scrapes share one.
    pub async fn reading(&self) -> Reading {
        let mut last = self.last.lock().await;
        if let Some(fresh) = last.as_ref().filter(|r| r.at.elapsed() < self.max_age) {
            return fresh.clone();
        }
        let start = Instant::now();
        self.start_pinging();
        let status = self
            .deployer
            .status(&self.plan)
            .await
            .map_err(|e| e.to_string());
        let probes = self.pings.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Err(e) = &status {
            tracing::warn!(error = %e, "reading both clouds failed; answering dxvpn_read_success 0");
        }
        let (bytes, traffic_errors) = match &status {
            Ok(status) => self.count_bytes(status).await,
            Err(_) => (Vec::new(), Vec::new()),
        };
        self.readings
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reading = Reading {
            at: Instant::now(),
            took: start.elapsed(),
            status,
            bytes,
            traffic_errors,
            probes,
        };
        *last = Some(reading.clone());
        reading
    }

    /// Starts the task that pings the targets, once, every `max_age` (a second at least).
    fn start_pinging(&self) {
        let Some(probing) = &self.probing else {
            return;
        };
        self.pinger.get_or_init(|| {
            let (probing, pings) = (probing.clone(), self.pings.clone());
            let every = self.max_age.max(Duration::from_secs(1));
            tokio::spawn(async move {
                loop {
                    let round = probing.read().await;
                    *pings.lock().unwrap_or_else(|p| p.into_inner()) = round;
                    tokio::time::sleep(every).await;
                }
            })
            .abort_handle()
        });
    }

    /// Reads both clouds' traffic of the tunnels in `status` and folds it into the counters.
    async fn count_bytes(&self, status: &Status) -> (Vec<ByteCount>, Vec<String>) {
        let since = std::time::SystemTime::now()
            .checked_sub(TRAFFIC_WINDOW)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let traffic = self
            .deployer
            .traffic(&self.plan, status, TRAFFIC_WINDOW)
            .await;
        for e in &traffic.errors {
            tracing::warn!(error = %e, "reading traffic failed; its byte counters are left out");
        }
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes = Vec::new();
        for t in traffic.tunnels {
            for (direction, sums) in [("in", &t.bytes_in), ("out", &t.bytes_out)] {
                let key = ByteKey {
                    tunnel: t.key.clone(),
                    cloud: t.cloud.to_owned(),
                    connection: t.connection.clone(),
                    outside_ip: t.outside_ip.clone(),
                    direction,
                };
                let total = counters.fold(&key, sums, since);
                bytes.push(ByteCount { key, bytes: total });
            }
        }
        (bytes, traffic.errors)
    }

    /// How many times both clouds have been read.
    pub fn readings(&self) -> u64 {
        self.readings.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The exposition of a fresh enough reading, in `format`.
    pub async fn scrape(&self, format: Format) -> String {
        let reading = self.reading().await;
        encode(&self.plan.name, &reading, format)
    }
}

/// The exporter's routes: `GET /metrics`, and `GET /` pointing at it.
pub fn router(exporter: Arc<Exporter>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .with_state(exporter)
}

async fn metrics(State(exporter): State<Arc<Exporter>>, headers: HeaderMap) -> impl IntoResponse {
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let body = exporter.scrape(format).await;
    ([(CONTENT_TYPE, format.content_type())], body)
}

async fn index(State(exporter): State<Arc<Exporter>>) -> String {
    format!(
        "dxvpn exporter of deployment {}: the metrics are at /metrics\n",
        exporter.plan.name
    )
}

/// Serves `exporter` on `listener` until `shutdown` completes.
pub async fn serve(
    exporter: Arc<Exporter>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(exporter))
        .with_graceful_shutdown(shutdown)
        .await
}
