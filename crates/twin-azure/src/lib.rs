//! The Azure twin: an HTTP server speaking Azure Resource Manager for the subset dxvpn uses
//! (Microsoft.Network 2024-03-01: public IPs, virtual networks and subnets, VPN gateways with
//! `getBgpPeerStatus`/`getLearnedRoutes`, local network gateways, connections with `sharedkey`,
//! network security groups and interfaces; the DNS private resolver at 2022-07-01; Microsoft.Compute
//! virtual machines with `instanceView` at 2024-07-01; Microsoft.Insights metrics, metric alerts
//! and action groups), wire-compatible with azure_mgmt_network
//! and azure_mgmt_dnsresolver 0.21 pointed at it with a static token.
//!
//! It follows the ARM contract of cloud-apis.md sections 3-5: PUT answers 201/200 with
//! `Azure-AsyncOperation` and `Retry-After: 0`, states move from `Updating` to `Succeeded` over
//! scaled real durations, DELETE answers 202 and the resource later reads 404 `ResourceNotFound`,
//! errors come as `{"error":{"code","message"}}` with `x-ms-error-code`, and any bearer token is
//! accepted. Faults are injected through the `/_dxvpn` admin routes of `dxvpn-twin-kit`. This
//! file routes ARM paths and runs the long-running-operation contract; `arm` holds the
//! resources, one module per resource type with that type's rules; `kind` names the types and
//! their real durations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dxvpn_twin_kit::TwinError> {
//! use dxvpn_twin_azure::{AzureScenario, AzureTwin};
//!
//! let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
//! // time factor 0: every long-running operation ends at once.
//! let twin = AzureTwin::start(any_port, &AzureScenario::default(), 0.0).await?;
//! println!("point azure_mgmt_network at {} (VNet {})", twin.endpoint, twin.seeded.vnet_id);
//! twin.stop().await;
//! # Ok(()) }
//! ```

mod arm;
mod kind;
mod monitor;
mod pacing;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use arm::{Accepted, Arm, ArmError, OpStatus, bad};
pub use arm::{AzureScenario, AzureSeeded, SeedGateway, SeedSubnet, Telemetry};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use dxvpn_cidr::Ipv4Net;
use dxvpn_twin_kit::admin::{self, AdminState, lock};
pub use dxvpn_twin_kit::faults::{Fault, FaultKind, Tamper};
use dxvpn_twin_kit::faults::{FaultBook, dropped_response, stalled_response};
use dxvpn_twin_kit::pace::{Pace, PaceSetting};
use dxvpn_twin_kit::seed::{SEED_VARIABLE, twin_seed};
use dxvpn_twin_kit::views::{AzureView, DnsRules};
use dxvpn_twin_kit::{Server, TwinError};
use kind::Kind;
use serde_json::{Value, json};

#[derive(Debug)]
struct TwinState {
    arm: Arm,
    monitor: monitor::Monitor,
    alerts: monitor::MetricAlerts,
    faults: FaultBook,
    pace: Pace,
}

impl AdminState for TwinState {
    fn faults(&mut self) -> &mut FaultBook {
        &mut self.faults
    }

    fn pace(&mut self) -> &mut Pace {
        &mut self.pace
    }

    fn inventory(&mut self) -> Value {
        self.arm.sweep();
        let mut inventory = self.arm.inventory();
        inventory["metric_alerts"] = self.alerts.inventory();
        inventory["action_groups"] = self.alerts.groups_inventory();
        inventory
    }

    fn tamper(&mut self, tamper: &Tamper) -> bool {
        self.arm.tamper(tamper)
    }
}

type Shared = Arc<Mutex<TwinState>>;

/// Whether a call (`PUT virtualNetworkGateways`) changes anything.
fn is_mutating(call: &str) -> bool {
    call.starts_with("PUT ")
        || call.starts_with("DELETE ")
        || call.starts_with("PATCH ")
        || call == "POST reset"
}

