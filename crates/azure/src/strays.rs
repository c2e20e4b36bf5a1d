//! This deployment's Azure resources that the plan does not have (a shrunk config, managed DNS
//! moved to forwarders, a zone dropped): found by listing the resource group's connections,
//! local network gateways, public IPs, DNS resolvers and rulesets, metric alerts, forwarder VMs with their
//! interfaces and security groups, the endpoints, forwarding rules and links under them, and
//! the VNet's subnets, and keeping those marked as this deployment's (its tags; a forwarding
//! rule's or link's metadata; a subnet's delegation name or security group, as subnets have no
//! tags) whose names the plan does not give.

use std::time::Duration;

use azure_core::Method;
use serde_json::Value;

use crate::dns::marked_subnet;
use crate::error::{api, is_not_found};
use crate::forwarder_vm::{COMPUTE_API_VERSION, nic_name};
use crate::kind::Kind;
use crate::raw::{DNS_API_VERSION, NETWORK_API_VERSION, json_body};
use crate::{Azure, AzureError, Cloud, Plan, RESOURCE_ATTEMPTS};

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
    /// The resource it lives under (a subnet's VNet, an endpoint's resolver), or empty.
    parent: String,
}

impl AzureStray {
    /// The delete that lets `up` create `resource` anew, when Azure cannot change it in place
    /// and dxvpn replaces it (a forwarder VM whose configuration or image changed).
    pub fn replaced(resource: &dxvpn_plan::model::Resource, reason: &str) -> Option<Self> {
        (resource.cloud == dxvpn_plan::Cloud::Azure
            && Kind::of(&resource.spec) == Some(Kind::VirtualMachine))
        .then(|| AzureStray {
            role: resource.role.clone(),
            name: resource.name.clone(),
            reason: reason.to_owned(),
            kind: Kind::VirtualMachine,
            parent: String::new(),
        })
    }

    /// A public IP goes only after the gateway has let go of it (its `up` or its `down`);
    /// everything else goes first.
    pub fn after_the_gateway(&self) -> bool {
        self.kind == Kind::PublicIp
    }

    /// Where it goes in the order of deletes, lowest first: a resource before the one it
    /// holds. 1: metric alerts (they watch the gateway), connections (then, listed after them,
    /// local network gateways), forwarding rules and VNet links; 2: rulesets (a ruleset names its outbound endpoint); 3: endpoints;
    /// 4: resolvers; 5: subnets; 6: public IPs and security groups. A forwarder VM (1) goes
    /// before its interface (2), which holds an address in a subnet.
    pub fn rank(&self) -> u8 {
        match self.kind {
            Kind::Connection
            | Kind::LocalGateway
            | Kind::ForwardingRule
            | Kind::VnetLink
            | Kind::VirtualMachine
            | Kind::MetricAlert => 1,
            // The alerts name it.
            Kind::ActionGroup => 2,
            Kind::Ruleset | Kind::NetworkInterface => 2,
            Kind::InboundEndpoint | Kind::OutboundEndpoint => 3,
            Kind::DnsResolver => 4,
            Kind::Subnet => 5,
            Kind::PublicIp | Kind::Gateway | Kind::SecurityGroup => 6,
        }
    }
}

/// The kinds listed in the resource group, dependents first: a connection holds its local
/// network gateway.
pub(crate) const LISTED: [Kind; 10] = [
    Kind::MetricAlert,
    Kind::ActionGroup,
    Kind::VirtualMachine,
    Kind::NetworkInterface,
    Kind::Connection,
    Kind::LocalGateway,
    Kind::PublicIp,
    Kind::DnsResolver,
    Kind::Ruleset,
    Kind::SecurityGroup,
];

/// A member of a listed item, by JSON pointer; keys with a `/` are escaped.
fn member(item: &Value, at: &str, key: &str) -> Option<String> {
    item.pointer(&format!(
        "{at}/{}",
        key.replace('~', "~0").replace('/', "~1")
    ))
    .and_then(Value::as_str)
    .map(str::to_owned)
}

