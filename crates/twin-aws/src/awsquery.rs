//! The answers of the AWS Query protocol that IAM and SNS speak: `<ActionResponse
//! xmlns=NAMESPACE><ActionResult>...</ActionResult><ResponseMetadata>` on success,
//! `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code><Message>` on failure, lists as
//! `<member>` items (the SDKs' `aws_smithy_query` parsers read exactly these).

use std::fmt::Write as _;

use quick_xml::escape::escape;

/// A Query protocol error: HTTP status, code and message.
#[derive(Debug)]
pub(crate) struct QueryError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// A tiny XML writer for Query shapes: `<Name>text</Name>` and `<member>` lists.
#[derive(Default)]
pub(crate) struct Out(pub(crate) String);

impl Out {
    pub(crate) fn field(&mut self, name: &str, text: &str) -> &mut Self {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(text));
        self
    }

    pub(crate) fn members<T>(
        &mut self,
        name: &str,
        items: &[T],
        each: impl Fn(&mut Out, &T),
    ) -> &mut Self {
        let _ = write!(self.0, "<{name}>");
        for item in items {
            self.0.push_str("<member>");
            each(self, item);
            self.0.push_str("</member>");
        }
        let _ = write!(self.0, "</{name}>");
        self
    }
}

/// The whole success document of `action`.
pub(crate) fn response(
    namespace: &str,
    action: &str,
    result: Option<&str>,
    request_id: &str,
) -> String {
    let result = result
        .map(|r| format!("<{action}Result>{r}</{action}Result>"))
        .unwrap_or_default();
    format!(
        "<{action}Response xmlns=\"{namespace}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// The error document, with `Type` Sender (4xx) or Receiver (5xx).
pub(crate) fn error_response(
    namespace: &str,
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
) -> String {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    format!(
        "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(code),
        escape(message)
    )
}
