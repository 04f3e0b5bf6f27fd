//! Admin API tokens (§4): short-lived RS256 JWTs minted with the project's admin key
//! and cached until less than a minute is left, or a ready-made token used as is.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::config::AuthgearAuth;

/// Lifetime of a minted token (Authgear's own signer uses 5 minutes).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// `iat` is back-dated by this much, for servers whose clock is a little behind.
pub const IAT_BACKDATE: Duration = Duration::from_secs(30);
/// A cached token with less than this left is minted again.
pub const REMINT_BEFORE: Duration = Duration::from_secs(60);

const PKCS8: &str = "PRIVATE KEY";
const PKCS1: &str = "RSA PRIVATE KEY";

/// Finds the RSA private key block of a PEM text and loads it for RS256 signing.
/// Other blocks (a `PUBLIC KEY`, a certificate) are ignored. The error says what
/// was expected and never contains the key.
pub fn load_private_key(pem_text: &str) -> Result<EncodingKey, String> {
    let block = private_block(pem_text)?;
    let key = EncodingKey::from_rsa_pem(block.as_bytes()).map_err(|_| {
        "the private key block is not a valid RSA key (expected an RSA `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) block)".to_owned()
    })?;
    // jsonwebtoken only parses the key when signing: sign once now so a broken key
    // is reported here rather than on the first request.
    let claims = Claims {
        aud: "check",
        iat: 0,
        exp: 1,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).map_err(|_| {
        "the private key cannot sign RS256 tokens (expected an RSA private key, PKCS#8 or PKCS#1)"
            .to_owned()
    })?;
    Ok(key)
}

