//! What can go wrong on Azure, and how an SDK error becomes one.

use std::time::Duration;

use dxvpn_plan::MissingInput;

/// What went wrong, with the resource it concerns.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// Azure answered a request with an error.
    #[error("{role}: {operation} failed: {code}: {message}")]
    Api {
        /// Role key of the resource.
        role: String,
        /// What was asked, e.g. `PUT virtualNetworkGateways`.
        operation: String,
        /// ARM error code (or the transport failure).
        code: String,
        /// ARM's message.
        message: String,
        /// Worth asking again: the connection broke, Azure still answered 429 or 5xx after
        /// the SDK's own retries, or it refused a write while another ran
        /// (`AnotherOperationInProgress`).
        transient: bool,
    },
    /// Azure accepted the request, and the long-running operation then failed.
    #[error("{role}: {operation} was accepted, then failed: {code}: {message}")]
    OperationFailed {
        /// Role key of the resource.
        role: String,
        /// What was asked.
        operation: String,
        /// ARM error code of the operation.
        code: String,
        /// ARM's message.
        message: String,
    },
    /// Azure never finished.
    #[error("{role}: {operation} still running after {waited:?}")]
    Timeout {
        /// Role key of the resource.
        role: String,
        /// What was asked.
        operation: String,
        /// How long.
        waited: Duration,
    },
    /// A resource with the planned name exists and does not belong to this deployment.
    #[error(
        "{role}: {id} exists but is not tagged dxvpn:deployment={deployment}; dxvpn does not take over resources it did not make. Rename the deployment or remove that resource."
    )]
    NotOurs {
        /// Role key of the resource.
        role: String,
        /// Its ARM id.
        id: String,
        /// This deployment's name.
        deployment: String,
    },
    /// The existing gateway named in the config cannot carry the tunnels.
    #[error("azure.existing_gateway_id: {id}: {problem}")]
    ExistingGateway {
        /// Its ARM id.
        id: String,
        /// What is wrong, and how to fix it.
        problem: String,
    },
    /// No usable Azure credential.
    #[error(
        "Azure credentials: {0}. Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, run `az login`, or run where a managed identity is assigned."
    )]
    Credential(String),
    /// An input from another resource is not known yet.
    #[error(transparent)]
    MissingInput(#[from] MissingInput),
}

impl AzureError {
    /// Whether asking again may succeed (see [`AzureError::Api`]'s `transient`).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AzureError::Api {
                transient: true,
                ..
            }
        )
    }
}

/// ARM's code for a write refused while another runs on the same resource or its parent.
pub(crate) const ANOTHER_OPERATION: &str = "AnotherOperationInProgress";

pub(crate) fn api(role: &str, operation: &str) -> impl FnOnce(azure_core::Error) -> AzureError {
    let role = role.to_owned();
    let operation = operation.to_owned();
    move |e| {
        let (code, message, transient) = match e.as_http_error() {
            Some(h) => (
                h.error_code()
                    .map_or_else(|| h.status().to_string(), str::to_owned),
                h.error_message().unwrap_or_default().to_owned(),
                h.status() == azure_core::StatusCode::TooManyRequests
                    || u16::from(h.status()) >= 500
                    // ARM serialises writes on a VNet and on a gateway's connections; the
                    // refused one may go once the other ends (terraform-provider-azapi #503).
                    || h.error_code() == Some(ANOTHER_OPERATION),
            ),
            None => (
                "transport".to_owned(),
                e.to_string(),
                *e.kind() == azure_core::error::ErrorKind::Io,
            ),
        };
        AzureError::Api {
            role,
            operation,
            code,
            message,
            transient,
        }
    }
}

/// Reads a synchronous answer to its end.
pub(crate) async fn answered(
    response: azure_core::Response,
    role: &str,
    operation: &str,
) -> Result<(), AzureError> {
    response
        .into_body()
        .collect()
        .await
        .map(drop)
        .map_err(api(role, operation))
}

pub(crate) fn is_not_found(e: &azure_core::Error) -> bool {
    e.as_http_error()
        .is_some_and(|h| h.status() == azure_core::StatusCode::NotFound)
}
