//! This deployment's Azure resources that the plan does not have (a shrunk config): found by
//! listing the resource group's connections, local network gateways and public IPs and keeping
//! those tagged with this deployment whose names the plan does not give.

use std::time::Duration;

use azure_core::Method;
use serde_json::Value;

use crate::error::api;
use crate::kind::Kind;
use crate::raw::{NETWORK_API_VERSION, json_body};
use crate::{Azure, AzureError, Plan, RESOURCE_ATTEMPTS};

/// An Azure resource of this deployment that the plan no longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureStray {
    /// The role its `dxvpn:role` tag names.
    pub role: String,
    /// Its name in the resource group.
    pub name: String,
    /// Why it goes.
    pub reason: String,
    kind: Kind,
}

impl AzureStray {
    /// A public IP goes only after the gateway has let go of it (its `up` or its `down`);
    /// connections and local network gateways go first.
    pub fn after_the_gateway(&self) -> bool {
        self.kind == Kind::PublicIp
    }
}

/// The kinds listed, dependents first: a connection holds its local network gateway.
const LISTED: [Kind; 3] = [Kind::Connection, Kind::LocalGateway, Kind::PublicIp];

impl Azure {
    /// This deployment's connections, local network gateways and public IPs in the resource
    /// group that the plan does not have, dependents first.
    pub async fn strays(&self, plan: &Plan) -> Result<Vec<AzureStray>, AzureError> {
        let mut strays = Vec::new();
        for kind in LISTED {
            let planned: Vec<String> = plan
                .resources
                .iter()
                .filter(|r| Kind::of(&r.spec) == Some(kind))
                .map(|r| r.name.to_ascii_lowercase())
                .collect();
            for item in self.list(kind).await? {
                let tag = |key: &str| {
                    item.pointer(&format!("/tags/{}", key.replace('/', "~1")))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                if tag("dxvpn:deployment").as_deref() != Some(plan.name.as_str())
                    || planned.contains(&name.to_ascii_lowercase())
                {
                    continue;
                }
                let role = tag("dxvpn:role").unwrap_or_else(|| kind.type_path().to_owned());
                strays.push(AzureStray {
                    reason: format!("{role} is no longer in the plan"),
                    role,
                    name: name.to_owned(),
                    kind,
                });
            }
        }
        Ok(strays)
    }

    /// Deletes a stray and waits until it is gone.
    pub async fn delete_stray(&self, stray: &AzureStray) -> Result<(), AzureError> {
        let rg = self.resource_group.clone();
        let mut tries = 1;
        loop {
            match self
                .delete_named(stray.kind, (&rg, "", &stray.name), &stray.role)
                .await
            {
                Err(e) if e.is_transient() && tries < RESOURCE_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                    tries += 1;
                }
                done => return done,
            }
        }
    }

    /// Every resource of `kind` in the resource group, as JSON (the typed models cannot hold
    /// a connection as ARM lists it), following `nextLink` on ARM's own host; each page is
    /// asked again after a transient failure.
    async fn list(&self, kind: Kind) -> Result<Vec<Value>, AzureError> {
        let operation = format!("LIST {}", kind.type_path());
        let mut url = self.endpoint.clone();
        url.set_path(&format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{}",
            self.subscription,
            self.resource_group,
            kind.type_path()
        ));
        url.query_pairs_mut()
            .append_pair("api-version", NETWORK_API_VERSION);
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let mut tries = 1;
            let page = loop {
                match self
                    .get_page(url.clone())
                    .await
                    .map_err(api(kind.type_path(), &operation))
                {
                    Err(e) if e.is_transient() && tries < RESOURCE_ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                        tries += 1;
                    }
                    done => break done?,
                }
            };
            if let Some(list) = page.get("value").and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            next = page
                .get("nextLink")
                .and_then(Value::as_str)
                .and_then(|link| azure_core::Url::parse(link).ok())
                // The token goes with the request: only to ARM's own host.
                .filter(|link| {
                    link.scheme() == self.endpoint.scheme()
                        && link.host_str() == self.endpoint.host_str()
                        && link.port_or_known_default() == self.endpoint.port_or_known_default()
                });
        }
        Ok(items)
    }

    async fn get_page(&self, url: azure_core::Url) -> azure_core::Result<Value> {
        let request = self.poller.authorized(url, Method::Get).await?;
        let response = self.poller.http.execute_request(&request).await?;
        let status = response.status();
        if status.is_success() {
            return json_body(response).await;
        }
        let error = azure_core::error::HttpError::new(response).await;
        let kind = azure_core::error::ErrorKind::http_response(
            status,
            error.error_code().map(str::to_owned),
        );
        Err(azure_core::Error::full(
            kind,
            error,
            format!("ARM answered {status}"),
        ))
    }
}
