//! The AWS twin: an HTTP server speaking the EC2 Query protocol (API 2016-11-15) for the VPN
//! subset dxvpn uses, Route 53 Resolver's awsJson1_1 (API 2018-04-01), SSM's GetParameter and
//! IAM's Query protocol (API 2010-05-08, roles and instance profiles), SNS's (API 2010-03-31,
//! topics and e-mail subscriptions) and CloudWatch's metric alarms and GetMetricData (Smithy
//! RPC v2 CBOR, over the tunnels' TunnelState and byte counters) on the same port,
//! wire-compatible with the AWS SDKs pointed at it with `endpoint_url`.
//!
//! It enforces AWS's documented rules and error codes (cloud-apis.md section 1), scales real
//! operation durations by a time factor, and accepts injected faults through the `/_dxvpn`
//! admin routes of `dxvpn-twin-kit`. [`ec2`] holds the inventory, one module per resource
//! family; [`resolver`] is Route 53 Resolver; `iam` holds roles and instance profiles;
//! `query` reads the Query protocol's parameters and
//! `xml` writes its answers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dxvpn_twin_kit::TwinError> {
//! use dxvpn_twin_aws::{AwsScenario, AwsTwin};
//!
//! let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
//! // time factor 0: every state change is instant.
//! let twin = AwsTwin::start(any_port, &AwsScenario::default(), 0.0).await?;
//! println!("point aws-sdk-ec2 at {} (VPC {})", twin.endpoint, twin.seeded.vpc_id);
//! twin.stop().await;
//! # Ok(()) }
//! ```

mod awsquery;
mod cloudwatch;
mod ec2;
mod iam;
mod pacing;
mod query;
mod resolver;
mod sns;
mod ssm;
mod xml;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use dxvpn_twin_kit::admin::{self, AdminState, lock};
pub use dxvpn_twin_kit::faults::{Fault, FaultKind, Tamper};
use dxvpn_twin_kit::faults::{FaultBook, dropped_response, stalled_response};
use dxvpn_twin_kit::pace::{Pace, PaceSetting};
use dxvpn_twin_kit::seed::{SEED_VARIABLE, twin_seed};
use dxvpn_twin_kit::views::{AwsView, DnsRules};
use dxvpn_twin_kit::{Server, TwinError};
pub use ec2::{AwsScenario, OtherVpc, READ_LAG_MAX, SeededIds, SeededVpc, TunnelTelemetry};
use ec2::{Ec2, Ec2Error, is_mutating};
use pacing::Service;
use query::Params;
use resolver::{Resolver, ResolverError};

#[derive(Debug)]
struct TwinState {
    ec2: Ec2,
    resolver: Resolver,
    iam: iam::Iam,
    cloudwatch: cloudwatch::CloudWatch,
    sns: sns::Sns,
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

    fn inventory(&mut self) -> serde_json::Value {
        let mut inventory = self.ec2.inventory();
        if let Some(all) = inventory.as_object_mut() {
            for part in [
                self.resolver.inventory(),
                self.iam.inventory(),
                self.cloudwatch.inventory(),
                serde_json::json!({ "topics": self.sns.inventory() }),
            ] {
                if let serde_json::Value::Object(part) = part {
                    all.extend(part);
                }
            }
        }
        inventory
    }

    fn tamper(&mut self, tamper: &Tamper) -> bool {
        self.ec2.tamper(tamper)
    }
}

type Shared = Arc<Mutex<TwinState>>;

/// A running AWS twin.
#[derive(Debug)]
pub struct AwsTwin {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub endpoint: String,
    /// The VPC, subnets and route tables it was seeded with.
    pub seeded: SeededIds,
    state: Shared,
    server: Server,
}

impl AwsTwin {
    /// Starts the twin on `addr` (port 0 picks a free port), seeded from `scenario`. Every real
    /// duration is multiplied by `time_factor` (1.0 = as slow as AWS; 0.0 = instant).
    /// Undocumented orders and choices follow `DXVPN_TWIN_SEED`, or a random seed
    /// ([`dxvpn_twin_kit::seed`]), which [`SeededIds::seed`] and the log give.
    pub async fn start(
        addr: SocketAddr,
        scenario: &AwsScenario,
        time_factor: f64,
    ) -> Result<Self, TwinError> {
        Self::start_seeded(addr, scenario, time_factor, twin_seed()).await
    }

