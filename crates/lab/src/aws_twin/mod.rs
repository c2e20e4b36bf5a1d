//! The AWS twin: an HTTP server speaking the EC2 Query protocol (API 2016-11-15) for the VPN
//! subset dxvpn uses, wire-compatible with aws-sdk-ec2 pointed at it with `endpoint_url`.
//!
//! It enforces AWS's documented rules and error codes (cloud-apis.md section 1), scales real
//! operation durations by a time factor, and accepts injected faults. `GET /_dxvpn/inventory`
//! dumps what exists (never a key); `POST /_dxvpn/faults` queues a fault.

mod model;
mod query;
mod xml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
pub use model::{AwsScenario, SeededIds};
use serde::{Deserialize, Serialize};

use crate::LabError;
use model::{Ec2, Ec2Error, is_mutating};
use query::Params;

/// A fault to inject at the `at_call`-th call (counted from the twin's start) of `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// EC2 action, e.g. `CreateVpnConnection`; `*` counts every mutating call (not Describe*).
    pub action: String,
    /// Which call of that action (1 = the first since the twin started).
    pub at_call: u32,
    /// What happens.
    pub kind: FaultKind,
    /// Apply the fault after the action took effect (the client never hears that it did).
    #[serde(default)]
    pub after_effect: bool,
}

/// How a call fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// An EC2 client error (HTTP 400) with this code and message.
    Error {
        /// EC2 error code.
        code: String,
        /// Message.
        message: String,
    },
    /// HTTP 500 `InternalError`.
    ServerError,
    /// HTTP 503 `RequestLimitExceeded` (throttling).
    Throttle,
    /// The connection ends before the response is complete.
    Drop,
}

#[derive(Debug)]
struct TwinState {
    ec2: Ec2,
    faults: Vec<Fault>,
    calls: BTreeMap<String, u32>,
}

type Shared = Arc<Mutex<TwinState>>;

fn lock(state: &Shared) -> MutexGuard<'_, TwinState> {
    // A poisoned lock means a handler panicked; the inventory itself is still consistent.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running AWS twin.
