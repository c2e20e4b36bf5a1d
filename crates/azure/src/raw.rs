//! Reading ARM's answers as JSON.

use serde_json::Value;

/// A resource read as JSON, not through the typed models: ARM answers members the models
/// cannot hold (a connection's gateways as ids only, though the models require their
/// `properties`: azure-rest-api-specs #755, #850), and what dxvpn does not know must survive.
pub(crate) async fn json_body(response: azure_core::Response) -> azure_core::Result<Value> {
    let bytes = response.into_body().collect().await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::DataConversion, e))
}
