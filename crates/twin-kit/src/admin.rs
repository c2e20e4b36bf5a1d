//! The `/_dxvpn` admin routes every twin serves beside its cloud's API, and the client that
//! reaches them (`dxvpn lab chaos`, tests).
//!
//! - `GET /_dxvpn/inventory`: everything the twin holds (never a key) and the calls answered;
//! - `POST /_dxvpn/faults`: queue a [`Fault`];
//! - `POST /_dxvpn/chaos`: a [`ChaosSetting`], answered `{"injected": N}` (what the setting it
//!   replaces injected); a rate outside 0 to 1 is refused with 400;
//! - `POST /_dxvpn/tamper`: a [`Tamper`], 204 when applied, 404 when no tunnel matches;
//! - `POST /_dxvpn/pace`: a [`PaceSetting`] (latencies and throttling), 204, or 400 with the
//!   rule it breaks.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::faults::{ChaosSetting, Fault, FaultBook, Tamper, apply_chaos};
use crate::pace::{Pace, PaceSetting};

/// What a twin's state offers the admin routes.
pub trait AdminState: Send + 'static {
    /// The twin's faults and call counts.
    fn faults(&mut self) -> &mut FaultBook;
    /// How fast the twin answers.
    fn pace(&mut self) -> &mut Pace;
    /// Everything the twin holds now, without keys (the routes add `calls`).
    fn inventory(&mut self) -> Value;
    /// Applies a test hook; false when no live tunnel matches it.
    fn tamper(&mut self, tamper: &Tamper) -> bool;
}

/// Locks a twin's state. A poisoned lock means a handler panicked; the state itself is still
/// consistent (every handler validates before it writes).
pub fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The inventory with the calls answered so far and those throttled (refused, not answered).
pub fn inventory_of<T: AdminState>(state: &mut T) -> Value {
    let mut inventory = state.inventory();
    if let Value::Object(map) = &mut inventory {
        map.insert("calls".into(), serde_json::json!(state.faults().calls));
        map.insert(
            "throttled".into(),
            serde_json::json!(state.pace().throttled),
        );
    }
    inventory
}

/// The admin routes over `state`, to merge into the twin's router.
pub fn routes<T: AdminState>(state: Arc<Mutex<T>>) -> Router {
    Router::new()
        .route("/_dxvpn/inventory", get(inventory::<T>))
        .route("/_dxvpn/faults", post(add_fault::<T>))
        .route("/_dxvpn/chaos", post(chaos::<T>))
        .route("/_dxvpn/tamper", post(tamper::<T>))
        .route("/_dxvpn/pace", post(pace::<T>))
        .with_state(state)
}

async fn inventory<T: AdminState>(State(state): State<Arc<Mutex<T>>>) -> Json<Value> {
    Json(inventory_of(&mut *lock(&state)))
}

async fn add_fault<T: AdminState>(
    State(state): State<Arc<Mutex<T>>>,
    Json(fault): Json<Fault>,
) -> StatusCode {
    lock(&state).faults().push(fault);
    StatusCode::NO_CONTENT
}

async fn chaos<T: AdminState>(
    State(state): State<Arc<Mutex<T>>>,
    Json(setting): Json<ChaosSetting>,
) -> (StatusCode, Json<Value>) {
    apply_chaos(lock(&state).faults(), setting)
}

async fn tamper<T: AdminState>(
    State(state): State<Arc<Mutex<T>>>,
    Json(tamper): Json<Tamper>,
) -> StatusCode {
    if lock(&state).tamper(&tamper) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn pace<T: AdminState>(
    State(state): State<Arc<Mutex<T>>>,
    Json(setting): Json<PaceSetting>,
) -> (StatusCode, Json<Value>) {
    if let Err(rule) = setting.check() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": rule })),
        );
    }
    lock(&state).pace().set(setting);
    (StatusCode::OK, Json(serde_json::json!({})))
}

/// What the admin client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The twin could not be reached, or broke off its answer.
    #[error("{endpoint}: {source}")]
    Http {
        /// The twin's endpoint.
        endpoint: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// The twin refused the request.
    #[error("{endpoint} answered {status}: {body}")]
    Refused {
        /// The twin's endpoint.
        endpoint: String,
        /// Its status code.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// The answer was not the JSON the route promises.
    #[error("{endpoint}: unreadable answer: {source}")]
    Answer {
        /// The twin's endpoint.
        endpoint: String,
        /// What went wrong.
        source: serde_json::Error,
    },
}

/// A client for one twin's admin routes.
#[derive(Debug, Clone)]
pub struct AdminClient {
    endpoint: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the twin answering at `endpoint` (`http://127.0.0.1:PORT`).
    pub fn new(endpoint: impl Into<String>) -> Self {
        AdminClient {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sets chaos on the twin; returns how many faults the setting it replaces injected.
    pub async fn set_chaos(&self, setting: ChaosSetting) -> Result<u64, AdminError> {
        let answer = self.post("/_dxvpn/chaos", &setting).await?;
        Ok(answer.get("injected").and_then(Value::as_u64).unwrap_or(0))
    }

    /// Queues a fault.
    pub async fn inject(&self, fault: &Fault) -> Result<(), AdminError> {
        self.post("/_dxvpn/faults", fault).await.map(drop)
    }

    /// Applies a test hook; false when no tunnel matches it.
    pub async fn tamper(&self, tamper: &Tamper) -> Result<bool, AdminError> {
        match self.post("/_dxvpn/tamper", tamper).await {
            Ok(_) => Ok(true),
            Err(AdminError::Refused { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets how fast the twin answers (latencies, throttling).
    pub async fn set_pace(&self, setting: PaceSetting) -> Result<(), AdminError> {
        self.post("/_dxvpn/pace", &setting).await.map(drop)
    }

    /// Everything the twin holds (never a key) and the calls it answered.
    pub async fn inventory(&self) -> Result<Value, AdminError> {
        let request = self.http.get(format!("{}/_dxvpn/inventory", self.endpoint));
        self.answer(request).await
    }

    async fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<Value, AdminError> {
        let request = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .header("content-type", "application/json")
            .body(
                serde_json::to_string(body).map_err(|source| AdminError::Answer {
                    endpoint: self.endpoint.clone(),
                    source,
                })?,
            );
        self.answer(request).await
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, AdminError> {
        let http = |source| AdminError::Http {
            endpoint: self.endpoint.clone(),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(http)?;
        if !(200..300).contains(&status) {
            return Err(AdminError::Refused {
                endpoint: self.endpoint.clone(),
                status,
                body,
            });
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body).map_err(|source| AdminError::Answer {
            endpoint: self.endpoint.clone(),
            source,
        })
    }
}
