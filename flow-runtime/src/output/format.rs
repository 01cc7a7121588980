use crate::output::OutputError;
use std::fmt;
use std::sync::Arc;

/// How a value is turned into the text a sink delivers: JSON, pretty JSON, plain text from a
/// function of yours, or a template (feature `templates`).
///
/// Attach one to a sink with [`Sink::formatted`](crate::output::Sink::formatted); the sink
/// then finds the text in [`Delivery::formatted`](crate::output::Delivery::formatted) (and
/// [`Delivery::payload`](crate::output::Delivery::payload) returns it). A template is parsed
/// when the `Format` is made, so a syntax error is an error of the code that configures the
/// outputs, not a failed delivery at the end of a run.
///
/// ```
/// use flow_runtime::output::Format;
/// use serde_json::json;
///
/// let booking = json!({ "pnr": "X7K2QP", "name": "Ada" });
///
/// let text = Format::json().render(&booking)?;
/// assert_eq!(text.content_type(), "application/json");
/// assert_eq!(text.body(), r#"{"name":"Ada","pnr":"X7K2QP"}"#);
///
/// let line = Format::text(|v| format!("{} booked", v["name"].as_str().unwrap_or("?")));
/// assert_eq!(line.render(&booking)?.body(), "Ada booked");
/// assert_eq!(line.render(&booking)?.content_type(), "text/plain; charset=utf-8");
/// # Ok::<(), flow_runtime::output::OutputError>(())
/// ```
#[derive(Clone)]
pub struct Format {
    kind: Kind,
    content_type: &'static str,
}

type TextFn = dyn Fn(&serde_json::Value) -> String + Send + Sync;

#[derive(Clone)]
enum Kind {
    Json,
    PrettyJson,
    Text(Arc<TextFn>),
    #[cfg(feature = "templates")]
    Template(Arc<Template>),
}

/// A parsed template. minijinja keeps templates in an environment, which owns the source.
#[cfg(feature = "templates")]
struct Template {
    env: minijinja::Environment<'static>,
    source: String,
}

/// The name the template has inside its environment; it appears in minijinja's messages
/// ("in template:1"). Without an extension, so that nothing is HTML-escaped.
#[cfg(feature = "templates")]
const TEMPLATE_NAME: &str = "template";

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

impl Format {
    /// The value as compact JSON, `application/json`.
    #[must_use]
    pub fn json() -> Self {
        Self {
            kind: Kind::Json,
            content_type: JSON,
        }
    }

    /// The value as indented JSON, `application/json`. Spans several lines: not for a
    /// [JSON Lines](crate::output::FileSink::jsonl) file.
    #[must_use]
    pub fn pretty_json() -> Self {
        Self {
            kind: Kind::PrettyJson,
            content_type: JSON,
        }
    }

    /// Text made by `render` from the value, `text/plain; charset=utf-8`.
    pub fn text(render: impl Fn(&serde_json::Value) -> String + Send + Sync + 'static) -> Self {
        Self {
            kind: Kind::Text(Arc::new(render)),
            content_type: TEXT,
        }
    }