/// The text of the first PKCS#8 or PKCS#1 private key block, BEGIN/END lines included.
fn private_block(pem_text: &str) -> Result<String, String> {
    let mut kinds = Vec::new();
    let mut lines = pem_text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        if label != PKCS8 && label != PKCS1 {
            kinds.push(label.to_owned());
            continue;
        }
        let end = format!("-----END {label}-----");
        let mut out = format!("-----BEGIN {label}-----\n");
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            out.push_str(l);
            out.push('\n');
        }
        if !closed {
            return Err(format!("the `{label}` block has no `{end}` line"));
        }
        out.push_str(&end);
        out.push('\n');
        return Ok(out);
    }
    if kinds.is_empty() {
        Err("no PEM block found (expected a `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1) block, as downloaded from the portal's Admin API page)".to_owned())
    } else {
        let found = kinds
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let encrypted = if kinds.iter().any(|k| k == "ENCRYPTED PRIVATE KEY") {
            " (encrypted keys are not supported: decrypt it first)"
        } else {
            ""
        };
        Err(format!(
            "no private key block found, only {found}{encrypted} (expected a `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) block)"
        ))
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// A cached token and when it expires (UNIX seconds).
struct Cached {
    token: SecretString,
    exp: u64,
}

/// Where bearer tokens come from.
pub struct TokenSource {
    kind: Kind,
}

enum Kind {
    Static(SecretString),
    Signer {
        project_id: String,
        key_id: String,
        key: EncodingKey,
        cache: Mutex<Option<Cached>>,
    },
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Static(_) => f.write_str("TokenSource::Static([REDACTED])"),
            Kind::Signer {
                project_id, key_id, ..
            } => f
                .debug_struct("TokenSource::Signer")
                .field("project_id", project_id)
                .field("key_id", key_id)
                .finish_non_exhaustive(),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenSource {
    /// A token source for the credentials; a key that cannot be loaded is an error
    /// (without the key in it).
    pub fn new(auth: &AuthgearAuth) -> Result<Self, String> {
        let kind = match auth {
            AuthgearAuth::Token(t) => {
                if t.expose_secret().trim().is_empty() {
                    return Err("the authgear admin token is empty".to_owned());
                }
                Kind::Static(SecretString::from(t.expose_secret().trim().to_owned()))
            }
            AuthgearAuth::Key {
                project_id,
                key_id,
                private_key_pem,
            } => {
                if project_id.is_empty() {
                    return Err("the authgear project id is empty".to_owned());
                }
                if key_id.is_empty() {
                    return Err("the authgear admin key id is empty".to_owned());
                }
                let key = load_private_key(private_key_pem.expose_secret())
                    .map_err(|e| format!("bad authgear admin private key: {e}"))?;
                Kind::Signer {
                    project_id: project_id.clone(),
                    key_id: key_id.clone(),
                    key,
                    cache: Mutex::new(None),
                }
            }
        };
        Ok(Self { kind })
    }

    /// Whether tokens are minted from a key (so a 403 may mean a wrong `kid`/`aud`).
    pub fn is_key(&self) -> bool {
        matches!(self.kind, Kind::Signer { .. })
    }

    /// A token valid for at least [`REMINT_BEFORE`] (minted tokens), or the static one.
    pub fn bearer(&self) -> Result<SecretString, String> {
        match &self.kind {
            Kind::Static(t) => Ok(t.clone()),
            Kind::Signer {
                project_id,
                key_id,
                key,
                cache,
            } => {
                let now = unix_now();
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = cache.as_ref() {
                    if c.exp > now + REMINT_BEFORE.as_secs() {
                        return Ok(c.token.clone());
                    }
                }
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some(key_id.clone());
                let exp = now + TOKEN_LIFETIME.as_secs();
                let claims = Claims {
                    aud: project_id,
                    iat: now.saturating_sub(IAT_BACKDATE.as_secs()),
                    exp,
                };
                let token = jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|_| "cannot sign the authgear admin token".to_owned())?;
                let token = SecretString::from(token);
                *cache = Some(Cached {
                    token: token.clone(),
                    exp,
                });
                Ok(token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_wrong_blocks_are_explained() {
        let e = private_block("hello").unwrap_err();
        assert!(e.starts_with("no PEM block found"), "{e}");
        let e = private_block("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
            .unwrap_err();
        assert!(e.contains("only `PUBLIC KEY`"), "{e}");
        let e = private_block("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n").unwrap_err();
        assert!(e.contains("encrypted keys are not supported"), "{e}");
        let e = private_block("-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap_err();
        assert!(e.contains("has no `-----END PRIVATE KEY-----` line"), "{e}");
        let e =
            load_private_key("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
                .err()
                .unwrap();
        assert!(
            e.contains("not a valid RSA key") || e.contains("cannot sign"),
            "{e}"
        );
        assert!(!e.contains("c2VjcmV0"), "{e}");
    }

    #[test]
    fn blocks_are_extracted_after_other_blocks() {
        let text = "junk\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n  -----BEGIN RSA PRIVATE KEY-----  \nBBBB\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            private_block(text).unwrap(),
            "-----BEGIN RSA PRIVATE KEY-----\nBBBB\n-----END RSA PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn minted_tokens_carry_kid_aud_and_short_times_and_are_cached() {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let source = TokenSource::new(&AuthgearAuth::Key {
            project_id: "myapp".into(),
            key_id: "kid-42".into(),
            private_key_pem: SecretString::from(pem.clone()),
        })
        .unwrap();
        assert!(!format!("{source:?}").contains(&pem[40..80]));
        let t1 = source.bearer().unwrap();
        let t2 = source.bearer().unwrap();
        assert_eq!(t1.expose_secret(), t2.expose_secret(), "cached");
        let header = jsonwebtoken::decode_header(t1.expose_secret()).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("kid-42"));
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["myapp"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            t1.expose_secret(),
            &jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        let iat = data.claims["iat"].as_u64().unwrap();
        let exp = data.claims["exp"].as_u64().unwrap();
        assert_eq!(exp - iat, TOKEN_LIFETIME.as_secs() + IAT_BACKDATE.as_secs());
        let now = unix_now();
        assert!(iat <= now && exp > now + REMINT_BEFORE.as_secs());
        assert_eq!(data.claims["aud"], "myapp");

        // A token close to expiry is minted again.
        if let Kind::Signer { cache, .. } = &source.kind {
            cache.lock().unwrap().as_mut().unwrap().exp = now + 10;
        }
        // (RS256 is deterministic: within the same second the new token is equal.)
        source.bearer().unwrap();
        if let Kind::Signer { cache, .. } = &source.kind {
            let exp = cache.lock().unwrap().as_ref().unwrap().exp;
            assert!(exp >= now + TOKEN_LIFETIME.as_secs(), "re-minted");
        }
    }
}
