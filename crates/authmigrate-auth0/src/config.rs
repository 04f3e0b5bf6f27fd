//! Settings of the Auth0 backend: the tenant's base URL, credentials and import
//! options.

use std::fmt;
use std::net::IpAddr;

use authmigrate_core::backend::BackendError;
use authmigrate_core::retry::RetryPolicy;
use secrecy::SecretString;
use url::{Host, Url};

use crate::format::Auth0MapOptions;

/// The database connection used when none is named.
pub const DEFAULT_CONNECTION: &str = "Username-Password-Authentication";

/// How the backend authenticates to the Management API.
#[derive(Clone)]
pub enum Auth0Auth {
    /// A ready-made Management API access token (`AUTH0_TOKEN`).
    Token(SecretString),
    /// The client-credentials grant (`AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`): the
    /// token is fetched, cached and refreshed before it expires.
    ClientCredentials {
        /// The machine-to-machine application's client id.
        client_id: String,
        /// Its client secret.
        client_secret: SecretString,
    },
}

impl fmt::Debug for Auth0Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.debug_tuple("Token").field(&"[REDACTED]").finish(),
            Self::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// Everything the Auth0 backend needs.
#[derive(Clone)]
pub struct Auth0Settings {
    /// The tenant: a host (`dev-x.us.auth0.com`, meaning `https://`) or a base URL.
    /// `http://` is accepted only for loopback hosts.
    pub domain: String,
    /// Credentials.
    pub auth: Auth0Auth,
    /// The Management API audience of the client-credentials request
    /// (`AUTH0_AUDIENCE`). `None`: `{base URL}/api/v2/`, derived from
    /// [`Auth0Settings::domain`]. With a custom domain the audience stays the canonical
    /// tenant domain (`https://dev-x.us.auth0.com/api/v2/`, auth0-api.md §7 NEW).
    pub audience: Option<String>,
    /// The database connection's NAME (resolved to its `con_…` id by `prepare`).
    pub connection: String,
    /// Update users that already exist (`upsert=true`).
    pub upsert: bool,
    /// Ask Auth0 to e-mail the tenant owners when each job ends (off by default).
    pub send_completion_email: bool,
    /// Sent as `external_id` with every job.
    pub external_id: Option<String>,
    /// The HTTP retry policy.
    pub retry: RetryPolicy,
    /// Options of the neutral → Auth0 mapping.
    pub map: Auth0MapOptions,
}

impl fmt::Debug for Auth0Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Settings")
            .field("domain", &self.domain)
            .field("auth", &self.auth)
            .field("audience", &self.audience)
            .field("connection", &self.connection)
            .field("upsert", &self.upsert)
            .field("send_completion_email", &self.send_completion_email)
            .field("external_id", &self.external_id)
            .field("retry", &self.retry)
            .field("map", &self.map)
            .finish()
    }
}

impl Auth0Settings {
    /// Settings with the defaults: connection [`DEFAULT_CONNECTION`], no upsert, no
    /// completion e-mail, no external id, the default retry policy and mapping.
    pub fn new(domain: impl Into<String>, auth: Auth0Auth) -> Self {
        Self {
            domain: domain.into(),
            auth,
            audience: None,
            connection: DEFAULT_CONNECTION.to_owned(),
            upsert: false,
            send_completion_email: false,
            external_id: None,
            retry: RetryPolicy::default(),
            map: Auth0MapOptions::default(),
        }
    }

    /// Reads `AUTH0_DOMAIN`, either `AUTH0_TOKEN` or `AUTH0_CLIENT_ID` plus
    /// `AUTH0_CLIENT_SECRET`, and the optional `AUTH0_AUDIENCE` from the environment; everything else is the default of
    /// [`Auth0Settings::new`].
    pub fn from_env() -> Result<Self, BackendError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`Auth0Settings::from_env`] over any variable lookup (for tests and `.env`
    /// handling).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, BackendError> {
        let domain = get("AUTH0_DOMAIN").ok_or_else(|| {
            BackendError::fatal(
                "auth0 domain is not set",
                Some("set AUTH0_DOMAIN (e.g. dev-x.us.auth0.com) or pass --domain".to_owned()),
            )
        })?;
        let auth = match (
            get("AUTH0_TOKEN"),
            get("AUTH0_CLIENT_ID"),
            get("AUTH0_CLIENT_SECRET"),
        ) {
            (Some(token), _, _) => Auth0Auth::Token(SecretString::from(token)),
            (None, Some(client_id), Some(secret)) => Auth0Auth::ClientCredentials {
                client_id,
                client_secret: SecretString::from(secret),
            },
            (None, Some(_), None) => {
                return Err(BackendError::fatal(
                    "AUTH0_CLIENT_ID is set but AUTH0_CLIENT_SECRET is not",
                    Some("set AUTH0_CLIENT_SECRET, or give a token in AUTH0_TOKEN".to_owned()),
                ));
            }
            (None, None, _) => {
                return Err(BackendError::fatal(
                    "no auth0 credentials",
                    Some(
                        "set AUTH0_TOKEN (a Management API token), or AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET"
                            .to_owned(),
                    ),
                ));
            }
        };
        let mut settings = Self::new(domain, auth);
        settings.audience = get("AUTH0_AUDIENCE");
        Ok(settings)
    }

    /// The tenant's base URL (no trailing slash), checked: see [`base_url`].
    pub fn base_url(&self) -> Result<Url, BackendError> {
        base_url(&self.domain)
    }
}