/// A running Azure twin.
#[derive(Debug)]
pub struct AzureTwin {
    /// `http://127.0.0.1:PORT`, for the ARM clients' endpoint.
    pub endpoint: String,
    /// What the scenario seeded.
    pub seeded: AzureSeeded,
    state: Shared,
    server: Server,
}

impl AzureTwin {
    /// Starts the twin on `addr` (port 0 picks a free port), seeded from `scenario`. Every real
    /// duration is multiplied by `time_factor` (1.0 = as slow as Azure; 0.0 = instant).
    /// Undocumented orders follow `DXVPN_TWIN_SEED`, or a random seed
    /// ([`dxvpn_twin_kit::seed`]), which [`AzureSeeded::seed`] and the log give.
    pub async fn start(
        addr: SocketAddr,
        scenario: &AzureScenario,
        time_factor: f64,
    ) -> Result<Self, TwinError> {
        Self::start_seeded(addr, scenario, time_factor, twin_seed()).await
    }

    /// [`AzureTwin::start`] with the seed of its undocumented choices given.
    pub async fn start_seeded(
        addr: SocketAddr,
        scenario: &AzureScenario,
        time_factor: f64,
        seed: u64,
    ) -> Result<Self, TwinError> {
        tracing::info!(
            seed,
            "Azure twin: undocumented orders are seeded; {SEED_VARIABLE}={seed} replays them"
        );
        let arm = Arm::new(scenario, time_factor, seed).map_err(|e| TwinError::Scenario {
            message: format!("{}: {}", e.code, e.message),
        })?;
        let seeded = arm.seeded.clone();
        let state: Shared = Arc::new(Mutex::new(TwinState {
            arm,
            monitor: monitor::Monitor::default(),
            alerts: monitor::MetricAlerts::default(),
            faults: FaultBook::default(),
            pace: Pace::default(),
        }));
        let app = admin::routes(state.clone())
            .merge(Router::new().fallback(arm_call).with_state(state.clone()));
        let server = Server::start(addr, app, "Azure twin").await?;
        Ok(AzureTwin {
            endpoint: server.endpoint.clone(),
            seeded,
            state,
            server,
        })
    }