    /// Text from a [minijinja](https://docs.rs/minijinja) (Jinja2) template,
    /// `text/plain; charset=utf-8`.
    ///
    /// When the value is a JSON object, its fields are the template's variables
    /// (`{{ pnr }}`); any other value (a string, a number, an array) is the variable `value`.
    /// Printing a variable the value does not have is an error, not an empty string, so that a
    /// renamed field does not send "Booked  for ." to your customers: test optional fields
    /// with `{% if field %}`. Nothing is HTML-escaped. Only the template language itself is
    /// available (tags, expressions, tests): minijinja's built-in filters are not compiled in.
    ///
    /// Needs the `templates` feature (minijinja):
    /// `flow-runtime = { version = "0.1", features = ["templates"] }`.
    ///
    /// # Errors
    ///
    /// [`OutputError::Template`] when the template does not parse, with minijinja's
    /// description of the problem and its line.
    ///
    /// ```
    /// use flow_runtime::output::{Format, OutputError};
    /// use serde_json::json;
    ///
    /// let message = Format::template("Booked {{ pnr }} for {{ name }}.")?;
    /// let booking = json!({ "pnr": "X7K2QP", "name": "Ada" });
    /// assert_eq!(message.render(&booking)?.body(), "Booked X7K2QP for Ada.");
    /// assert_eq!(message.render(&booking)?.content_type(), "text/plain; charset=utf-8");
    ///
    /// let err = Format::template("Booked {{ pnr ").unwrap_err();
    /// assert!(matches!(err, OutputError::Template { .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid output template: syntax error: unexpected end of input, \
    ///      expected end of variable block (in template:1)"
    /// );
    /// # Ok::<(), OutputError>(())
    /// ```
    #[cfg(feature = "templates")]
    #[cfg_attr(docsrs, doc(cfg(feature = "templates")))]
    pub fn template(source: impl Into<String>) -> Result<Self, OutputError> {
        let source = source.into();
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.add_template_owned(TEMPLATE_NAME, source.clone())
            .map_err(|e| OutputError::Template {
                reason: e.to_string(),
            })?;
        Ok(Self {
            kind: Kind::Template(Arc::new(Template { env, source })),
            content_type: TEXT,
        })
    }

    /// The same format, announcing another content type: `text/markdown`, `text/html`
    /// (templates still escape nothing)…
    ///
    /// ```
    /// use flow_runtime::output::Format;
    ///
    /// let html = Format::text(|v| format!("<p>{v}</p>")).with_content_type("text/html");
    /// assert_eq!(html.render(&"hi".into())?.content_type(), "text/html");
    /// # Ok::<(), flow_runtime::output::OutputError>(())
    /// ```
    #[must_use]
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    /// The content type of what [`render`](Format::render) makes.
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Formats `value`.
    ///
    /// # Errors
    ///
    /// `OutputError::Render` when a template fails on this value (it prints a variable the
    /// value does not have, say). JSON and text formats do not fail.
    pub fn render(&self, value: &serde_json::Value) -> Result<Formatted, OutputError> {
        let body = match &self.kind {
            Kind::Json => value.to_string(),
            Kind::PrettyJson => format!("{value:#}"),
            Kind::Text(render) => render(value),
            #[cfg(feature = "templates")]
            Kind::Template(template) => template.render(value)?,
        };
        Ok(Formatted {
            content_type: self.content_type,
            body,
        })
    }
}

#[cfg(feature = "templates")]
impl Template {
    fn render(&self, value: &serde_json::Value) -> Result<String, OutputError> {
        let render_error = |e: minijinja::Error| OutputError::Render {
            reason: e.to_string(),
        };
        let template = self.env.get_template(TEMPLATE_NAME).map_err(render_error)?;
        match value {
            serde_json::Value::Object(_) => template.render(value),
            other => template.render(minijinja::context! { value => other }),
        }
        .map_err(render_error)
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Format");
        match &self.kind {
            Kind::Json => s.field("kind", &"json"),
            Kind::PrettyJson => s.field("kind", &"pretty_json"),
            Kind::Text(_) => s.field("kind", &"text"),
            #[cfg(feature = "templates")]
            Kind::Template(t) => s.field("template", &t.source),
        };
        s.field("content_type", &self.content_type).finish()
    }
}

/// A value as text, with its content type: what a [`Format`] makes.
///
/// ```
/// use flow_runtime::output::Formatted;
///
/// let text = Formatted::new("text/plain; charset=utf-8", "hello");
/// assert_eq!((text.content_type(), text.body()), ("text/plain; charset=utf-8", "hello"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Formatted {
    content_type: &'static str,
    body: String,
}

impl Formatted {
    /// Text of a content type, for sinks that make their own.
    pub fn new(content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            content_type,
            body: body.into(),
        }
    }

    /// The content type, e.g. `application/json`.
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The text.
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The text, owned.
    #[must_use]
    pub fn into_body(self) -> String {
        self.body
    }
}

// The body is left out: it holds the workflow's data, which may hold anything.
impl fmt::Debug for Formatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Formatted")
            .field("content_type", &self.content_type)
            .field("len", &self.body.len())
            .finish_non_exhaustive()
    }
}
