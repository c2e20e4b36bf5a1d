//! Polling ARM's long-running operations ourselves: azure_mgmt_network's own `.await` hides the
//! operation's error body and gives no progress, and its deletes are not awaitable at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::auth::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::headers::{HeaderName, Headers};
use azure_core::{HttpClient, Method, Request, Url};
use serde::Deserialize;

/// Where ARM said to poll, and how soon.
#[derive(Debug, Clone)]
pub(crate) struct Poll {
    pub(crate) url: Url,
    pub(crate) retry_after: Option<Duration>,
}

impl Poll {
    /// The `Azure-AsyncOperation` URL of a response, if it has one.
    pub(crate) fn from_headers(headers: &Headers) -> Option<Poll> {
        let url = headers
            .get_optional_str(&HeaderName::from_static("azure-asyncoperation"))
            .and_then(|u| Url::parse(u).ok())?;
        Some(Poll {
            url,
            retry_after: retry_after(headers),
        })
    }
}

/// `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` (seconds), as ARM sends them.
pub(crate) fn retry_after(headers: &Headers) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get_optional_str(&HeaderName::from_static(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    headers
        .get_optional_str(&HeaderName::from_static("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// An operation's status body.
#[derive(Debug, Deserialize)]
struct OperationStatus {
    status: String,
    #[serde(default)]
    error: Option<OperationError>,
}

/// The error of a failed operation: ARM's code and message.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OperationError {
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// Polls in a row whose connection may break before the wait gives up.
const BROKEN_POLLS: u32 = 5;

/// How an operation ended.
pub(crate) enum Outcome {
    Succeeded,
    Failed(OperationError),
    TimedOut(Duration),
}

/// Reads operation status URLs with the clients' own credential and HTTP stack.
#[derive(Clone)]
pub(crate) struct Poller {
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) credential: Arc<dyn TokenCredential>,
    pub(crate) scopes: Vec<String>,
    /// Never poll faster than this, whatever Retry-After says.
    pub(crate) floor: Duration,
    /// When ARM gives no Retry-After.
    pub(crate) default_interval: Duration,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("floor", &self.floor)
            .field("default_interval", &self.default_interval)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// A request to `url` that carries a bearer token for ARM, from the clients' own credential.
    pub(crate) async fn authorized(
        &self,
        url: Url,
        method: Method,
    ) -> Result<Request, azure_core::Error> {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let token = self.credential.get_token(&scopes).await?;
        let mut request = Request::new(url, method);
        request.insert_header(
            azure_core::headers::AUTHORIZATION,
            format!("Bearer {}", token.token.secret()),
        );
        Ok(request)
    }

    /// Polls `poll` until the operation ends or `limit` passes; `progress` hears each status.
    pub(crate) async fn wait(
        &self,
        poll: Poll,
        limit: Duration,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Outcome, azure_core::Error> {
        let started = Instant::now();
        let mut delay = poll.retry_after;
        let mut broken = 0;
        loop {
            tokio::time::sleep(delay.unwrap_or(self.default_interval).max(self.floor)).await;
            if started.elapsed() > limit {
                return Ok(Outcome::TimedOut(started.elapsed()));
            }
            let request = self.authorized(poll.url.clone(), Method::Get).await?;
            // A poll is a read: a broken connection is one more reason to poll again, up to
            // a few times in a row.
            let answer = async {
                let response = self.http.execute_request(&request).await?;
                let (status, delay) = (response.status(), retry_after(response.headers()));
                let bytes = response.into_body().collect().await?;
                Ok::<_, azure_core::Error>((status, delay, bytes))
            }
            .await;
            let (status, answer_delay, bytes) = match answer {
                Ok(answer) => {
                    broken = 0;
                    answer
                }
                Err(e) if *e.kind() == ErrorKind::Io && broken < BROKEN_POLLS => {
                    broken += 1;
                    tracing::debug!(error = %e, "operation poll broke off; polling again");
                    delay = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            delay = answer_delay;
            if !status.is_success() {
                // Throttled or a transient failure: keep polling, as ARM's own pollers do.
                tracing::debug!(status = %status, "operation poll answered an error; polling again");
                continue;
            }
            let body: OperationStatus = match serde_json::from_slice(&bytes) {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(error = %e, "operation poll body unreadable; polling again");
                    continue;
                }
            };
            progress(&body.status);
            match body.status.as_str() {
                "Succeeded" => return Ok(Outcome::Succeeded),
                "Failed" | "Canceled" | "Cancelled" => {
                    return Ok(Outcome::Failed(body.error.unwrap_or(OperationError {
                        code: body.status.clone(),
                        message: "the operation ended without an error body".into(),
                    })));
                }
                _ => {}
            }
        }
    }
}