#[derive(Debug)]
pub struct AwsTwin {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub endpoint: String,
    /// The VPC, subnets and route tables it was seeded with.
    pub seeded: SeededIds,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl AwsTwin {
    /// Starts the twin on `addr` (port 0 picks a free port), seeded from `scenario`. Every real
    /// duration is multiplied by `time_factor` (1.0 = as slow as AWS; 0.0 = instant).
    pub async fn start(
        addr: SocketAddr,
        scenario: &AwsScenario,
        time_factor: f64,
    ) -> Result<Self, LabError> {
        let ec2 = Ec2::new(scenario, time_factor);
        let seeded = ec2.seeded.clone();
        let state: Shared = Arc::new(Mutex::new(TwinState {
            ec2,
            faults: Vec::new(),
            calls: BTreeMap::new(),
        }));
        let app = Router::new()
            .route("/", post(ec2_call).get(ec2_call))
            .route("/_dxvpn/inventory", get(inventory))
            .route("/_dxvpn/faults", post(add_fault))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| LabError::Io {
                path: addr.to_string(),
                source: e,
            })?;
        let local = listener.local_addr().map_err(|e| LabError::Io {
            path: addr.to_string(),
            source: e,
        })?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "AWS twin stopped");
            }
        });
        Ok(AwsTwin {
            endpoint: format!("http://{local}"),
            seeded,
            state,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Queues a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push(fault);
    }

    /// Everything the twin holds now (no keys), and the calls it has answered.
    pub fn inventory(&self) -> serde_json::Value {
        let state = lock(&self.state);
        let mut inventory = state.ec2.inventory();
        inventory["calls"] = serde_json::json!(state.calls);
        inventory
    }

    /// How many calls of mutating actions (everything but Describe*) the twin has answered.
    pub fn mutating_calls(&self) -> u32 {
        lock(&self.state)
            .calls
            .iter()
            .filter(|(a, _)| is_mutating(a))
            .map(|(_, n)| n)
            .sum()
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn inventory(State(state): State<Shared>) -> Json<serde_json::Value> {
    let state = lock(&state);
    let mut inventory = state.ec2.inventory();
    inventory["calls"] = serde_json::json!(state.calls);
    Json(inventory)
}

async fn add_fault(State(state): State<Shared>, Json(fault): Json<Fault>) -> StatusCode {
    lock(&state).faults.push(fault);
    StatusCode::NO_CONTENT
}

fn request_id() -> String {
    let n: u128 = rand::random();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn ec2_call(
    State(state): State<Shared>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = request_id();
    if headers.contains_key("x-amz-target") {
        return ec2_error(
            &id,
            Ec2Error {
                status: 400,
                code: "UnknownOperationException".into(),
                message: "Route 53 Resolver is not served by this twin yet".into(),
            },
        );
    }
    let params = if method == Method::GET {
        Params::parse(query.unwrap_or_default().as_bytes())
    } else {
        Params::parse(&body)
    };
    let Some(action) = params.get("Action").map(str::to_owned) else {
        return ec2_error(
            &id,
            Ec2Error {
                status: 400,
                code: "MissingAction".into(),
                message: "The request must contain the parameter Action".into(),
            },
        );
    };
    let mut state = lock(&state);
    let n = {
        let count = state.calls.entry(action.clone()).or_default();
        *count += 1;
        *count
    };
    let nth_mutating: u32 = state
        .calls
        .iter()
        .filter(|(a, _)| is_mutating(a))
        .map(|(_, n)| n)
        .sum();
    let fault = state
        .faults
        .iter()
        .position(|f| {
            (f.action == action && f.at_call == n)
                || (f.action == "*" && is_mutating(&action) && f.at_call == nth_mutating)
        })
        .map(|i| state.faults.remove(i));
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_effect) {
        tracing::debug!(%action, call = n, ?fault, "injected fault");
        return fault_response(&id, &fault.kind);
    }
    let result = state.ec2.handle(&action, &params);
    drop(state);
    if let Some(fault) = fault {
        tracing::debug!(%action, call = n, ?fault, "injected fault after the effect");
        return fault_response(&id, &fault.kind);
    }
    match result {
        Ok(xml) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/xml;charset=UTF-8"),
                (
                    header::HeaderName::from_static("x-amzn-requestid"),
                    id.as_str(),
                ),
                (
                    header::HeaderName::from_static("x-amz-request-id"),
                    id.as_str(),
                ),
            ],
            xml.response(&action, &id),
        )
            .into_response(),
        Err(e) => ec2_error(&id, e),
    }
}

fn ec2_error(id: &str, e: Ec2Error) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml;charset=UTF-8"),
            (header::HeaderName::from_static("x-amzn-requestid"), id),
            (header::HeaderName::from_static("x-amz-request-id"), id),
        ],
        xml::error(&e.code, &e.message, id),
    )
        .into_response()
}

fn fault_response(id: &str, kind: &FaultKind) -> Response {
    match kind {
        FaultKind::Error { code, message } => ec2_error(
            id,
            Ec2Error {
                status: 400,
                code: code.clone(),
                message: message.clone(),
            },
        ),
        FaultKind::ServerError => ec2_error(
            id,
            Ec2Error {
                status: 500,
                code: "InternalError".into(),
                message: "An internal error has occurred (injected)".into(),
            },
        ),
        FaultKind::Throttle => ec2_error(
            id,
            Ec2Error {
                status: 503,
                code: "RequestLimitExceeded".into(),
                message: "Request limit exceeded (injected)".into(),
            },
        ),
        // Promise more bytes than are sent: the client sees the connection end mid-response.
        FaultKind::Drop => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, "4096")
            .body(Body::from("<"))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}