    /// [`AwsTwin::start`] with the seed of its undocumented choices given.
    pub async fn start_seeded(
        addr: SocketAddr,
        scenario: &AwsScenario,
        time_factor: f64,
        seed: u64,
    ) -> Result<Self, TwinError> {
        tracing::info!(
            seed,
            "AWS twin: undocumented orders are seeded; {SEED_VARIABLE}={seed} replays them"
        );
        let ec2 = Ec2::new(scenario, time_factor, seed);
        let seeded = ec2.seeded.clone();
        let state: Shared = Arc::new(Mutex::new(TwinState {
            ec2,
            resolver: Resolver::new(&scenario.region, time_factor, seed),
            iam: iam::Iam::new(time_factor, seed),
            cloudwatch: cloudwatch::CloudWatch::new(&scenario.region, time_factor, seed),
            sns: sns::Sns::new(&scenario.region, seed),
            faults: FaultBook::default(),
            pace: Pace::default(),
        }));
        let app = Router::new()
            .route("/", post(ec2_call).get(ec2_call))
            .route(
                &format!("{}{{operation}}", cloudwatch::wire::PATH_PREFIX),
                post(cloudwatch_call),
            )
            .with_state(state.clone())
            .merge(admin::routes(state.clone()));
        let server = Server::start(addr, app, "AWS twin").await?;
        Ok(AwsTwin {
            endpoint: server.endpoint.clone(),
            seeded,
            state,
            server,
        })
    }