/// Turns `AUTH0_DOMAIN` into a base URL: a bare host gets `https://`, a full URL is
/// kept (its path too, without a trailing slash). Refuses schemes other than
/// `https`, and `http` for hosts that are not loopback (127.0.0.0/8, ::1, localhost).
pub fn base_url(domain: &str) -> Result<Url, BackendError> {
    let domain = domain.trim();
    let hint =
        || Some("give the tenant host (dev-x.us.auth0.com) or an https:// base URL".to_owned());
    if domain.is_empty() {
        return Err(BackendError::fatal("auth0 domain is empty", hint()));
    }
    let text = if domain.contains("://") {
        domain.to_owned()
    } else {
        format!("https://{domain}")
    };
    let mut url = Url::parse(&text).map_err(|e| {
        BackendError::fatal(format!("invalid auth0 domain `{domain}`: {e}"), hint())
    })?;
    if url.host().is_none() {
        return Err(BackendError::fatal(
            format!("invalid auth0 domain `{domain}`: no host"),
            hint(),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(BackendError::fatal(
                format!(
                    "refusing plain http:// for non-loopback auth0 domain `{domain}`: tokens and password hashes would travel unencrypted"
                ),
                Some(
                    "use https:// (http:// is allowed only for 127.0.0.1, ::1 and localhost)"
                        .to_owned(),
                ),
            ));
        }
        other => {
            return Err(BackendError::fatal(
                format!("unsupported scheme `{other}` in auth0 domain `{domain}`"),
                hint(),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BackendError::fatal(
            "the auth0 domain must not carry credentials",
            Some(
                "give credentials with AUTH0_TOKEN or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET"
                    .to_owned(),
            ),
        ));
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// The base URL as text, without a trailing slash.
pub(crate) fn base_text(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_urls() {
        let ok = |d: &str| base_text(&base_url(d).unwrap());
        assert_eq!(ok("dev-x.us.auth0.com"), "https://dev-x.us.auth0.com");
        assert_eq!(ok(" dev-x.us.auth0.com/ "), "https://dev-x.us.auth0.com");
        assert_eq!(
            ok("https://login.example.com/"),
            "https://login.example.com"
        );
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://127.3.4.5:1"), "http://127.3.4.5:1");
        assert_eq!(ok("http://[::1]:9000/"), "http://[::1]:9000");
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
    }

    #[test]
    fn plain_http_elsewhere_is_refused() {
        for d in [
            "http://dev-x.us.auth0.com",
            "http://10.0.0.1",
            "http://128.0.0.1",
            "http://localhost.evil.com",
        ] {
            let e = base_url(d).unwrap_err();
            assert!(
                e.to_string().starts_with("refusing plain http://"),
                "{d}: {e}"
            );
        }
        assert!(base_url("ftp://x.com").is_err());
        assert!(base_url("").is_err());
        assert!(base_url("https://user:pw@x.com").is_err());
    }

    #[test]
    fn env_lookup_and_debug_hide_secrets() {
        let vars = |k: &str| match k {
            "AUTH0_DOMAIN" => Some("dev-x.us.auth0.com".to_owned()),
            "AUTH0_CLIENT_ID" => Some("cid".to_owned()),
            "AUTH0_CLIENT_SECRET" => Some("topsecretvalue".to_owned()),
            _ => None,
        };
        let s = Auth0Settings::from_lookup(vars).unwrap();
        assert_eq!(s.connection, DEFAULT_CONNECTION);
        assert!(!s.send_completion_email);
        let shown = format!("{s:?}");
        assert!(shown.contains("cid"));
        assert!(!shown.contains("topsecretvalue"), "{shown}");
        let tok = Auth0Settings::from_lookup(|k| match k {
            "AUTH0_DOMAIN" => Some("d.example.com".to_owned()),
            "AUTH0_TOKEN" => Some("eyJtokenvalue".to_owned()),
            _ => None,
        })
        .unwrap();
        assert!(!format!("{tok:?}").contains("eyJtokenvalue"));
        let none = Auth0Settings::from_lookup(|k| {
            (k == "AUTH0_DOMAIN").then(|| "d.example.com".to_owned())
        })
        .unwrap_err();
        assert_eq!(none.to_string(), "no auth0 credentials");
    }
}
