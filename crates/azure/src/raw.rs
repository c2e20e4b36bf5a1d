//! Reading and writing ARM's resources as JSON, past the typed models.

use std::time::Duration;

use azure_core::Method;
use azure_core::error::{ErrorKind, HttpError};
use serde_json::Value;

use crate::Azure;

/// The Microsoft.Network api-version of the typed clients (`package_2024_03`): a raw write
/// uses the version of the read it modifies.
pub(crate) const NETWORK_API_VERSION: &str = "2024-03-01";
/// The Microsoft.Network/dnsResolvers api-version of azure_mgmt_dnsresolver's `package_2022_07`.
pub(crate) const DNS_API_VERSION: &str = "2022-07-01";
/// Tries of one raw call, as many as the typed clients' pipeline makes (1 + 7 retries).
const RAW_ATTEMPTS: u32 = 8;

/// A resource read as JSON, not through the typed models: ARM answers members the models
/// cannot hold (a connection's gateways as ids only, though the models require their
/// `properties`: azure-rest-api-specs #755, #850), and what dxvpn does not know must survive.
pub(crate) async fn json_body(response: azure_core::Response) -> azure_core::Result<Value> {
    let bytes = response.into_body().collect().await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::DataConversion, e))
}

impl Azure {
    /// PUTs `body` as it is to the resource `id` (a Microsoft.Network one): the write half of a
    /// read-modify-write of a resource dxvpn does not own, so that every member it read, known
    /// to the typed models or not, goes back unchanged.
    pub(crate) async fn put_json(
        &self,
        id: &str,
        body: &Value,
    ) -> azure_core::Result<azure_core::Response> {
        self.raw_call(Method::Put, id, NETWORK_API_VERSION, Some(body))
            .await
    }

    /// Sends `method` to the resource `id` at `api_version`, with `body` as JSON. Answers as
    /// the SDK's calls do: an unsuccessful status is an HTTP error with ARM's code.
    pub(crate) async fn raw_call(
        &self,
        method: Method,
        id: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> azure_core::Result<azure_core::Response> {
        self.raw_query(method, id, api_version, &[], body).await
    }

    /// [`Azure::raw_call`] with more query parameters after the api-version.
    pub(crate) async fn raw_query(
        &self,
        method: Method,
        id: &str,
        api_version: &str,
        parameters: &[(&str, &str)],
        body: Option<&Value>,
    ) -> azure_core::Result<azure_core::Response> {
        let mut url = self.endpoint.clone();
        url.set_path(id);
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .extend_pairs(parameters);
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| azure_core::Error::new(ErrorKind::DataConversion, e))?;
        // The typed clients' pipeline tries a send 8 times (a connection that failed, 429,
        // 5xx); these calls bypass it, so they try as often themselves. ARM's PUT, GET and
        // DELETE are idempotent, so a retry after a lost answer does no harm.
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let mut request = self.poller.authorized(url.clone(), method).await?;
            if let Some(bytes) = &bytes {
                request.insert_header(azure_core::headers::CONTENT_TYPE, "application/json");
                request.set_body(bytes.clone());
            }
            let backoff = Duration::from_millis(200 << attempt.min(5));
            match self.poller.http.execute_request(&request).await {
                Ok(response) => {
                    let status = response.status();
                    let retryable = status == azure_core::StatusCode::TooManyRequests
                        || u16::from(status) >= 500;
                    if !retryable || attempt >= RAW_ATTEMPTS {
                        break response;
                    }
                    let wait = crate::lro::retry_after(response.headers())
                        .unwrap_or(backoff)
                        .min(crate::lro::MAX_RETRY_AFTER);
                    tokio::time::sleep(wait).await;
                }
                Err(e) if *e.kind() == ErrorKind::Io && attempt < RAW_ATTEMPTS => {
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => return Err(e),
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let error = HttpError::new(response).await;
        let kind = ErrorKind::http_response(status, error.error_code().map(str::to_owned));
        Err(azure_core::Error::full(
            kind,
            error,
            format!("ARM answered {status}"),
        ))
    }
}
