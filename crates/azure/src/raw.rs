//! Reading and writing ARM's resources as JSON, past the typed models.

use azure_core::Method;
use azure_core::error::{ErrorKind, HttpError};
use serde_json::Value;

use crate::Azure;

/// The Microsoft.Network api-version of the typed clients (`package_2024_03`): a raw write
/// uses the version of the read it modifies.
pub(crate) const NETWORK_API_VERSION: &str = "2024-03-01";
/// The Microsoft.Network/dnsResolvers api-version of azure_mgmt_dnsresolver's `package_2022_07`.
pub(crate) const DNS_API_VERSION: &str = "2022-07-01";

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
        let mut request = self.poller.authorized(url, method).await?;
        if let Some(body) = body {
            request.insert_header(azure_core::headers::CONTENT_TYPE, "application/json");
            let bytes = serde_json::to_vec(body)
                .map_err(|e| azure_core::Error::new(ErrorKind::DataConversion, e))?;
            request.set_body(bytes);
        }
        let response = self.poller.http.execute_request(&request).await?;
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
