//! `--mode create`: creates a small set of users one by one with `POST /api/v2/users`
//! (like Auth0's seed scripts), each with a random strong password, and optionally
//! writes a password-change ticket per created user.
//!
//! Password hashes cannot be imported this way (use the default bulk mode for
//! that); the users set their own password through the tickets.

use std::fmt;
use std::io::Write;
use std::path::Path;

use authmigrate_core::backend::{BackendError, Outcome, RecordFailure, RecordOutcome};
use authmigrate_core::driver::NOT_IMPORTED;
use authmigrate_core::record::UserRecord;
use rand::Rng;
use rand::seq::SliceRandom;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Auth0Client, api_message, auth_error};
use crate::config::Auth0Settings;
use crate::tickets::{TicketFor, create_ticket};
use authmigrate_core::io::create_output;

/// The most users `--mode create` accepts in one run.
pub const MAX_CREATE_USERS: usize = 1000;
/// Length of the generated passwords.
pub const PASSWORD_LEN: usize = 24;

/// What a create run did: one outcome per record, in input order, and the error that
/// stopped it early (the records not reached are failed with `NOT_IMPORTED`).
#[derive(Debug)]
pub struct CreateReport {
    /// `(input index, outcome)` for every record given.
    pub outcomes: Vec<(u64, RecordOutcome)>,
    /// Set when a fatal error stopped the run before the end.
    pub stopped: Option<BackendError>,
}

/// A generated password: never printed.
struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A random password of at least [`PASSWORD_LEN`] characters (or the connection's
/// `min_length`) that passes Auth0's strictest policies (shared docs, auth0-api.md
/// §6 (NEW): "Excellent" allows "no more than 2 identical characters in a row";
/// flexible policies can "block three or more sequential characters"): lower and
/// upper case letters, digits and symbols, no character three times in a row, no
/// three ascending or descending neighbours (`abc`, `321`).
fn random_password(min_length: usize) -> Password {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#$%&*+-=?@^_~";
    let mut rng = rand::rngs::OsRng;
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    let len = PASSWORD_LEN.max(min_length);
    loop {
        let mut chars: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL]
            .iter()
            .map(|set| set[rng.gen_range(0..set.len())])
            .collect();
        while chars.len() < len {
            chars.push(all[rng.gen_range(0..all.len())]);
        }
        chars.shuffle(&mut rng);
        if passes_strictest(&chars) {
            return Password(chars.into_iter().map(char::from).collect());
        }
    }
}

/// No character three times in a row, no three sequential alphanumerics.
fn passes_strictest(chars: &[u8]) -> bool {
    chars.windows(3).all(|w| {
        let identical = w[0] == w[1] && w[1] == w[2];
        let (a, b, c) = (i16::from(w[0]), i16::from(w[1]), i16::from(w[2]));
        let sequential = w.iter().all(u8::is_ascii_alphanumeric)
            && ((b - a == 1 && c - b == 1) || (a - b == 1 && b - c == 1));
        !identical && !sequential
    })
}

/// A username outside the connection's `validation.username {min, max}` fails before
/// it is sent (auth0-api.md §6 (NEW)).
fn check_username(
    record: &UserRecord,
    length: Option<(usize, usize)>,
) -> Result<(), RecordFailure> {
    let (Some(name), Some((min, max))) = (record.username.as_deref(), length) else {
        return Ok(());
    };
    let n = name.chars().count();
    if n < min || n > max {
        return Err(RecordFailure::new(
            "INVALID_USERNAME",
            format!(
                "`username`: the connection takes usernames of {min} to {max} characters \
                 (options.validation.username), this one has {n}"
            ),
        ));
    }
    Ok(())
}