impl Azure {
    /// This deployment's resources in the resource group that the plan does not have,
    /// dependents first.
    pub async fn strays(&self, plan: &Plan) -> Result<Vec<AzureStray>, AzureError> {
        let mut strays = Vec::new();
        let mut resolvers = Vec::new();
        let mut rulesets = Vec::new();
        let mut groups = Vec::new();
        // Every list at once: the lists do not depend on one another, the children's on their
        // parents' only.
        let vnet = plan.azure.vnet_name.as_str();
        let tops = futures_util::future::join_all(LISTED.iter().map(|kind| self.list(*kind, "")));
        let (tops, subnets) = tokio::join!(tops, self.list(Kind::Subnet, vnet));
        for (kind, items) in LISTED.iter().copied().zip(tops) {
            for item in items? {
                if member(&item, "/tags", "dxvpn:deployment").as_deref() != Some(&plan.name) {
                    continue;
                }
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                match kind {
                    Kind::DnsResolver => resolvers.push(name.to_owned()),
                    Kind::Ruleset => rulesets.push(name.to_owned()),
                    Kind::SecurityGroup => groups.push(name.to_owned()),
                    _ => {}
                }
                let role = member(&item, "/tags", "dxvpn:role");
                self.keep_stray(plan, &mut strays, (kind, ""), name, role);
            }
        }
        // Under this deployment's resolvers and rulesets, planned or stray.
        let children: Vec<(Kind, &String, &str)> = [
            (Kind::InboundEndpoint, &resolvers, "/tags"),
            (Kind::OutboundEndpoint, &resolvers, "/tags"),
            (Kind::ForwardingRule, &rulesets, "/properties/metadata"),
            (Kind::VnetLink, &rulesets, "/properties/metadata"),
        ]
        .into_iter()
        .flat_map(|(kind, parents, marks)| parents.iter().map(move |p| (kind, p, marks)))
        .collect();
        let lists = children
            .iter()
            .map(|(kind, parent, _)| self.list(*kind, parent));
        let lists = futures_util::future::join_all(lists).await;
        for ((kind, parent, marks), items) in children.iter().zip(lists) {
            for item in items? {
                if member(&item, marks, "dxvpn:deployment").as_deref() != Some(&plan.name) {
                    continue;
                }
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                let role = member(&item, marks, "dxvpn:role");
                self.keep_stray(plan, &mut strays, (*kind, parent), name, role);
            }
        }
        for item in subnets? {
            if !marked_subnet(plan, &item, &groups) {
                continue;
            }
            let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
            // No tags: the role follows from the name dxvpn gave it.
            let role = name
                .strip_prefix(&format!("{}-snet-dns-", plan.name))
                .map(|rest| format!("azure.dns_subnet.{rest}"));
            self.keep_stray(plan, &mut strays, (Kind::Subnet, vnet), name, role);
        }
        strays.sort_by_key(AzureStray::rank);
        Ok(strays)
    }

    /// Adds `name` to `strays` unless the plan has a resource of `kind` by that name.
    fn keep_stray(
        &self,
        plan: &Plan,
        strays: &mut Vec<AzureStray>,
        (kind, parent): (Kind, &str),
        name: &str,
        role: Option<String>,
    ) {
        let mut azure = plan.resources.iter().filter(|r| r.cloud == Cloud::Azure);
        let planned = azure.any(|r| match kind {
            // An interface is the planned VM's.
            Kind::NetworkInterface => {
                Kind::of(&r.spec) == Some(Kind::VirtualMachine)
                    && nic_name(r).eq_ignore_ascii_case(name)
            }
            _ => Kind::of(&r.spec) == Some(kind) && r.name.eq_ignore_ascii_case(name),
        });
        if planned {
            return;
        }
        let role = role.unwrap_or_else(|| kind.type_path().to_owned());
        strays.push(AzureStray {
            reason: format!("{role} is no longer in the plan"),
            role,
            name: name.to_owned(),
            kind,
            parent: parent.to_owned(),
        });
    }

    /// Deletes a stray and waits until it is gone.
    pub async fn delete_stray(&self, stray: &AzureStray) -> Result<(), AzureError> {
        let rg = self.resource_group.clone();
        let mut tries = 1;
        loop {
            match self
                .delete_named(stray.kind, (&rg, &stray.parent, &stray.name), &stray.role)
                .await
                .map(|()| stray.kind == Kind::VirtualMachine)
            {
                // Its interface goes with it (`deleteOption: Delete`), or here if it stayed.
                Ok(true) => return self.delete_nic(&stray.name, &stray.role).await,
                Ok(false) => return Ok(()),
                Err(e) if e.is_transient() && tries < RESOURCE_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every resource of `kind` in the resource group (under `parent` for a child type), as
    /// JSON (the typed models cannot hold a connection as ARM lists it), following `nextLink`
    /// on ARM's own host; each page is asked again after a transient failure. A parent that is
    /// not there has no children.
    pub(crate) async fn list(&self, kind: Kind, parent: &str) -> Result<Vec<Value>, AzureError> {
        match self.prefetched_list(kind, parent).await {
            Some(items) => Ok(items),
            None => self.list_now(kind, parent).await,
        }
    }

    /// [`Azure::list`] from Azure itself.
    pub(crate) async fn list_now(
        &self,
        kind: Kind,
        parent: &str,
    ) -> Result<Vec<Value>, AzureError> {
        let operation = format!("LIST {}", kind.type_path());
        let path = match kind.type_path().split_once('/') {
            Some((parent_type, child)) => format!("{parent_type}/{parent}/{child}"),
            None => kind.type_path().to_owned(),
        };
        let provider = kind.json_api().map_or("Microsoft.Network", |(p, _)| p);
        let mut url = self.endpoint.clone();
        url.set_path(&format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{provider}/{path}",
            self.subscription, self.resource_group,
        ));
        let version = match kind {
            Kind::DnsResolver
            | Kind::InboundEndpoint
            | Kind::OutboundEndpoint
            | Kind::Ruleset
            | Kind::ForwardingRule
            | Kind::VnetLink => DNS_API_VERSION,
            Kind::VirtualMachine => COMPUTE_API_VERSION,
            Kind::MetricAlert => crate::alerts::METRIC_ALERTS_API_VERSION,
            Kind::ActionGroup => crate::alerts::ACTION_GROUPS_API_VERSION,
            _ => NETWORK_API_VERSION,
        };
        url.query_pairs_mut().append_pair("api-version", version);
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let mut tries = 1;
            let page = loop {
                let result = match self.get_page(url.clone()).await {
                    Err(e) if !parent.is_empty() && is_not_found(&e) => {
                        return Ok(Vec::new());
                    }
                    other => other.map_err(api(kind.type_path(), &operation)),
                };
                match result {
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
