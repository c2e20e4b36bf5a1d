//! The EC2 Query protocol's response side: `<ActionResponse xmlns=...>` documents with
//! `<xxxSet><item>` lists, and the `<Response><Errors>` envelope.

use std::fmt::Write;

use quick_xml::escape::escape;

/// The 2016-11-15 namespace every EC2 response root carries.
const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// An XML element tree under construction.
#[derive(Debug, Default)]
pub(crate) struct Xml(String);

impl Xml {
    pub(crate) fn new() -> Self {
        Xml(String::new())
    }

    /// `<name>text</name>`, text escaped.
    pub(crate) fn field(&mut self, name: &str, text: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(text.to_string()));
        self
    }

    /// A field only when there is a value.
    pub(crate) fn maybe(&mut self, name: &str, text: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(text) = text {
            self.field(name, text);
        }
        self
    }

    /// `<name>...</name>` around whatever `inner` writes.
    pub(crate) fn element(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) -> &mut Self {
        let _ = write!(self.0, "<{name}>");
        inner(self);
        let _ = write!(self.0, "</{name}>");
        self
    }

    /// `<name><item>...</item>...</name>`; `<name/>` when empty.
    pub(crate) fn set<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        let mut inner = Xml::new();
        for item in items {
            inner.0.push_str("<item>");
            each(&mut inner, item);
            inner.0.push_str("</item>");
        }
        if inner.0.is_empty() {
            let _ = write!(self.0, "<{name}/>");
        } else {
            let _ = write!(self.0, "<{name}>{}</{name}>", inner.0);
        }
        self
    }

    /// `<tagSet>` of key/value items.
    pub(crate) fn tags<'a>(
        &mut self,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        self.set("tagSet", tags, |x, (k, v)| {
            x.field("key", k).field("value", v);
        })
    }

    /// The whole success document of `action`.
    pub(crate) fn response(self, action: &str, request_id: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NAMESPACE}\"><requestId>{request_id}</requestId>{}</{action}Response>",
            self.0
        )
    }
}

/// The error envelope (HTTP 400 or 5xx); note `RequestID`, not `requestId`.
pub(crate) fn error(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
        escape(code),
        escape(message)
    )
}
