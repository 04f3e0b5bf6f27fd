//! `--mode create` (one POST /api/v2/users per user) against the sandbox.

use authmigrate_auth0::create::{MAX_CREATE_USERS, create_users};
use authmigrate_auth0::{Auth0Auth, Auth0Settings};
use authmigrate_core::UserRecord;
use authmigrate_core::backend::{BackendError, Outcome};
use authmigrate_core::retry::RetryPolicy;
use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use secrecy::SecretString;

async fn sandbox_with(faults: FaultConfig, auth0: Auth0Config) -> Sandbox {
    Sandbox::start(SandboxConfig {
        faults,
        auth0: Auth0Config {
            bcrypt_cost: 4,
            ..auth0
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

fn settings(sb: &Sandbox) -> Auth0Settings {
    let mut s = Auth0Settings::new(
        sb.base_url(),
        Auth0Auth::ClientCredentials {
            client_id: sb.auth0().client_id().to_owned(),
            client_secret: SecretString::from(sb.auth0().client_secret().to_owned()),
        },
    );
    s.retry = RetryPolicy::immediate(10);
    s
}

fn user(i: usize) -> UserRecord {
    UserRecord {
        email: Some(format!("c{i}@example.com")),
        email_verified: Some(true),
        username: Some(format!("c{i}")),
        name: Some(format!("C {i}")),
        ..Default::default()
    }
}

#[tokio::test]
async fn creates_users_writes_private_tickets_and_reports_each_record() {
    let sb = sandbox_with(
        FaultConfig {
            burst_429: Some((2, 1)),
            max_faults: Some(4),
            ..FaultConfig::default()
        },
        Auth0Config::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tickets = dir.path().join("tickets.csv");
    let mut records: Vec<(u64, UserRecord)> = (0..3).map(|i| (i as u64 * 10, user(i))).collect();
    records.push((30, UserRecord::default())); // no email
    records.push((40, user(1))); // already created above
    let report = create_users(&settings(&sb), records, Some(&tickets))
        .await
        .unwrap();
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    let kinds: Vec<(u64, Outcome)> = report
        .outcomes
        .iter()
        .map(|(i, o)| (*i, o.outcome))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, Outcome::Inserted),
            (10, Outcome::Inserted),
            (20, Outcome::Inserted),
            (30, Outcome::Failed),
            (40, Outcome::Skipped)
        ]
    );
    assert_eq!(report.outcomes[3].1.code.as_deref(), Some("MISSING_EMAIL"));
    assert!(sb.faults().injected() > 0, "the 429s were retried");
    let u = sb.auth0().user_by_email("c0@example.com").unwrap();
    assert_eq!(u["name"], "C 0");
    assert_eq!(u["email_verified"], true);
    assert_eq!(
        report.outcomes[0].1.user_id.as_deref(),
        u["user_id"].as_str()
    );
    // A username is left out (the connection does not require one), with a warning.
    assert!(u.get("username").is_none());
    assert!(
        report.outcomes[0]
            .1
            .warnings
            .iter()
            .any(|w| w.contains("username"))
    );

    let text = std::fs::read_to_string(&tickets).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let issued = sb.auth0().tickets();
    assert_eq!(issued.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("c{i}@example.com,{}", issued[i].url));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tickets).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn usernames_are_sent_when_the_connection_requires_them() {
    let mut conn = Auth0Config::default().connections[0].clone();
    conn.requires_username = true;
    let sb = sandbox_with(
        FaultConfig::default(),
        Auth0Config {
            connections: vec![conn],
            ..Auth0Config::default()
        },
    )
    .await;
    let report = create_users(&settings(&sb), vec![(0, user(7))], None)
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].1.outcome, Outcome::Inserted);
    assert_eq!(
        sb.auth0().user_by_email("c7@example.com").unwrap()["username"],
        "c7"
    );
}

#[tokio::test]
async fn more_than_1000_users_and_bad_connections_are_refused_up_front() {
    let sb = sandbox_with(FaultConfig::default(), Auth0Config::default()).await;
    let many: Vec<(u64, UserRecord)> = (0..=MAX_CREATE_USERS)
        .map(|i| (i as u64, user(i)))
        .collect();
    let err = create_users(&settings(&sb), many, None).await.unwrap_err();
    match err {
        BackendError::Fatal { message, hint } => {
            assert!(
                message.contains("at most 1000 users, got 1001"),
                "{message}"
            );
            assert!(message.contains("rate limits"));
            assert!(hint.unwrap().contains("default bulk import"));
        }
        other => panic!("{other:?}"),
    }
    let mut s = settings(&sb);
    s.connection = "Disabled-DB".into();
    let err = create_users(&s, vec![(0, user(0))], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("being disabled"), "{err}");
    assert!(sb.auth0().users().is_empty());
}

/// A connection with the strictest password policy (min length 24) and usernames of
/// 2 to 8 characters: every generated password passes the emulator's own policy
/// check, and a username outside the length fails before anything is sent.
#[tokio::test]
async fn passwords_pass_the_strictest_policy_and_usernames_the_connections_length() {
    let mut conn = Auth0Config::default().connections[0].clone();
    conn.requires_username = true;
    conn.password_policy = Some(authmigrate_sandbox::auth0::PasswordPolicy::strictest(24));
    conn.username_length = Some((2, 8));
    let sb = sandbox_with(
        FaultConfig::default(),
        Auth0Config {
            connections: vec![conn],
            ..Auth0Config::default()
        },
    )
    .await;
    let mut records: Vec<(u64, UserRecord)> = (0..25).map(|i| (i as u64, user(i))).collect();
    records[3].1.username = Some("much-too-long".into());
    let report = create_users(&settings(&sb), records, None).await.unwrap();
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    for (i, o) in &report.outcomes {
        if *i == 3 {
            assert_eq!(o.outcome, Outcome::Failed);
            assert_eq!(o.code.as_deref(), Some("INVALID_USERNAME"));
            assert!(o.message.as_deref().unwrap().contains("2 to 8"), "{o:?}");
        } else {
            assert_eq!(o.outcome, Outcome::Inserted, "{i}: {o:?}");
        }
    }
    assert_eq!(sb.auth0().users().len(), 24);
    assert!(sb.auth0().user_by_email("c3@example.com").is_none());
}
