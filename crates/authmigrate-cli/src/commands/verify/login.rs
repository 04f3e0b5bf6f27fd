//! `verify --login-check N`: N matched users, drawn evenly from the source, log in at
//! the Authgear target with the password `generate` gave them (their username) and,
//! for users that should hold TOTP, a code made from the secret that was carried.
//! Each refusal is a difference (field `login`).
//!
//! Sandbox only: the check posts to the emulator's `/_sandbox/authgear/login` (a
//! stand-in for an end user's login) and makes TOTP codes on the emulator's project
//! clock (`/_sandbox/authgear/clock`). A real Authgear project has no password-login
//! route a command-line tool can call (end users log in through its hosted pages), so
//! against one the check stops with an error before any login is tried.

use std::time::Duration;

use anyhow::Context;
use authmigrate_core::record::MfaFactor;
use authmigrate_core::verify::{Difference, Expected, LoginCounts, label};
use authmigrate_core::{Secret, UserRecord};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::Hinted;
use crate::output::Output;

/// Logins in flight at once.
const CONCURRENCY: usize = 4;

/// A matched user that can try to log in.
#[derive(Debug)]
pub(super) struct Candidate {
    index: u64,
    user: String,
    source_id: Option<String>,
    login_id: String,
    password: Secret,
    totp: Option<Secret>,
}

/// The login of a matched user, if it can try one: a username (its password, as
/// `generate` makes users), a login id of the import's `identifier`, not expected to
/// be disabled, and a password unless the source is known to have none
/// (`passwords_known`: the source was joined with a password-hash export).
pub(super) fn candidate(
    index: u64,
    source: &UserRecord,
    expected: &Expected,
    identifier: &str,
    passwords_known: bool,
) -> Option<Candidate> {
    let want = &expected.record;
    if want.blocked == Some(true) || (passwords_known && source.password.is_none()) {
        return None;
    }
    let password = source.username.as_deref().filter(|u| !u.is_empty())?;
    let login_id = match identifier {
        "phone_number" => want.phone_number.clone(),
        "preferred_username" | "username" => want.username.clone(),
        _ => want.email.clone(),
    }
    .filter(|s| !s.is_empty())?;
    let totp = want.mfa.iter().find_map(|f| match f {
        MfaFactor::Totp { secret } => Some(secret.clone()),
        _ => None,
    });
    Some(Candidate {
        index,
        user: label(source, index),
        source_id: source.source_id.clone(),
        login_id,
        password: Secret::new(password),
        totp,
    })
}

/// Logs the candidates in at the Authgear sandbox at `endpoint`; returns the counts
/// and a difference for each refusal (sorted by source position).
pub(super) async fn check(
    endpoint: &str,
    candidates: Vec<Candidate>,
    out: &Output,
) -> anyhow::Result<(LoginCounts, Vec<Difference>)> {
    let base =
        authmigrate_authgear::config::parse_endpoint(endpoint).map_err(anyhow::Error::msg)?;
    let base = base.as_str().trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let clock = http
        .get(format!("{base}/_sandbox/authgear/clock"))
        .send()
        .await
        .with_context(|| format!("`--login-check`: cannot reach `{base}`"))?;
    if !clock.status().is_success() {
        return Err(Hinted {
            message: format!(
                "`--login-check` works against the sandbox only: `{base}` has no `/_sandbox/authgear/login` route (HTTP {})",
                clock.status().as_u16()
            ),
            hint: "real Authgear projects log users in through their hosted pages only; log a few test users in by hand there, or drop `--login-check`".into(),
        }
        .into());
    }
    let offset = clock
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v["offset_seconds"].as_i64())
        .unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + offset;
    let url = format!("{base}/_sandbox/authgear/login");
    let checked = candidates.len() as u64;
    let answers: Vec<anyhow::Result<Option<Difference>>> = futures::stream::iter(candidates)
        .map(|c| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let mut body = json!({ "login_id": c.login_id, "password": c.password.expose() });
                if let Some(secret) = &c.totp {
                    match base32(secret.expose()) {
                        Some(key) => {
                            body["totp"] =
                                json!(authmigrate_sandbox::auth0::mfa::totp_code(&key, now));
                        }
                        None => {
                            return Ok(Some(refused(
                                &c,
                                "no TOTP code: the carried secret is not base32".into(),
                            )));
                        }
                    }
                }
                let reply = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .with_context(|| format!("`--login-check`: cannot reach `{url}`"))?;
                let status = reply.status().as_u16();
                if status == 200 {
                    return Ok(None);
                }
                let v: Value = reply.json().await.unwrap_or_default();
                let e = &v["error"];
                let answer = match (e["reason"].as_str(), e["message"].as_str()) {
                    (Some(r), Some(m)) => format!("refused: HTTP {status} {r} ({m})"),
                    _ => format!("refused: HTTP {status}"),
                };
                Ok(Some(refused(&c, answer)))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut diffs = Vec::new();
    for a in answers {
        if let Some(d) = a? {
            diffs.push(d);
        }
    }
    diffs.sort_by_key(|d| d.index);
    let counts = LoginCounts {
        checked,
        failed: diffs.len() as u64,
    };
    out.say(format!(
        "login check: {} sampled users logged in at the target: {} accepted, {} refused",
        counts.checked,
        counts.checked - counts.failed,
        counts.failed
    ));
    Ok((counts, diffs))
}

fn refused(c: &Candidate, answer: String) -> Difference {
    Difference::login(c.index, c.user.clone(), c.source_id.clone(), answer)
}

/// RFC 4648 base32 (padding and case ignored) to bytes; `None` if not base32.
fn base32(s: &str) -> Option<Vec<u8>> {
    let (mut bits, mut n, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | u32::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_decodes_rfc_4648_and_refuses_other_text() {
        assert_eq!(base32("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(base32("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(base32("not base32!"), None);
    }

    #[test]
    fn a_candidate_needs_a_username_a_login_id_and_is_not_expected_blocked() {
        let source: UserRecord = serde_json::from_str(
            r#"{"source_id":"auth0|1","email":"Ada@example.com","username":"ada"}"#,
        )
        .unwrap();
        let mut want = source.clone();
        want.email = Some("ada@example.com".into());
        want.mfa = vec![MfaFactor::Totp {
            secret: Secret::new("JBSWY3DPEHPK3PXP"),
        }];
        let e = Expected::exact(want.clone());
        let c = candidate(3, &source, &e, "email", false).unwrap();
        assert_eq!(
            (c.login_id.as_str(), c.password.expose(), c.totp.is_some()),
            ("ada@example.com", "ada", true)
        );
        assert!(
            candidate(3, &source, &e, "email", true).is_none(),
            "hashes joined, none for this user: it has no password to try"
        );
        want.blocked = Some(true);
        assert!(candidate(3, &source, &Expected::exact(want), "email", false).is_none());
        let mut nameless = source.clone();
        nameless.username = None;
        assert!(candidate(3, &nameless, &e, "email", false).is_none());
    }
}