    /// Queues a fault. Calls are named `METHOD type`, e.g. `PUT virtualNetworkGateways`,
    /// `DELETE connections`, `POST getBgpPeerStatus`; `*` counts every mutating call.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push(fault);
    }

    /// From now on, every call fails at random with probability `rate`: a server error,
    /// throttling, or a dropped connection (half of those after the call took effect).
    /// `seed` makes a run replayable; a rate of 0 stops it.
    pub fn set_chaos(&self, rate: f64, seed: u64) {
        lock(&self.state).faults.set_chaos(rate, seed);
    }

    /// From now on, calls take the drawn times of `setting` and ARM throttles as it sets.
    pub fn set_pace(&self, setting: PaceSetting) {
        lock(&self.state).pace.set(setting);
    }

    /// How many faults the chaos has injected so far.
    pub fn chaos_injected(&self) -> u32 {
        lock(&self.state).faults.chaos_injected()
    }

    /// Everything the twin holds now (no keys), and the calls it has answered.
    pub fn inventory(&self) -> Value {
        admin::inventory_of(&mut *lock(&self.state))
    }

    /// Ids (lower case) of every resource that exists now.
    pub fn live_ids(&self) -> BTreeSet<String> {
        let mut state = lock(&self.state);
        state.arm.sweep();
        state.arm.live_ids()
    }

    /// Ids (lower case) of what the scenario seeded.
    pub fn seed_ids(&self) -> BTreeSet<String> {
        lock(&self.state).arm.seed_ids().clone()
    }

    /// How many mutating calls (PUT, DELETE, PATCH) the twin has answered.
    pub fn mutating_calls(&self) -> u32 {
        lock(&self.state).faults.mutating_calls(is_mutating)
    }

    /// Reports a connection's status as the data plane sees it (`Connected`, `NotConnected`).
    pub fn set_connection_status(&self, connection: &str, status: &str) {
        lock(&self.state)
            .arm
            .telemetry
            .connection_status
            .insert(connection.to_ascii_lowercase(), status.to_owned());
    }

    /// Reports a BGP session of the gateway: its neighbor, state (`Connected`, `Connecting`...)
    /// and how many routes it received.
    pub fn set_bgp_peer(&self, neighbor: Ipv4Addr, state: &str, routes_received: u32) {
        lock(&self.state)
            .arm
            .telemetry
            .bgp_peers
            .insert(neighbor, (state.to_owned(), routes_received));
    }

    /// Reports the routes the gateway learned over BGP.
    pub fn set_learned_routes(&self, routes: Vec<(Ipv4Net, Ipv4Addr)>) {
        lock(&self.state).arm.telemetry.learned_routes = routes
            .into_iter()
            .map(|(net, hop)| (net, hop, "EBgp".to_owned()))
            .collect();
    }

    /// Replaces everything the data plane reports.
    pub fn set_telemetry(&self, telemetry: Telemetry) {
        let mut state = lock(&self.state);
        state
            .monitor
            .record(&telemetry.connection_bytes, std::time::SystemTime::now());
        state.arm.telemetry = telemetry;
    }

    /// The gateway and its connections as Azure holds them, keys included, for the data plane
    /// (in memory only).
    pub fn lab_view(&self) -> AzureView {
        lock(&self.state).arm.lab_view()
    }

    /// The DNS endpoints and forwarding rules Azure's DNS applies to the seeded VNet now.
    pub fn dns_view(&self) -> DnsRules {
        lock(&self.state).arm.dns_view()
    }

    /// Applies a test hook; false when no live connection points at that outside address.
    pub fn tamper(&self, tamper: &Tamper) -> bool {
        lock(&self.state).arm.tamper(tamper)
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// A request path, split into its ARM parts.
struct ArmPath {
    /// Resource id (or collection path) as the client spelled it.
    id: String,
    kind: Kind,
    /// The path names a collection (list), not one resource.
    collection: bool,
    /// A trailing action: `getBgpPeerStatus`, `getLearnedRoutes`, `sharedkey`.
    action: Option<String>,
}

/// What the path names: a resource, a collection, or a long-running operation's status.
enum Target {
    Resource(ArmPath),
    Operation { id: String, result: bool },
}

const ACTIONS: [&str; 5] = [
    "instanceview",
    "getbgppeerstatus",
    "getlearnedroutes",
    "getadvertisedroutes",
    "sharedkey",
];

fn parse_path(path: &str, rg: &str) -> Result<Target, ArmError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let unknown = || ArmError {
        status: 404,
        code: "InvalidResourceType".into(),
        message: format!("The resource type of '{path}' is not served by the twin."),
    };
    // /subscriptions/{s}/providers/Microsoft.Network/locations/{l}/{operations|...}/{id}
    if segments.len() == 8
        && segments[0].eq_ignore_ascii_case("subscriptions")
        && segments[2].eq_ignore_ascii_case("providers")
        && segments[4].eq_ignore_ascii_case("locations")
    {
        let result = segments[6].to_ascii_lowercase().contains("result");
        return Ok(Target::Operation {
            id: segments[7].to_owned(),
            result,
        });
    }
    if segments.len() < 6
        || !segments[0].eq_ignore_ascii_case("subscriptions")
        || !segments[2].eq_ignore_ascii_case("resourcegroups")
        || !segments[4].eq_ignore_ascii_case("providers")
    {
        return Err(unknown());
    }
    if !segments[3].eq_ignore_ascii_case(rg) {
        return Err(ArmError {
            status: 404,
            code: "ResourceGroupNotFound".into(),
            message: format!("Resource group '{}' could not be found.", segments[3]),
        });
    }
    if !["Microsoft.Network", "Microsoft.Compute"]
        .iter()
        .any(|p| segments[5].eq_ignore_ascii_case(p))
    {
        return Err(ArmError {
            status: 400,
            code: "NoRegisteredProviderFound".into(),
            message: format!(
                "The twin serves Microsoft.Network and Microsoft.Compute only, not '{}'.",
                segments[5]
            ),
        });
    }
    let mut rest = &segments[6..];
    let mut action = None;
    if rest.len() >= 3 {
        let last = rest.len() - 1;
        if ACTIONS.contains(&rest[last].to_ascii_lowercase().as_str()) && last.is_multiple_of(2) {
            action = Some(rest[last].to_owned());
            rest = &rest[..last];
        }
    }
    let types: Vec<&str> = rest.iter().step_by(2).copied().collect();
    let kind = Kind::from_type_path(segments[5], &types.join("/")).ok_or_else(unknown)?;
    Ok(Target::Resource(ArmPath {
        id: format!("/{}", segments[..6 + rest.len()].join("/")),
        kind,
        collection: rest.len() % 2 == 1,
        action,
    }))
}