    /// Queues a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push(fault);
    }

    /// From now on, every call fails at random with probability `rate`: a server error,
    /// throttling, or a dropped connection (half of those after the call took effect).
    /// `seed` makes a run replayable; a rate of 0 stops it.
    pub fn set_chaos(&self, rate: f64, seed: u64) {
        lock(&self.state).faults.set_chaos(rate, seed);
    }

    /// From now on, calls take the drawn times of `setting` and EC2 throttles as it sets.
    pub fn set_pace(&self, setting: PaceSetting) {
        lock(&self.state).pace.set(setting);
    }

    /// How many faults the chaos has injected so far.
    pub fn chaos_injected(&self) -> u32 {
        lock(&self.state).faults.chaos_injected()
    }

    /// Everything the twin holds now (no keys), and the calls it has answered.
    pub fn inventory(&self) -> serde_json::Value {
        admin::inventory_of(&mut *lock(&self.state))
    }

    /// How many calls of mutating actions (everything but Describe*, Get*, List*) the twin has
    /// answered.
    pub fn mutating_calls(&self) -> u32 {
        lock(&self.state).faults.mutating_calls(is_mutating)
    }

    /// The DNS endpoints and forwarding rules Route 53 Resolver applies to the seeded VPC now.
    pub fn dns_view(&self) -> DnsRules {
        let state = lock(&self.state);
        state.resolver.lab_view(&state.ec2.seeded.vpc_id)
    }

    /// The tunnels as AWS holds them, keys included, for the data plane (in memory only).
    pub fn lab_view(&self) -> AwsView {
        lock(&self.state).ec2.lab_view()
    }

    /// Replaces every tunnel's telemetry with what the data plane reports (absent: DOWN).
    pub fn set_telemetry(
        &self,
        reports: &std::collections::BTreeMap<std::net::Ipv4Addr, TunnelTelemetry>,
    ) {
        let mut state = lock(&self.state);
        state.ec2.set_telemetry(reports);
        let tunnels = state.ec2.tunnel_states();
        state
            .cloudwatch
            .record_tunnels(&tunnels, std::time::Instant::now());
    }

    /// Applies a test hook; false when no live tunnel has that outside address.
    pub fn tamper(&self, tamper: &Tamper) -> bool {
        lock(&self.state).ec2.tamper(tamper)
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn request_id() -> String {
    let n: u128 = rand::random();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn ec2_call(
    State(state): State<Shared>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = request_id();
    if let Some(target) = headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default().to_owned();
        let action = target.rsplit('.').next().unwrap_or_default();
        let _ = pacing::pace(
            &state,
            Service::Other,
            action,
            resolver::is_mutating(action),
        )
        .await;
        return resolver_call(&state, &id, &target, &body);
    }
    let params = if method == Method::GET {
        Params::parse(query.unwrap_or_default().as_bytes())
    } else {
        Params::parse(&body)
    };
    let Some(action) = params.get("Action").map(str::to_owned) else {
        return ec2_error(
            &id,
            Ec2Error {
                status: 400,
                code: "MissingAction".into(),
                message: "The request must contain the parameter Action".into(),
            },
        );
    };
    let service = match params.get("Version") {
        Some(IAM_VERSION | sns::SNS_VERSION) => Service::Other,
        _ => Service::Ec2,
    };
    if let Err(retry_after) = pacing::pace(&state, service, &action, is_mutating(&action)).await {
        tracing::debug!(%action, ?retry_after, "throttled");
        return request_limit_exceeded(&id, "Request limit exceeded.");
    }
    // IAM shares the Query protocol and tells itself apart by its API version.
    if params.get("Version") == Some(IAM_VERSION) {
        return query_call(
            &state,
            (&id, &action, &params),
            iam::IAM_NAMESPACE,
            |s, action, params| s.iam.handle(action, params),
        );
    }
    // So does SNS.
    if params.get("Version") == Some(sns::SNS_VERSION) {
        return query_call(
            &state,
            (&id, &action, &params),
            sns::SNS_NAMESPACE,
            |s, action, params| s.sns.handle(action, params),
        );
    }
    let mut state = lock(&state);
    let fault = state.faults.on_call(&action, is_mutating);
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_effect) {
        tracing::debug!(%action, ?fault, "injected fault");
        return fault_response(&id, &fault.kind);
    }
    if matches!(
        action.as_str(),
        "RunInstances" | "AssociateIamInstanceProfile" | "ReplaceIamInstanceProfileAssociation"
    ) {
        // EC2 takes a profile only once it has learnt of it from IAM.
        let profile = params
            .get("IamInstanceProfile.Arn")
            .or(params.get("IamInstanceProfile.Name"));
        match profile.map(|p| state.iam.for_ec2(p)).transpose() {
            Ok(found) => state.ec2.launch_profile = found,
            Err(message) => {
                return ec2_error(
                    &id,
                    Ec2Error {
                        status: 400,
                        code: "InvalidParameterValue".into(),
                        message,
                    },
                );
            }
        }
    }
    let result = if action == "DeleteSecurityGroup"
        && let Some(endpoint) = params
            .get("GroupId")
            .and_then(|g| state.resolver.uses_security_group(g))
    {
        Err(Ec2Error {
            status: 400,
            code: "DependencyViolation".into(),
            message: format!("resource sg has a dependent object: {endpoint}"),
        })
    } else {
        state.ec2.handle(&action, &params)
    };
    drop(state);
    if let Some(fault) = fault {
        tracing::debug!(%action, ?fault, "injected fault after the effect");
        return fault_response(&id, &fault.kind);
    }
    match result {
        Ok(xml) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/xml;charset=UTF-8"),
                (
                    header::HeaderName::from_static("x-amzn-requestid"),
                    id.as_str(),
                ),
                (
                    header::HeaderName::from_static("x-amz-request-id"),
                    id.as_str(),
                ),
            ],
            xml.response(&action, &id),
        )
            .into_response(),
        Err(e) => ec2_error(&id, e),
    }
}

