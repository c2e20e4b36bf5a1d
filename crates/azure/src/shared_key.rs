//! A connection's shared key, which only SetSharedKey changes once the connection exists.

use azure_mgmt_network::package_2024_03::models;

use crate::raw::json_body;
use crate::{Azure, AzureError, api};

impl Azure {
    /// The key the connection holds (GetSharedKey, or what [`Azure::prefetch`] read of it);
    /// never logged.
    pub(crate) async fn held_shared_key(
        &self,
        at: (&str, &str, &str),
        role: &str,
    ) -> Result<Option<String>, AzureError> {
        match self.take_prefetched("sharedkey", at).await {
            Some(held) => Ok(held.and_then(|v| v.as_str().map(str::to_owned))),
            None => self.held_shared_key_now(at, role).await,
        }
    }

    /// [`Azure::held_shared_key`] from Azure itself.
    pub(crate) async fn held_shared_key_now(
        &self,
        (rg, _, name): (&str, &str, &str),
        role: &str,
    ) -> Result<Option<String>, AzureError> {
        let operation = "GET connections/sharedkey";
        let response = self
            .network
            .virtual_network_gateway_connections_client()
            .get_shared_key(rg, name, self.subscription.as_str())
            .send()
            .await
            .map_err(api(role, operation))?;
        let answer = json_body(response.into_raw_response())
            .await
            .map_err(api(role, operation))?;
        Ok(answer["value"].as_str().map(str::to_owned))
    }

    /// Gives an existing connection `key` through SetSharedKey (a long-running operation)
    /// when it holds another, then reads it back. The key is compared, never logged.
    pub(crate) async fn ensure_shared_key(
        &self,
        (rg, _, name): (&str, &str, &str),
        role: &str,
        key: &str,
    ) -> Result<(), AzureError> {
        let sub = self.subscription.as_str();
        let connections = self.network.virtual_network_gateway_connections_client();
        let at = (rg, "", name);
        let held = || self.held_shared_key(at, role);
        if held().await?.as_deref() == Some(key) {
            return Ok(());
        }
        let operation = "PUT connections/sharedkey";
        tracing::info!(%role, "setting the shared key");
        self.report(role, "setting the shared key");
        let response = connections
            .set_shared_key(
                rg,
                name,
                models::ConnectionSharedKey::new(key.to_owned()),
                sub,
            )
            .send()
            .await
            .map_err(api(role, operation))?
            .into_raw_response();
        self.settle(response, role, operation).await?;
        if held().await?.as_deref() == Some(key) {
            Ok(())
        } else {
            Err(AzureError::Api {
                role: role.to_owned(),
                operation: operation.to_owned(),
                code: "SharedKeyNotSet".into(),
                message: "the connection holds another key after SetSharedKey".into(),
                transient: true,
            })
        }
    }
}
