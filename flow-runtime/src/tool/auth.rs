use crate::tool::CredentialError;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::path::PathBuf;

/// Where a secret comes from: the environment, a file, or the code itself.
///
/// Nothing is read when a `Credential` is made: a [`PolicyTool`](crate::tool::PolicyTool)
/// reads it at the start of every call (so a rotated secret is picked up without a restart),
/// and a call whose credential cannot be read fails before the tool is called, with an error
/// that names the tool and the variable or file.
///
/// The secret is held in a [`SecretString`]: `Debug` shows `[REDACTED]`, it cannot be
/// serialised, and its memory is zeroed when dropped. `Display` names the source only.
///
/// ```
/// use flow_runtime::tool::{Credential, ExposeSecret};
///
/// let from_env = Credential::from_env("GITHUB_TOKEN");
/// assert_eq!(from_env.to_string(), "environment variable `GITHUB_TOKEN`");
///
/// let in_code = Credential::new("s3cret");
/// assert_eq!(in_code.resolve().unwrap().expose_secret(), "s3cret");
/// assert!(!format!("{in_code:?} {in_code}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct Credential(Source);

#[derive(Clone)]
enum Source {
    Env(String),
    File(PathBuf),
    Inline(SecretString),
}

impl Credential {
    /// The value of environment variable `var`, read at every call. Surrounding whitespace is
    /// trimmed.
    pub fn from_env(var: impl Into<String>) -> Self {
        Self(Source::Env(var.into()))
    }

    /// The contents of the file at `path` (a mounted secret, say), read at every call.
    /// Surrounding whitespace, such as the trailing newline, is trimmed.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self(Source::File(path.into()))
    }

    /// A secret given in code, as it is.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Source::Inline(SecretString::from(secret.into())))
    }

    /// Reads the secret now.
    ///
    /// # Errors
    ///
    /// The variable is not set or not Unicode, the file cannot be read, or what was read is
    /// empty or only whitespace.
    pub fn resolve(&self) -> Result<SecretString, CredentialError> {
        let raw = match &self.0 {
            Source::Inline(secret) => return Ok(secret.clone()),
            Source::Env(var) => std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => CredentialError::NotSet { var: var.clone() },
                std::env::VarError::NotUnicode(_) => {
                    CredentialError::NotUnicode { var: var.clone() }
                }
            })?,
            // A blocking read: a secret file is a few bytes on a local (often in-memory) file
            // system, cheaper than a hop to a blocking thread.
            Source::File(path) => {
                std::fs::read_to_string(path).map_err(|source| CredentialError::Unreadable {
                    path: path.clone(),
                    source,
                })?
            }
        };
        // Wrap before anything else, so every copy from here on is zeroed when dropped.
        let raw = SecretString::from(raw);
        let trimmed = raw.expose_secret().trim();
        if trimmed.is_empty() {
            return Err(CredentialError::Empty {
                from: self.to_string(),
            });
        }
        Ok(SecretString::from(trimmed))
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Env(var) => write!(f, "environment variable `{var}`"),
            Source::File(path) => write!(f, "file `{}`", path.display()),
            Source::Inline(_) => f.write_str("a secret given in code"),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Env(var) => f.debug_tuple("Credential::Env").field(var).finish(),
            Source::File(path) => f.debug_tuple("Credential::File").field(path).finish(),
            Source::Inline(_) => f.write_str("Credential::Inline([REDACTED])"),
        }
    }
}