/// One CloudWatch call (Smithy RPC v2 CBOR; `cloudwatch::wire` has the protocol). EC2's
/// tunnels publish their TunnelState first, so an alarm read now sees them as they are.
async fn cloudwatch_call(
    State(state): State<Shared>,
    axum::extract::Path(operation): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    use cloudwatch::wire::{self, CwError};
    let id = request_id();
    let input = match wire::parse(&body) {
        Ok(input) => input,
        Err(e) => return wire::error(&id, &e),
    };
    let _ = pacing::pace(&state, Service::Other, &operation, is_mutating(&operation)).await;
    let mut state = lock(&state);
    let fault = state.faults.on_call(&operation, is_mutating);
    let answer_fault = |kind: &FaultKind| {
        let e = |status, code, message: &str| CwError {
            status,
            code,
            message: message.to_owned(),
        };
        match kind {
            FaultKind::Error { message, .. } | FaultKind::LroFailed { message, .. } => {
                wire::error(&id, &e(400, "InvalidParameterValue", message))
            }
            // The Query protocol's codes, which CloudWatch keeps (`@awsQueryCompatible`):
            // InternalServiceFault is `InternalServiceError` (500), throttling `Throttling`.
            FaultKind::ServerError => wire::error(
                &id,
                &e(500, "InternalServiceError", "internal error (injected)"),
            ),
            FaultKind::Throttle => {
                wire::error(&id, &e(400, "Throttling", "Rate exceeded (injected)"))
            }
            FaultKind::Drop => dropped_response(),
            FaultKind::Stall => stalled_response(),
        }
    };
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_effect) {
        return answer_fault(&fault.kind);
    }
    let tunnels = state.ec2.tunnel_states();
    state
        .cloudwatch
        .record_tunnels(&tunnels, std::time::Instant::now());
    let result = state.cloudwatch.handle(&operation, &input);
    drop(state);
    if let Some(fault) = fault {
        return answer_fault(&fault.kind);
    }
    match result {
        Ok(output) => wire::ok(&id, output),
        Err(e) => wire::error(&id, &e),
    }
}

/// The IAM API version, the `Version` of every IAM call.
const IAM_VERSION: &str = "2010-05-08";

/// One call of a Query service other than EC2 (XML answers in `namespace`): IAM (`iam` has
/// its rules) or SNS (`sns`), run by `handle`.
fn query_call(
    state: &Shared,
    (id, action, params): (&str, &str, &Params),
    namespace: &str,
    handle: fn(&mut TwinState, &str, &Params) -> Result<Option<String>, awsquery::QueryError>,
) -> Response {
    let mut state = lock(state);
    let fault = state.faults.on_call(action, is_mutating);
    let respond = |status: u16, body: String| {
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            [
                (header::CONTENT_TYPE, "text/xml"),
                (header::HeaderName::from_static("x-amzn-requestid"), id),
            ],
            body,
        )
            .into_response()
    };
    let error = |e: &awsquery::QueryError| {
        respond(
            e.status,
            awsquery::error_response(namespace, e.status, e.code, &e.message, id),
        )
    };
    let fault_answer = |kind: &FaultKind| {
        let e = |status, code, message: &str| awsquery::QueryError {
            status,
            code,
            message: message.to_owned(),
        };
        match kind {
            FaultKind::Error { message, .. } | FaultKind::LroFailed { message, .. } => {
                Some(e(400, "InvalidInput", message))
            }
            FaultKind::ServerError => Some(e(500, "ServiceFailure", "internal error (injected)")),
            // The Query protocol's throttling answer ("Common Errors" of IAM's and SNS's
            // API references).
            FaultKind::Throttle => Some(e(400, "Throttling", "Rate exceeded (injected)")),
            FaultKind::Drop | FaultKind::Stall => None,
        }
    };
    let answer_fault = |kind: &FaultKind| match fault_answer(kind) {
        Some(e) => error(&e),
        None if matches!(kind, FaultKind::Drop) => dropped_response(),
        None => stalled_response(),
    };
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_effect) {
        return answer_fault(&fault.kind);
    }
    let result = handle(&mut state, action, params);
    drop(state);
    if let Some(fault) = fault {
        return answer_fault(&fault.kind);
    }
    match result {
        Ok(out) => respond(
            200,
            awsquery::response(namespace, action, out.as_deref(), id),
        ),
        Err(e) => error(&e),
    }
}