/// The `POST /api/v2/users` body for a record, plus warnings for what is left out.
fn user_body(
    record: &UserRecord,
    connection: &str,
    requires_username: bool,
    password: &Password,
) -> Result<(Value, Vec<String>), RecordFailure> {
    let Some(email) = record.email.as_deref().filter(|e| !e.is_empty()) else {
        return Err(RecordFailure::new(
            "MISSING_EMAIL",
            "`email`: creating a user in a database connection requires an e-mail address",
        ));
    };
    let mut warnings = Vec::new();
    let mut o = Map::new();
    o.insert("connection".into(), json!(connection));
    o.insert("email".into(), json!(email));
    o.insert(
        "email_verified".into(),
        json!(record.email_verified.unwrap_or(false)),
    );
    if record.email_verified != Some(true) {
        // Tickets replace the verification e-mail.
        o.insert("verify_email".into(), json!(false));
    }
    if let Some(u) = &record.username {
        if requires_username {
            o.insert("username".into(), json!(u));
        } else {
            warnings
                .push("`username` left out: the connection does not require usernames".to_owned());
        }
    }
    let mut put = |key: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            o.insert(key.into(), json!(v));
        }
    };
    put("name", &record.name);
    put("given_name", &record.given_name);
    put("family_name", &record.family_name);
    put("nickname", &record.nickname);
    put("picture", &record.picture);
    put("phone_number", &record.phone_number);
    if let Some(b) = record.blocked {
        o.insert("blocked".into(), json!(b));
    }
    if let Some(m) = &record.user_metadata {
        o.insert("user_metadata".into(), Value::Object(m.clone()));
    }
    if let Some(m) = &record.app_metadata {
        o.insert("app_metadata".into(), Value::Object(m.clone()));
    }
    if record.password.is_some() {
        warnings.push(
            "the password hash is not used in create mode: the user got a random password (use the default bulk mode to keep passwords)"
                .to_owned(),
        );
    }
    if !record.mfa.is_empty() {
        warnings.push("MFA factors are not created in create mode".to_owned());
    }
    o.insert("password".into(), json!(password.0));
    Ok((Value::Object(o), warnings))
}

/// Whether a 400 says the connection (not the user) is unusable.
fn is_connection_problem(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("client_id:") && m.contains("connection:"))
        || m.contains("connection is disabled")
        || m.contains("connection does not exist")
        || m.contains("does not support user creation")
}

/// Creates the users one by one (see the [module docs](self)). Refuses more than
/// [`MAX_CREATE_USERS`] records and an unusable connection before creating anything.
/// With `tickets`, writes one `email,ticket_url` line per created user to that file
/// (created with mode 0600).
pub async fn create_users(
    settings: &Auth0Settings,
    records: Vec<(u64, UserRecord)>,
    tickets: Option<&Path>,
) -> Result<CreateReport, BackendError> {
    if records.len() > MAX_CREATE_USERS {
        return Err(BackendError::fatal(
            format!(
                "create mode takes at most {MAX_CREATE_USERS} users, got {}: it sends one request per user and would run into auth0's rate limits",
                records.len()
            ),
            Some(
                "leave out --mode create to use the default bulk import, which has no such limit"
                    .to_owned(),
            ),
        ));
    }
    let client = Auth0Client::new(settings)?;
    let conn = crate::backend::find_connection(&client, &settings.connection).await?;
    let mut ticket_file = match tickets {
        Some(path) => Some((
            path,
            create_output(path, true).map_err(|e| BackendError::fatal(e.to_string(), None))?,
        )),
        None => None,
    };
    let users_url = client.api_url(&["users"]);
    let mut outcomes = Vec::with_capacity(records.len());
    let mut stopped = None;
    let mut rest = records.into_iter();
    for (index, record) in rest.by_ref() {
        if let Err(f) = check_username(&record, conn.username_length) {
            outcomes.push((index, RecordOutcome::failed(f)));
            continue;
        }
        let password = random_password(conn.password_min_length.unwrap_or(0));
        let (body, warnings) = match user_body(
            &record,
            &settings.connection,
            conn.requires_username,
            &password,
        ) {
            Ok(b) => b,
            Err(f) => {
                outcomes.push((index, RecordOutcome::failed(f)));
                continue;
            }
        };
        let what = "create a user";
        let reply = match client
            .send(what, |http| {
                http.request(Method::POST, users_url.clone()).json(&body)
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                outcomes.push((index, not_created(&e)));
                stopped = Some(e);
                break;
            }
        };
        drop(body);
        drop(password);
        let status = reply.status.as_u16();
        let outcome = match status {
            201 | 200 => {
                let user_id = reply
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v.get("user_id").and_then(Value::as_str).map(str::to_owned));
                let mut o = RecordOutcome::success(Outcome::Inserted, user_id.clone())
                    .with_warnings(warnings);
                if let (Some((path, file)), Some(email)) = (ticket_file.as_mut(), &record.email) {
                    let who = user_id.as_deref().map(TicketFor::UserId);
                    let ticket = match who {
                        Some(who) => create_ticket(&client, who).await,
                        None => Err("no ticket: auth0 did not return the new user's id".to_owned()),
                    };
                    match ticket {
                        Ok(url) => {
                            if let Err(e) = writeln!(file, "{email},{url}") {
                                let e = BackendError::fatal(
                                    format!("cannot write `{}`: {e}", path.display()),
                                    None,
                                );
                                outcomes.push((index, o));
                                stopped = Some(e);
                                break;
                            }
                        }
                        Err(reason) => o.warnings.push(reason),
                    }
                }
                o
            }
            409 => RecordOutcome::success(Outcome::Skipped, None).with_warnings(std::iter::once(
                format!("already exists: {}", api_message(&reply)),
            )),
            401 | 403 => {
                let e = auth_error(what, &reply);
                outcomes.push((index, not_created(&e)));
                stopped = Some(e);
                break;
            }
            400 if is_connection_problem(&api_message(&reply)) => {
                let e = BackendError::fatal(
                    format!(
                        "auth0 refused to create users in `{}`: {}",
                        settings.connection,
                        api_message(&reply)
                    ),
                    Some(
                        "enable this application on the connection (PATCH /api/v2/connections/{id}/clients) and try again"
                            .to_owned(),
                    ),
                );
                outcomes.push((index, not_created(&e)));
                stopped = Some(e);
                break;
            }
            _ => RecordOutcome::failed(RecordFailure::new(
                provider_code(&reply),
                api_message(&reply),
            )),
        };
        outcomes.push((index, outcome));
    }
    for (index, _) in rest {
        let reason = stopped
            .as_ref()
            .map_or_else(String::new, |e| format!(": {e}"));
        outcomes.push((
            index,
            RecordOutcome::failed(RecordFailure::new(
                NOT_IMPORTED,
                format!("the run stopped before this user was created{reason}"),
            )),
        ));
    }
    if let Some((path, file)) = ticket_file.take()
        && let Err(e) = file.finish()
    {
        stopped.get_or_insert(BackendError::fatal(
            format!("cannot write `{}`: {e}", path.display()),
            None,
        ));
    }
    Ok(CreateReport { outcomes, stopped })
}

