//! Secrets taken out of error messages: every secret the runtime sent, in every form it sent
//! it, so that a service that echoes a request back cannot put one into an error, a log or a
//! store.

use crate::tool::{AuthHeader, ExposeSecret as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::fmt;

/// What stands in for a secret.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Every byte but the unreserved ones of RFC 3986 (`A-Z a-z 0-9 - . _ ~`): how a URL's path
/// segment or query value usually carries a secret.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The secrets of one call, each in every form it may come back in, longest first (so that a
/// form that contains another is replaced whole).
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    needles: Vec<String>,
}

// The needles are the secrets: never print them.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("needles", &self.needles.len())
            .finish()
    }
}

impl Redactor {
    /// The secrets of a loaded credential: the bare secret and the header value's credential
    /// part (the token, or the base64 of `user:password`), in their encoded forms.
    pub(crate) fn for_auth(header: Option<&AuthHeader>) -> Self {
        let mut redactor = Self::default();
        if let Some(header) = header {
            redactor.add_auth(header);
        }
        redactor
    }

    /// Adds the secrets of a loaded credential, as [`for_auth`](Redactor::for_auth) does.
    pub(crate) fn add_auth(&mut self, header: &AuthHeader) {
        self.add(header.secret().expose_secret());
        self.add_header_value(header.value().expose_secret());
    }

    /// Adds the credential part of the value of a header that carries one: of `Bearer <token>`
    /// or `Basic <base64>` the part after the scheme (the scheme says nothing secret); an API
    /// key is the value itself.
    ///
    /// A `Basic` credential's decoded `user:password` and bare password are added too: a
    /// server may echo either, and a caller's own `basic_auth` is known only by its header.
    pub(crate) fn add_header_value(&mut self, value: &str) {
        let credential = value.split_once(' ').map_or(value, |(_, c)| c);
        self.add(credential);
        if let Some((scheme, encoded)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = STANDARD.decode(encoded.trim())
            && let Ok(pair) = String::from_utf8(decoded)
        {
            if let Some((_, password)) = pair.split_once(':') {
                self.add(password);
            }
            self.add(&pair);
        }
    }

    /// Adds `secret` as it is and as it travels: percent-encoded (as in a URL), form-encoded,
    /// escaped in a JSON string, and in base64 (standard and URL-safe, padded or not); each
    /// of these with its `/` escaped as `\/` too.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let forms = [
            secret.to_owned(),
            utf8_percent_encode(secret, COMPONENT).to_string(),
            utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
            form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
            json_escaped(secret),
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ];
        // Each form with a `/` also as JSON encoders that escape it write it (`\/`: PHP's
        // `json_encode`, among others), inside a JSON string echoed back.
        let slashed = forms
            .iter()
            .filter(|form| form.contains('/'))
            .map(|form| form.replace('/', "\\/"))
            .collect::<Vec<_>>();
        for form in forms.into_iter().chain(slashed) {
            if !form.is_empty() && !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Whether there is nothing to take out.
    pub(crate) fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether `text` holds a secret in any of its forms.
    pub(crate) fn finds(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n.as_str()))
    }

    /// The length in bytes of the longest form of a secret (0 without one).
    #[cfg(feature = "http")]
    pub(crate) fn longest(&self) -> usize {
        self.needles.first().map_or(0, String::len)
    }

    /// `text` without an end that is the start of a secret's form: for a text cut short, whose
    /// secret may be cut through, and so not found whole.
    #[cfg(feature = "http")]
    pub(crate) fn cut_partial_end<'t>(&self, text: &'t str) -> &'t str {
        let end = self
            .needles
            .iter()
            .filter_map(|needle| {
                (1..needle.len())
                    .rev()
                    .filter(|&k| needle.is_char_boundary(k))
                    .find(|&k| text.ends_with(&needle[..k]))
                    .map(|k| text.len() - k)
            })
            .min()
            .unwrap_or(text.len());
        &text[..end]
    }

    /// `text` with every form of every secret replaced by `[REDACTED]`.
    pub(crate) fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        out
    }
}

/// `url` as given, with what may hold a secret masked: the userinfo and everything from the
/// first `?` or `#` become `…`. For messages about a URL that may not even parse, so the
/// userinfo is taken to run to the last `@` (a password may hold a `/`): a path with an `@`
/// is masked as well, which hides more than needed but never a secret.
#[cfg(any(feature = "http", feature = "otel"))]
pub(crate) fn masked_url(url: &str) -> String {
    let (rest, cut) = match url.find(['?', '#']) {
        Some(at) => (&url[..at], true),
        None => (url, false),
    };
    let authority_start = rest.find("://").map_or(0, |i| i + 3);
    let mut out = match rest[authority_start..].rfind('@') {
        Some(at) => format!(
            "{}…{}",
            &rest[..authority_start],
            &rest[authority_start + at..]
        ),
        None => rest.to_owned(),
    };
    if cut {
        out.push('…');
    }
    out
}