/// How a tool authenticates: which [`Credential`], and how it travels with each request
/// (bearer token, API-key header, or HTTP basic auth).
///
/// Declared once in the tool's [`ToolPolicy`](crate::tool::ToolPolicy); every attempt then
/// finds the loaded credential in its [`ToolCtx`](crate::tool::ToolCtx), ready to add to the
/// request as [`ToolCtx::auth_header`](crate::tool::ToolCtx::auth_header).
///
/// ```
/// use flow_runtime::tool::{Auth, Credential, ExposeSecret};
///
/// let bearer = Auth::bearer(Credential::new("t0ken")).header().unwrap();
/// assert_eq!((bearer.name(), bearer.value().expose_secret()), ("authorization", "Bearer t0ken"));
///
/// let key = Auth::api_key("x-api-key", Credential::new("k3y")).header().unwrap();
/// assert_eq!((key.name(), key.value().expose_secret()), ("x-api-key", "k3y"));
///
/// let basic = Auth::basic("ada", Credential::new("s3cret")).header().unwrap();
/// assert_eq!(basic.value().expose_secret(), "Basic YWRhOnMzY3JldA==");
/// ```
#[derive(Clone, Debug)]
pub struct Auth {
    scheme: Scheme,
    credential: Credential,
}

#[derive(Clone, Debug)]
enum Scheme {
    Bearer,
    ApiKey(String),
    Basic(String),
}

impl Auth {
    /// `Authorization: Bearer <secret>`.
    #[must_use]
    pub fn bearer(token: Credential) -> Self {
        Self {
            scheme: Scheme::Bearer,
            credential: token,
        }
    }

    /// `<header>: <secret>`, e.g. `x-api-key`. The name is sent as given: use a valid header
    /// name (lower case, as HTTP/2 requires).
    #[must_use]
    pub fn api_key(header: impl Into<String>, key: Credential) -> Self {
        Self {
            scheme: Scheme::ApiKey(header.into()),
            credential: key,
        }
    }

    /// `Authorization: Basic <base64(username:secret)>` (RFC 7617; the username must not
    /// contain `:`).
    #[must_use]
    pub fn basic(username: impl Into<String>, password: Credential) -> Self {
        Self {
            scheme: Scheme::Basic(username.into()),
            credential: password,
        }
    }

    /// The credential.
    #[must_use]
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Loads the credential and builds the header that carries it.
    ///
    /// # Errors
    ///
    /// The credential cannot be loaded: see [`Credential::resolve`].
    pub fn header(&self) -> Result<AuthHeader, CredentialError> {
        let secret = self.credential.resolve()?;
        let (name, value) = match &self.scheme {
            Scheme::Bearer => (
                "authorization".to_owned(),
                format!("Bearer {}", secret.expose_secret()),
            ),
            Scheme::ApiKey(header) => (header.clone(), secret.expose_secret().to_owned()),
            Scheme::Basic(username) => {
                let pair = SecretString::from(format!("{username}:{}", secret.expose_secret()));
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(pair.expose_secret());
                ("authorization".to_owned(), format!("Basic {encoded}"))
            }
        };
        Ok(AuthHeader {
            name,
            value: SecretString::from(value),
            secret,
        })
    }
}

/// A loaded credential, as the header that carries it: add
/// `(name(), value().expose_secret())` to the request.
///
/// `Debug` shows the header's name only. With an HTTP client, mark the value sensitive
/// (`HeaderValue::set_sensitive`) so that the client does not log it either.
///
/// ```
/// use flow_runtime::tool::{Auth, Credential, ExposeSecret};
///
/// let header = Auth::api_key("x-api-key", Credential::new("k3y")).header().unwrap();
/// let (name, value) = (header.name(), header.value().expose_secret());
/// assert_eq!(format!("{name}: {value}"), "x-api-key: k3y");
/// assert_eq!(header.secret().expose_secret(), "k3y");
/// assert_eq!(format!("{header:?}"), r#"AuthHeader { name: "x-api-key", .. }"#);
/// ```
#[derive(Clone)]
pub struct AuthHeader {
    name: String,
    value: SecretString,
    secret: SecretString,
}

impl AuthHeader {
    /// The header's name: `authorization`, or the API-key header's.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header's value: `Bearer <token>`, `Basic <base64>`, or the API key.
    #[must_use]
    pub fn value(&self) -> &SecretString {
        &self.value
    }

    /// The bare secret, without the scheme.
    #[must_use]
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
