//! CloudWatch's wire protocol in current SDKs: Smithy RPC v2 CBOR. `POST
//! /service/GraniteServiceVersion20100801/operation/<Operation>`, a CBOR map in and out, the
//! `smithy-protocol: rpc-v2-cbor` header on every answer (the SDKs refuse an answer without
//! it), timestamps as tag 1 over epoch seconds, errors as a map with `__type` and `message`,
//! and, because CloudWatch is `@awsQueryCompatible`, the Query protocol's error code in
//! `x-amzn-query-error: <Code>;<Sender|Receiver>`. Sources: the Smithy RPC v2 CBOR
//! specification (smithy.io, "Smithy RPC v2 CBOR protocol"), aws-sdk-cloudwatch's generated
//! `cbor_errors.rs` and `aws_query_compatible_errors.rs`, and the Go SDK's switch of CloudWatch
//! to this protocol (aws-sdk-go-v2 1.52, recounted in c3xdev/c3x#44).

use std::time::SystemTime;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ciborium::Value;

/// The path prefix of every CloudWatch operation.
pub(crate) const PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";

/// A CloudWatch error: its HTTP status, its Query error code and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CwError {
    pub(crate) status: u16,
    /// The Query protocol's code (`InvalidParameterValue`, `MissingParameter`, ...).
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl CwError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CwError {
            status: 400,
            code: "InvalidParameterValue",
            message: message.into(),
        }
    }

    pub(crate) fn missing(parameter: &str) -> Self {
        CwError {
            status: 400,
            code: "MissingParameter",
            message: format!("The parameter {parameter} is required."),
        }
    }

    pub(crate) fn combination(message: impl Into<String>) -> Self {
        CwError {
            status: 400,
            code: "InvalidParameterCombination",
            message: message.into(),
        }
    }
}

/// The request body as a CBOR map; an empty body is an empty input.
pub(crate) fn parse(body: &[u8]) -> Result<Value, CwError> {
    if body.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    match ciborium::from_reader::<Value, _>(body) {
        Ok(map @ Value::Map(_)) => Ok(map),
        Ok(_) => Err(serialization("the request body is not a CBOR map")),
        Err(e) => Err(serialization(&format!("the request body is not CBOR: {e}"))),
    }
}

fn serialization(message: &str) -> CwError {
    CwError {
        status: 400,
        code: "SerializationException",
        message: message.to_owned(),
    }
}

/// Member `key` of a CBOR map.
pub(crate) fn member<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

pub(crate) fn text<'a>(map: &'a Value, key: &str) -> Option<&'a str> {
    member(map, key)?.as_text()
}

pub(crate) fn integer(map: &Value, key: &str) -> Option<i64> {
    let v = member(map, key)?;
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

pub(crate) fn float(map: &Value, key: &str) -> Option<f64> {
    match member(map, key)? {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => i64::try_from(*i).ok().map(|i| i as f64),
        _ => None,
    }
}

pub(crate) fn boolean(map: &Value, key: &str) -> Option<bool> {
    member(map, key)?.as_bool()
}

/// A list of strings (absent: empty).
pub(crate) fn texts(map: &Value, key: &str) -> Vec<String> {
    member(map, key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_text().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A list of maps (absent: empty).
pub(crate) fn maps<'a>(map: &'a Value, key: &str) -> Vec<&'a Value> {
    member(map, key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter(|i| i.is_map()).collect())
        .unwrap_or_default()
}

/// A CBOR map from its members, skipping the absent ones.
pub(crate) fn map(members: Vec<(&str, Option<Value>)>) -> Value {
    Value::Map(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (Value::Text(k.to_owned()), v)))
            .collect(),
    )
}

pub(crate) fn string(s: &str) -> Option<Value> {
    Some(Value::Text(s.to_owned()))
}

pub(crate) fn strings(items: &[String]) -> Option<Value> {
    Some(Value::Array(
        items.iter().map(|s| Value::Text(s.clone())).collect(),
    ))
}

/// A timestamp member: tag 1 over epoch seconds, an integer or a float (Smithy RPC v2 CBOR
/// accepts both).
pub(crate) fn time(map: &Value, key: &str) -> Option<SystemTime> {
    let Value::Tag(1, inner) = member(map, key)? else {
        return None;
    };
    let seconds = match inner.as_ref() {
        Value::Float(f) => *f,
        Value::Integer(i) => i64::try_from(*i).ok()? as f64,
        _ => return None,
    };
    let offset = std::time::Duration::try_from_secs_f64(seconds.abs()).ok()?;
    if seconds >= 0.0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    }
}

/// A timestamp: tag 1 over epoch seconds, with milliseconds.
pub(crate) fn timestamp(at: SystemTime) -> Option<Value> {
    let seconds = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0);
    Some(Value::Tag(1, Box::new(Value::Float(seconds))))
}

fn headers(id: &str) -> [(header::HeaderName, String); 3] {
    [
        (header::CONTENT_TYPE, "application/cbor".to_owned()),
        (
            header::HeaderName::from_static("smithy-protocol"),
            "rpc-v2-cbor".to_owned(),
        ),
        (
            header::HeaderName::from_static("x-amzn-requestid"),
            id.to_owned(),
        ),
    ]
}

/// A 200 with `output` (none: an operation whose output is empty, answered with no body).
pub(crate) fn ok(id: &str, output: Option<Value>) -> Response {
    let mut body = Vec::new();
    if let Some(output) = output
        && ciborium::into_writer(&output, &mut body).is_err()
    {
        body.clear();
    }
    (StatusCode::OK, headers(id), body).into_response()
}

/// An error answer: CBOR `{__type, message}` and the Query code in `x-amzn-query-error`.
pub(crate) fn error(id: &str, e: &CwError) -> Response {
    let fault = if e.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let body = map(vec![
        (
            "__type",
            string(&format!("com.amazonaws.cloudwatch#{}", e.code)),
        ),
        ("message", string(&e.message)),
    ]);
    let mut bytes = Vec::new();
    let _ = ciborium::into_writer(&body, &mut bytes);
    let mut response = (
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        headers(id),
        bytes,
    )
        .into_response();
    if let Ok(value) = header::HeaderValue::from_str(&format!("{};{fault}", e.code)) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-amzn-query-error"), value);
    }
    response
}