fn arm_error(e: &ArmError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, Json(json!({ "error": e }))).into_response();
    if let Ok(code) = HeaderValue::from_str(&e.code) {
        response.headers_mut().insert("x-ms-error-code", code);
    }
    response
}

fn fault_response(kind: &FaultKind) -> Response {
    match kind {
        FaultKind::Error { code, message } | FaultKind::LroFailed { code, message } => {
            arm_error(&bad(code, message.clone()))
        }
        FaultKind::ServerError => arm_error(&ArmError {
            status: 500,
            code: "InternalServerError".into(),
            message: "An internal error occurred (injected).".into(),
        }),
        FaultKind::Throttle => {
            let mut response = arm_error(&ArmError {
                status: 429,
                code: "SubscriptionRequestsThrottled".into(),
                message: "Number of write requests for subscription exceeded the limit (injected). Retry after 1 second.".into(),
            });
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        FaultKind::Drop => dropped_response(),
        FaultKind::Stall => stalled_response(),
    }
}

/// Operation URLs carry the api-version of the request that started the operation: each
/// version's official examples show its own (the 2022-07-01 DNS resolver examples'
/// `Azure-AsyncOperation` and `Location` end in `?api-version=2022-07-01`).
fn echo_api_version(response: &mut Response, version: &str) {
    for name in ["azure-asyncoperation", "location"] {
        let Some(url) = response.headers().get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let Some((head, tail)) = url.split_once("api-version=") else {
            continue;
        };
        let rest = tail.find('&').map_or("", |i| &tail[i..]);
        if let Ok(v) = HeaderValue::from_str(&format!("{head}api-version={version}{rest}")) {
            response.headers_mut().insert(name, v);
        }
    }
}

/// Headers that send the client to poll operation `op`.
fn operation_headers(
    response: &mut Response,
    base: &str,
    seeded: &AzureSeeded,
    op: &str,
    dns: bool,
    delete: bool,
) {
    let (status_path, result_path, version) = if dns {
        (
            "dnsResolverOperationStatuses",
            "dnsResolverOperationResults",
            kind::DNS_API,
        )
    } else {
        ("operations", "operationResults", kind::NETWORK_API)
    };
    // Azure names a Compute operation under Microsoft.Compute; a client follows the URL it is
    // given ("Azure-AsyncOperation": poll this URL) and reads nothing from its shape, so one
    // operations path serves every provider here.
    let prefix = format!(
        "{base}/subscriptions/{}/providers/Microsoft.Network/locations/{}",
        seeded.subscription_id, seeded.location
    );
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{prefix}/{status_path}/{op}?api-version={version}"
    )) {
        headers.insert("azure-asyncoperation", v);
    }
    if delete
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{prefix}/{result_path}/{op}?api-version={version}"
        ))
    {
        headers.insert(header::LOCATION, v);
    }
    // Poll at once: the twin's durations are already scaled.
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
}

