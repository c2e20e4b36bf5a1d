//! Polling ARM's long-running operations ourselves: azure_mgmt_network's own `.await` hides the
//! operation's error body and gives no progress, and its deletes are not awaitable at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::auth::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::headers::{HeaderName, Headers};
use azure_core::{HttpClient, Method, Request, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::kind::Kind;
use crate::{AzureError, WAIT_LIMIT};

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
/// The longest pause between polls, whatever Retry-After says: ARM asks for seconds, and a
/// header asking for hours would hang `up` past its own wait limit.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

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
    /// ARM's endpoint: the only place polled, since each poll carries the bearer token.
    pub(crate) origin: Url,
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
        if !same_origin(&poll.url, &self.origin) {
            // A header names the URL, and the token goes with the request: only to ARM.
            return Ok(Outcome::Failed(OperationError {
                code: "UntrustedOperationUrl".into(),
                message: format!(
                    "the answer named {}://{} to poll, which is not ARM's endpoint ({}); dxvpn does not send its token there",
                    poll.url.scheme(),
                    poll.url.host_str().unwrap_or("no host"),
                    self.origin.host_str().unwrap_or("no host"),
                ),
            }));
        }
        let started = Instant::now();
        let mut delay = poll.retry_after;
        let mut broken = 0;
        loop {
            let pause = delay
                .unwrap_or(self.default_interval)
                .clamp(self.floor, MAX_RETRY_AFTER.max(self.floor));
            // Never sleep past the limit: the time out is told when it comes.
            tokio::time::sleep(pause.min(limit.saturating_sub(started.elapsed()))).await;
            if started.elapsed() >= limit {
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
            if matches!(u16::from(status), 401 | 403 | 404) {
                // No poll will answer otherwise: the token is refused or the operation is gone.
                return Ok(Outcome::Failed(refusal(u16::from(status), &bytes)));
            }
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

/// Scheme, host and port alike.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// ARM's error body (`{"error": {"code", "message"}}`) of a poll it refused, or the status.
fn refusal(status: u16, body: &[u8]) -> OperationError {
    #[derive(Deserialize)]
    struct Body {
        error: OperationError,
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| OperationError {
            code: format!("HTTP {status}"),
            message: "the operation's status could not be read".into(),
        })
}

/// Waiting on a resource that names no operation to follow.
impl crate::Azure {
    /// Polls the resource itself until it is provisioned (no operation URL to follow).
    pub(crate) async fn wait_provisioned(
        &self,
        kind: Kind,
        at: (&str, &str, &str),
        role: &str,
    ) -> Result<(), AzureError> {
        let started = Instant::now();
        loop {
            let found = self.read(kind, at, role).await?;
            let state = found
                .as_ref()
                .and_then(|f| f.pointer("/properties/provisioningState"))
                .and_then(Value::as_str)
                .unwrap_or("gone")
                .to_owned();
            match state.as_str() {
                "Succeeded" => return Ok(()),
                "Failed" | "gone" => {
                    return Err(AzureError::OperationFailed {
                        role: role.to_owned(),
                        operation: format!("PUT {}", kind.type_path()),
                        code: state,
                        message:
                            "the resource did not provision; run `dxvpn up` again to rewrite it"
                                .into(),
                    });
                }
                _ => {}
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(AzureError::Timeout {
                    role: role.to_owned(),
                    operation: format!("PUT {}", kind.type_path()),
                    waited: started.elapsed(),
                });
            }
            self.report(role, &format!("{state} ({}s)", started.elapsed().as_secs()));
            tokio::time::sleep(self.poller.default_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A hostile server on loopback: answers every request with `head` and `body`, and counts
    /// the requests it got.
    async fn server(head: &'static str, body: &'static str) -> (Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let url = Url::parse(&format!(
            "http://{}/op",
            listener.local_addr().expect("addr")
        ))
        .expect("a URL");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {head}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (url, requests)
    }

    fn poller(origin: &Url) -> Poller {
        Poller {
            http: azure_core::new_http_client(),
            credential: Arc::new(crate::credential::StaticToken::new("lab-token")),
            scopes: vec!["https://management.azure.com/.default".into()],
            floor: Duration::from_millis(10),
            default_interval: Duration::from_millis(10),
            origin: origin.clone(),
        }
    }

    #[tokio::test]
    async fn an_operation_url_off_arms_host_is_not_polled() {
        let (arm, _) = server("200 OK", r#"{"status":"Succeeded"}"#).await;
        let (elsewhere, asked) = server("200 OK", r#"{"status":"Succeeded"}"#).await;
        let poll = Poll {
            url: elsewhere,
            retry_after: None,
        };
        let outcome = poller(&arm)
            .wait(poll, Duration::from_secs(5), &|_| {})
            .await
            .expect("an outcome");
        assert!(
            matches!(&outcome, Outcome::Failed(e) if e.code == "UntrustedOperationUrl"),
            "the other host was trusted"
        );
        assert_eq!(
            asked.load(Ordering::SeqCst),
            0,
            "the token went to the other host"
        );
        // The control: the same answer on ARM's own host is followed.
        let poll = Poll {
            url: arm.clone(),
            retry_after: None,
        };
        let outcome = poller(&arm)
            .wait(poll, Duration::from_secs(5), &|_| {})
            .await;
        assert!(matches!(outcome, Ok(Outcome::Succeeded)));
    }

    #[tokio::test]
    async fn a_huge_retry_after_does_not_outlast_the_wait_limit() {
        let (arm, _) = server("200 OK\r\nretry-after: 86400", r#"{"status":"InProgress"}"#).await;
        let poll = Poll {
            url: arm.clone(),
            retry_after: Some(Duration::from_secs(86_400)),
        };
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            poller(&arm).wait(poll, Duration::from_secs(1), &|_| {}),
        )
        .await
        .expect("the wait ends at its limit, not at Retry-After");
        assert!(matches!(waited, Ok(Outcome::TimedOut(_))));
    }

    #[tokio::test]
    async fn a_refused_poll_ends_the_wait_with_arms_message() {
        let (arm, asked) = server(
            "403 Forbidden",
            r#"{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization"}}"#,
        )
        .await;
        let poll = Poll {
            url: arm.clone(),
            retry_after: None,
        };
        let outcome = poller(&arm)
            .wait(poll, Duration::from_secs(10), &|_| {})
            .await
            .expect("an outcome");
        match outcome {
            Outcome::Failed(e) => {
                assert_eq!(e.code, "AuthorizationFailed");
                assert!(e.message.contains("authorization"), "{}", e.message);
            }
            _ => panic!("a 403 was polled again"),
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }
}
