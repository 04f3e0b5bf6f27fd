//! Settings of the Authgear import backend: the endpoint, the Admin API credentials
//! and the import options.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use authmigrate_core::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

use crate::format::AuthgearMapOptions;

/// Jobs kept running at once when the settings do not say otherwise.
pub const DEFAULT_MAX_JOBS_IN_FLIGHT: usize = 4;

/// How the backend authenticates to the Admin API (§4 of the Authgear notes).
#[derive(Clone)]
pub enum AuthgearAuth {
    /// Mint short-lived RS256 admin JWTs with the project's admin key.
    Key {
        /// The project (app) id: the JWT's `aud`.
        project_id: String,
        /// The admin key's id: the JWT header's `kid`.
        key_id: String,
        /// The admin private key, PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`,
        /// other blocks such as `PUBLIC KEY` are ignored).
        private_key_pem: SecretString,
    },
    /// A ready-made admin token (`AUTHGEAR_ADMIN_TOKEN`), sent as is.
    Token(SecretString),
}

impl fmt::Debug for AuthgearAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key {
                project_id, key_id, ..
            } => f
                .debug_struct("Key")
                .field("project_id", project_id)
                .field("key_id", key_id)
                .field("private_key_pem", &"[REDACTED]")
                .finish(),
            Self::Token(_) => f.debug_tuple("Token").field(&"[REDACTED]").finish(),
        }
    }
}

impl AuthgearAuth {
    /// Key authentication with the private key read from `path`. The file must hold
    /// an RSA private key PEM block; the error names the file and what was expected,
    /// never the key.
    pub fn key_from_file(
        project_id: impl Into<String>,
        key_id: impl Into<String>,
        path: &Path,
    ) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the authgear admin key file {}: {}",
                path.display(),
                e.kind().to_string().to_lowercase()
            )
        })?;
        let text = SecretString::from(text);
        // Check the key now, so a bad file is reported before anything is sent.
        crate::auth::load_private_key(text.expose_secret()).map_err(|reason| {
            format!("bad authgear admin key file {}: {reason}", path.display())
        })?;
        Ok(Self::Key {
            project_id: project_id.into(),
            key_id: key_id.into(),
            private_key_pem: text,
        })
    }
}

/// Everything [`AuthgearBackend::new`](crate::backend::AuthgearBackend::new) needs.
#[derive(Debug, Clone)]
pub struct AuthgearSettings {
    /// The project's base URL (`https://myapp.authgear.cloud`). `http://` is allowed
    /// only for loopback hosts.
    pub endpoint: String,
    /// Admin API credentials.
    pub auth: AuthgearAuth,
    /// Update users that exist (`upsert: true`) instead of skipping them.
    pub upsert: bool,
    /// How records are mapped (the identifier, custom attributes).
    pub map: AuthgearMapOptions,
    /// The HTTP retry policy.
    pub retry: RetryPolicy,
    /// Import jobs kept running at once.
    pub max_jobs_in_flight: usize,
}

impl AuthgearSettings {
    /// Settings with the defaults: no upsert, `email` identifier, the default retry
    /// policy, [`DEFAULT_MAX_JOBS_IN_FLIGHT`] jobs.
    pub fn new(endpoint: impl Into<String>, auth: AuthgearAuth) -> Self {
        Self {
            endpoint: endpoint.into(),
            auth,
            upsert: false,
            map: AuthgearMapOptions::default(),
            retry: RetryPolicy::default(),
            max_jobs_in_flight: DEFAULT_MAX_JOBS_IN_FLIGHT,
        }
    }
}

/// Parses and checks an endpoint: an absolute `https://` URL, or `http://` on a
/// loopback host (127.0.0.0/8, `::1`, `localhost`), with no query, fragment or
/// credentials. The returned URL has no trailing slash in its path.
pub fn parse_endpoint(endpoint: &str) -> Result<Url, String> {
    let trimmed = endpoint.trim();
    let url = Url::parse(trimmed).map_err(|e| {
        format!("invalid authgear endpoint `{trimmed}`: {e} (expected e.g. https://myapp.authgear.cloud)")
    })?;
    let host = url
        .host()
        .ok_or_else(|| format!("invalid authgear endpoint `{trimmed}`: no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "refusing the authgear endpoint `{trimmed}`: http:// is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https://"
            ));
        }
        other => {
            return Err(format!(
                "invalid authgear endpoint `{trimmed}`: scheme `{other}` is not supported (use https://)"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("invalid authgear endpoint: it must not contain credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "invalid authgear endpoint `{trimmed}`: it must not have a query or fragment"
        ));
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for ok in [
            "https://myapp.authgear.cloud",
            "https://myapp.authgear.cloud/",
            "http://127.0.0.1:3002",
            "http://127.8.9.10",
            "http://[::1]:8080/",
            "http://localhost:3100",
            "http://LOCALHOST",
        ] {
            let url = parse_endpoint(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!url.as_str().ends_with("//"), "{url}");
        }
        let e = parse_endpoint("http://myapp.authgear.cloud").unwrap_err();
        assert!(
            e.contains("http:// is allowed only for loopback hosts"),
            "{e}"
        );
        let e = parse_endpoint("http://10.0.0.1:3002").unwrap_err();
        assert!(e.contains("only for loopback"), "{e}");
        let e = parse_endpoint("http://localhost.evil.com").unwrap_err();
        assert!(e.contains("only for loopback"), "{e}");
        let e = parse_endpoint("ftp://x.y").unwrap_err();
        assert!(e.contains("scheme `ftp`"), "{e}");
        let e = parse_endpoint("myapp.authgear.cloud").unwrap_err();
        assert!(e.starts_with("invalid authgear endpoint"), "{e}");
        let e = parse_endpoint("https://u:p@x.y").unwrap_err();
        assert!(e.contains("credentials") && !e.contains("u:p"), "{e}");
        assert_eq!(
            parse_endpoint("https://x.y/base/").unwrap().as_str(),
            "https://x.y/base"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let key = AuthgearAuth::Key {
            project_id: "myapp".into(),
            key_id: "kid-1".into(),
            private_key_pem: SecretString::from("-----BEGIN PRIVATE KEY-----\nMIIsecret\n"),
        };
        let shown = format!("{key:?}");
        assert!(
            shown.contains("myapp") && shown.contains("kid-1"),
            "{shown}"
        );
        assert!(!shown.contains("MIIsecret"), "{shown}");
        let token = AuthgearAuth::Token(SecretString::from("eyJhbGciOiJSUzI1NiJ9.tok"));
        let settings = AuthgearSettings::new("https://x.y", token);
        let shown = format!("{settings:?}");
        assert!(!shown.contains("eyJhbGciOi"), "{shown}");
    }
}
