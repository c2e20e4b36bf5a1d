//! Every request to Resource Manager goes through one transport: it counts them (every try,
//! throttled or failed ones too; `dxvpn --stats`) and keeps at most [`IN_FLIGHT`] at once, so
//! that one command's fan-out stays well inside ARM's read bucket (250 tokens, 25 a second per
//! subscription and principal: "Understand how Azure Resource Manager throttles requests").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use azure_core::{HttpClient, Request, Response};

/// Requests in flight at once, at most.
pub(crate) const IN_FLIGHT: usize = 32;

/// The transport of every client of one [`crate::Azure`].
#[derive(Debug)]
pub(crate) struct CountedHttp {
    inner: Arc<dyn HttpClient>,
    calls: AtomicU64,
    gate: tokio::sync::Semaphore,
}

impl CountedHttp {
    /// Over azure_core's own HTTP client.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(CountedHttp {
            inner: azure_core::new_http_client(),
            calls: AtomicU64::new(0),
            gate: tokio::sync::Semaphore::new(IN_FLIGHT),
        })
    }

    /// Requests sent so far.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl HttpClient for CountedHttp {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<Response> {
        // The semaphore is never closed, so acquiring only waits.
        let _turn = self.gate.acquire().await.ok();
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.execute_request(request).await
    }
}