async fn arm_call(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = format!(
        "http://{}",
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
    );
    if !headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.starts_with("Bearer "))
    {
        let mut response = arm_error(&ArmError {
            status: 401,
            code: "AuthenticationFailed".into(),
            message: "Authentication failed. The 'Authorization' header is missing.".into(),
        });
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    if let Err(throttled) = pacing::pace(&state, &method, uri.path()).await {
        return throttled;
    }
    let mut state = lock(&state);
    if let Some(resource) = monitor::is_metrics_path(uri.path()) {
        if let Some(fault) = state.faults.on_call("GET metrics", is_mutating) {
            return fault_response(&fault.kind);
        }
        let TwinState { arm, monitor, .. } = &mut *state;
        arm.sweep();
        // Each read also publishes the counters as they are now (no growth is a 0).
        monitor.record(
            &arm.telemetry.connection_bytes,
            std::time::SystemTime::now(),
        );
        return match monitor::list_metrics(arm, monitor, resource, &query) {
            Ok(body) => Json(body).into_response(),
            Err(e) => arm_error(&e),
        };
    }
    if let Some((kind, collection, name)) = monitor::alerts_path(uri.path()) {
        let call = format!("{method} {}", kind.path());
        if let Some(fault) = state.faults.on_call(&call, is_mutating) {
            return fault_response(&fault.kind);
        }
        let TwinState { arm, alerts, .. } = &mut *state;
        arm.sweep();
        let version = query.get("api-version").map(String::as_str);
        return match alerts.handle(
            arm,
            method.as_str(),
            (kind, &collection, name.as_deref()),
            version,
            &body,
        ) {
            Ok((code, body)) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                if body.is_null() {
                    status.into_response()
                } else {
                    (status, Json(body)).into_response()
                }
            }
            Err(e) => arm_error(&e),
        };
    }
    let rg = state.arm.seeded.resource_group.clone();
    let target = match parse_path(uri.path(), &rg) {
        Ok(t) => t,
        Err(e) => return arm_error(&e),
    };
    let path = match target {
        Target::Operation { id, result } => {
            let call = "GET operations";
            if let Some(fault) = state.faults.on_call(call, is_mutating) {
                return fault_response(&fault.kind);
            }
            return match state.arm.operation(&id) {
                None => arm_error(&ArmError {
                    status: 404,
                    code: "OperationNotFound".into(),
                    message: format!("Operation {id} was not found."),
                }),
                Some((status, dns)) => {
                    let mut response =
                        operation_response(&status, result, &base, &state.arm.seeded, &id, dns);
                    if let Some(version) = query.get("api-version") {
                        echo_api_version(&mut response, version);
                    }
                    response
                }
            };
        }
        Target::Resource(p) => p,
    };
    let Some(version) = query.get("api-version") else {
        return arm_error(&bad(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    if !path.kind.api_versions().contains(&version.as_str()) {
        return arm_error(&bad(
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{version}' is invalid. The supported versions are '{}'.",
                path.kind.api_versions().join(",")
            ),
        ));
    }
    let call = format!(
        "{method} {}",
        path.action.as_deref().unwrap_or(path.kind.short())
    );
    let fault = state.faults.on_call(&call, is_mutating);
    let mut after_effect = None;
    match fault {
        Some(Fault {
            kind: FaultKind::LroFailed { code, message },
            ..
        }) => {
            tracing::debug!(%call, %code, "injected: the operation will fail");
            state.arm.fail_next = Some(bad(&code, message));
        }
        Some(f) if f.after_effect => after_effect = Some(f),
        Some(f) => {
            tracing::debug!(%call, ?f, "injected fault");
            return fault_response(&f.kind);
        }
        None => {}
    }
    let mut response = handle(&mut state.arm, &method, &path, &query, &body, &base);
    echo_api_version(&mut response, version);
    state.arm.fail_next = None;
    drop(state);
    if let Some(f) = after_effect {
        tracing::debug!(%call, ?f, "injected fault after the effect");
        return fault_response(&f.kind);
    }
    response
}

fn operation_response(
    status: &OpStatus,
    result: bool,
    base: &str,
    seeded: &AzureSeeded,
    id: &str,
    dns: bool,
) -> Response {
    if result {
        // The `Location` flavour: 202 while running, 204 when done, the error when failed.
        return match status {
            OpStatus::InProgress => {
                let mut r = StatusCode::ACCEPTED.into_response();
                operation_headers(&mut r, base, seeded, id, dns, true);
                r
            }
            OpStatus::Succeeded => StatusCode::NO_CONTENT.into_response(),
            OpStatus::Failed(e) => arm_error(e),
        };
    }
    let body = match status {
        OpStatus::InProgress => json!({"id": id, "name": id, "status": "InProgress"}),
        OpStatus::Succeeded => json!({"id": id, "name": id, "status": "Succeeded"}),
        OpStatus::Failed(e) => json!({"id": id, "name": id, "status": "Failed", "error": e}),
    };
    let mut r = (StatusCode::OK, Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
    r
}

fn handle(
    arm: &mut Arm,
    method: &Method,
    path: &ArmPath,
    query: &std::collections::BTreeMap<String, String>,
    body: &Bytes,
    base: &str,
) -> Response {
    let json_body = || -> Result<Value, ArmError> {
        serde_json::from_slice(body).map_err(|e| {
            bad(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {e}"),
            )
        })
    };
    let ok = |v: Value| (StatusCode::OK, Json(v)).into_response();
    let result: Result<Response, ArmError> = (|| match (method.as_str(), &path.action) {
        ("GET", None) if path.collection => arm.list(&path.id, path.kind).map(ok),
        ("GET", None) => arm.get(&path.id, path.kind).map(ok),
        ("PUT", None) if !path.collection => {
            let body = json_body()?;
            arm.check_serialised(&path.id, path.kind, &body)?;
            let accepted = arm.put(&path.id, path.kind, body)?;
            Ok(accepted_response(
                accepted,
                arm,
                base,
                path.kind.is_dns(),
                false,
            ))
        }
        ("DELETE", None) if !path.collection => {
            let accepted = arm.delete(&path.id, path.kind)?;
            Ok(accepted_response(
                accepted,
                arm,
                base,
                path.kind.is_dns(),
                true,
            ))
        }
        ("PATCH", None) if !path.collection => {
            // Tags only, as the APIs in scope allow.
            let patch = json_body()?;
            let mut current = arm.get(&path.id, path.kind)?;
            if let Some(tags) = patch.get("tags") {
                current["tags"] = tags.clone();
            }
            arm.check_serialised(&path.id, path.kind, &current)?;
            let accepted = arm.put(&path.id, path.kind, current)?;
            Ok(ok(accepted.body.unwrap_or_default()))
        }
        // POST actions are answered synchronously: azure_mgmt_network 0.21 cannot follow the
        // real service's Location polling for them.
        ("POST", Some(a)) if a.eq_ignore_ascii_case("getBgpPeerStatus") => arm
            .bgp_peer_status(&path.id, query.get("peer").map(String::as_str))
            .map(ok),
        ("POST", Some(a)) if a.eq_ignore_ascii_case("getLearnedRoutes") => {
            arm.learned_routes(&path.id).map(ok)
        }
        ("GET", Some(a)) if a.eq_ignore_ascii_case("sharedkey") => arm.shared_key(&path.id).map(ok),
        ("GET", Some(a)) if a.eq_ignore_ascii_case("instanceView") => {
            arm.instance_view(&path.id).map(ok)
        }
        ("PUT", Some(a)) if a.eq_ignore_ascii_case("sharedkey") => {
            let accepted = arm.set_shared_key(&path.id, &json_body()?)?;
            Ok(accepted_response(accepted, arm, base, false, false))
        }
        _ => Err(ArmError {
            status: 405,
            code: "MethodNotAllowed".into(),
            message: format!("{method} is not supported on {}.", path.id),
        }),
    })();
    result.unwrap_or_else(|e| arm_error(&e))
}

fn accepted_response(
    accepted: Accepted,
    arm: &Arm,
    base: &str,
    dns: bool,
    delete: bool,
) -> Response {
    let status = StatusCode::from_u16(accepted.status).unwrap_or(StatusCode::OK);
    let mut response = match accepted.body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Some(op) = &accepted.operation {
        operation_headers(&mut response, base, &arm.seeded, op, dns, delete);
    }
    response
}