fn not_created(e: &BackendError) -> RecordOutcome {
    RecordOutcome::failed(RecordFailure::new(
        NOT_IMPORTED,
        format!("the user was not created: {e}"),
    ))
}

/// The provider's `errorCode` (upper-cased), else `HTTP_<status>`.
fn provider_code(reply: &authmigrate_core::retry::HttpReply) -> String {
    reply
        .json::<Value>()
        .ok()
        .and_then(|v| {
            v.get("errorCode")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
        })
        .unwrap_or_else(|| format!("HTTP_{}", reply.status.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_strong_and_differ() {
        let a = random_password(0);
        let b = random_password(40);
        assert_ne!(a.0, b.0);
        assert_eq!(a.0.len(), PASSWORD_LEN);
        assert_eq!(b.0.len(), 40);
        for _ in 0..500 {
            assert!(passes_strictest(random_password(0).0.as_bytes()));
        }
        for p in [&a, &b] {
            assert!(p.0.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.0.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.0.chars().any(|c| c.is_ascii_digit()));
            assert!(p.0.chars().any(|c| !c.is_ascii_alphanumeric()));
        }
        assert_eq!(format!("{a:?}"), "[REDACTED]");
    }

    #[test]
    fn the_strictest_policies_refuse_runs_and_sequences() {
        for bad in ["aaaB1!x", "xabc1!Q", "Q!x321k", "xcbaQ1!"] {
            assert!(!passes_strictest(bad.as_bytes()), "{bad}");
        }
        for good in ["aaB1!xa", "ab1!Qba", "a!b#c$1"] {
            assert!(passes_strictest(good.as_bytes()), "{good}");
        }
    }

    #[test]
    fn usernames_outside_the_connections_length_fail_naming_the_rule() {
        let r = |u: &str| UserRecord {
            username: Some(u.into()),
            ..Default::default()
        };
        assert!(check_username(&r("ann"), Some((3, 8))).is_ok());
        assert!(check_username(&r("a-very-long-name"), None).is_ok());
        let f = check_username(&r("a-very-long-name"), Some((3, 8))).unwrap_err();
        assert_eq!(f.code, "INVALID_USERNAME");
        assert!(
            f.message.contains("3 to 8") && f.message.contains("16"),
            "{}",
            f.message
        );
        assert!(check_username(&r("an"), Some((3, 8))).is_err());
    }

    #[test]
    fn body_drops_username_unless_required() {
        let r = UserRecord {
            email: Some("a@x.com".into()),
            username: Some("ann".into()),
            name: Some("Ann".into()),
            ..Default::default()
        };
        let pw = random_password(0);
        let (b, w) = user_body(&r, "DB", false, &pw).unwrap();
        assert!(b.get("username").is_none());
        assert_eq!(b["connection"], "DB");
        assert_eq!(b["name"], "Ann");
        assert_eq!(w.len(), 1);
        let (b, w) = user_body(&r, "DB", true, &pw).unwrap();
        assert_eq!(b["username"], "ann");
        assert!(w.is_empty());
        let none = UserRecord::default();
        assert_eq!(
            user_body(&none, "DB", false, &pw).unwrap_err().code,
            "MISSING_EMAIL"
        );
    }
}