/// One awsJson1_1 call: `X-Amz-Target: Route53Resolver.<Operation>` or `AmazonSSM.<Operation>`,
/// JSON in and out, errors as `{"__type", "message"}` with 400.
fn resolver_call(state: &Shared, id: &str, target: &str, body: &[u8]) -> Response {
    let ssm_action = target.strip_prefix("AmazonSSM.");
    let Some(action) = target.strip_prefix("Route53Resolver.").or(ssm_action) else {
        return resolver_error(
            id,
            400,
            &ResolverError {
                code: "UnknownOperationException",
                message: format!("{target} is not served by the dxvpn AWS twin"),
            },
        );
    };
    let body: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return resolver_error(
                id,
                400,
                &ResolverError {
                    code: "SerializationException",
                    message: e.to_string(),
                },
            );
        }
    };
    let mut state = lock(state);
    let fault = state.faults.on_call(action, resolver::is_mutating);
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_effect) {
        tracing::debug!(%action, ?fault, "injected fault");
        return resolver_fault(id, &fault.kind);
    }
    let TwinState { ec2, resolver, .. } = &mut *state;
    let result = match ssm_action {
        Some(action) => ssm::handle(action, &body, ec2).map_err(|e| ResolverError {
            code: e.code,
            message: e.message,
        }),
        None => resolver.handle(action, &body, ec2),
    };
    drop(state);
    if let Some(fault) = fault {
        return resolver_fault(id, &fault.kind);
    }
    match result {
        Ok(out) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
                (header::HeaderName::from_static("x-amzn-requestid"), id),
            ],
            out.to_string(),
        )
            .into_response(),
        Err(e) => resolver_error(id, 400, &e),
    }
}

fn resolver_error(id: &str, status: u16, e: &ResolverError) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [
            (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
            (header::HeaderName::from_static("x-amzn-requestid"), id),
        ],
        serde_json::json!({"__type": e.code, "message": e.message}).to_string(),
    )
        .into_response()
}

fn resolver_fault(id: &str, kind: &FaultKind) -> Response {
    let error = |code: &'static str, message: &str| ResolverError {
        code,
        message: message.to_owned(),
    };
    match kind {
        FaultKind::Error { message, .. } | FaultKind::LroFailed { message, .. } => {
            resolver_error(id, 400, &error("InvalidRequestException", message))
        }
        // Route 53 Resolver documents every error as a 400, throttling and internal ones too.
        FaultKind::ServerError => resolver_error(
            id,
            400,
            &error("InternalServiceErrorException", "internal error (injected)"),
        ),
        FaultKind::Throttle => resolver_error(
            id,
            400,
            &error("ThrottlingException", "Rate exceeded (injected)"),
        ),
        FaultKind::Drop => dropped_response(),
        FaultKind::Stall => stalled_response(),
    }
}

fn ec2_error(id: &str, e: Ec2Error) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml;charset=UTF-8"),
            (header::HeaderName::from_static("x-amzn-requestid"), id),
            (header::HeaderName::from_static("x-amz-request-id"), id),
        ],
        xml::error(&e.code, &e.message, id),
    )
        .into_response()
}

/// EC2's throttling answer: `RequestLimitExceeded` is one of the common client error codes,
/// which come with a 400-series status ("Error codes for the Amazon EC2 API"); the SDKs know it
/// as throttling by its code.
fn request_limit_exceeded(id: &str, message: &str) -> Response {
    ec2_error(
        id,
        Ec2Error {
            status: 400,
            code: "RequestLimitExceeded".into(),
            message: message.into(),
        },
    )
}

fn fault_response(id: &str, kind: &FaultKind) -> Response {
    match kind {
        FaultKind::Error { code, message } | FaultKind::LroFailed { code, message } => ec2_error(
            id,
            Ec2Error {
                status: 400,
                code: code.clone(),
                message: message.clone(),
            },
        ),
        FaultKind::ServerError => ec2_error(
            id,
            Ec2Error {
                status: 500,
                code: "InternalError".into(),
                message: "An internal error has occurred (injected)".into(),
            },
        ),
        FaultKind::Throttle => request_limit_exceeded(id, "Request limit exceeded (injected)"),
        FaultKind::Drop => dropped_response(),
        FaultKind::Stall => stalled_response(),
    }
}