/// `secret` as it appears inside a JSON string (quotes, backslashes and control characters
/// escaped), without the surrounding quotes.
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::Value::from(secret).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::{Auth, Credential};

    #[test]
    fn every_form_of_a_basic_credential_is_taken_out() {
        let header = Auth::basic("ada", Credential::new("pa ss/wörd\"+"))
            .header()
            .unwrap();
        let redactor = Redactor::for_auth(Some(&header));
        let pair = STANDARD.encode("ada:pa ss/wörd\"+");
        for shown in [
            "pa ss/wörd\"+".to_owned(),
            pair.clone(),
            format!("Basic {pair}"),
            "pa%20ss%2Fw%C3%B6rd%22%2B".to_owned(),
            "pa+ss%2Fw%C3%B6rd%22%2B".to_owned(),
            "pa ss/wörd\\\"+".to_owned(),
            "pa ss\\/wörd\\\"+".to_owned(),
            STANDARD.encode("pa ss/wörd\"+"),
        ] {
            let text = format!("the server said: {shown}.");
            assert!(redactor.finds(&text), "{shown}");
            let cleaned = redactor.text(&text);
            assert!(!redactor.finds(&cleaned), "{shown} -> {cleaned}");
            assert!(cleaned.contains(REDACTED), "{cleaned}");
        }
        assert!(!format!("{redactor:?}").contains("pa ss"));
    }

    /// A server whose JSON encoder escapes `/` (PHP's `json_encode`) echoes a secret, or its
    /// base64, with `\/` in it.
    #[test]
    fn a_secret_echoed_with_its_slashes_escaped_is_taken_out() {
        let mut redactor = Redactor::default();
        redactor.add("tok?en/long??");
        assert_eq!(STANDARD.encode("tok?en/long??"), "dG9rP2VuL2xvbmc/Pw==");
        for shown in [r"tok?en\/long??", r"dG9rP2VuL2xvbmc\/Pw=="] {
            let text = format!(r#"{{"error":"bad key {shown}"}}"#);
            assert!(redactor.finds(&text), "{shown}");
            assert_eq!(
                redactor.text(&text),
                format!(r#"{{"error":"bad key {REDACTED}"}}"#)
            );
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn the_start_of_a_secret_at_the_end_of_a_text_is_cut() {
        let mut redactor = Redactor::default();
        redactor.add("s3cret-token");
        assert_eq!(redactor.cut_partial_end("said: s3cre"), "said: ");
        assert_eq!(redactor.cut_partial_end("said: s3cret-toke"), "said: ");
        assert_eq!(redactor.cut_partial_end("said: no"), "said: no");
        assert_eq!(Redactor::default().cut_partial_end("said: s"), "said: s");
    }

    /// A caller's own `basic_auth` is known only by its header: the password inside it is
    /// taken out as well, bare and in its other forms.
    #[test]
    fn a_basic_header_values_password_is_taken_out() {
        let mut redactor = Redactor::default();
        redactor.add_header_value(&format!("Basic {}", STANDARD.encode("ada:hunter2-long")));
        assert_eq!(
            redactor.text("echo: hunter2-long and ada:hunter2-long"),
            format!("echo: {REDACTED} and {REDACTED}")
        );
        let mut bearer = Redactor::default();
        bearer.add_header_value("Bearer not:base64!");
        assert_eq!(bearer.text("not:base64!"), REDACTED);
    }

    #[test]
    fn nothing_to_redact_without_a_credential() {
        let redactor = Redactor::for_auth(None);
        assert!(redactor.is_empty());
        assert_eq!(redactor.text("Bearer abc"), "Bearer abc");
    }

    #[cfg(any(feature = "http", feature = "otel"))]
    #[test]
    fn urls_in_messages_are_masked() {
        assert_eq!(super::masked_url("wiki.internal/api"), "wiki.internal/api");
        assert_eq!(
            super::masked_url("http://ada:s3/cret@host:99999/v1?key=s3cret#f"),
            "http://…@host:99999/v1…"
        );
        assert_eq!(super::masked_url("s3cret@host/x"), "…@host/x");
    }
}
