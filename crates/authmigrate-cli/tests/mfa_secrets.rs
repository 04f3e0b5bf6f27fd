//! `--mfa-secrets FILE` on `convert` and `import` (issue 13): the Auth0 MFA export
//! joined to an Auth0 user export by user id, run as the real binary against the
//! in-process sandbox. The files are the sandbox's own: its user export, and the
//! password-hash and MFA exports that stand in for the Auth0 support ticket's.

mod common;

use std::path::{Path, PathBuf};

use common::{Env, env, text};
use serde_json::{Value, json};

const SECRET_1: &str = "JBSWY3DPEHPK3PXP";
const SECRET_3: &str = "PA6FWZ3EGU2DMZCSKU2DOQCNNY2X26L2";
const PASSWORD: &str = "Sekret-1";

/// The files of a seeded Auth0 tenant: `auth0|m1` (TOTP `SECRET_1` and a recovery
/// code), `auth0|m2` (no MFA) and `auth0|m3` (TOTP `SECRET_3`), all with `PASSWORD`.
struct Files {
    export: PathBuf,
    hashes: PathBuf,
    mfa: PathBuf,
}

async fn seeded() -> (Env, Files) {
    let env = env().await;
    let hash = bcrypt::hash_with_salt(PASSWORD, 10, [7; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    let password = json!({"algorithm": "bcrypt", "hash": {"value": hash}});
    let rows = [
        json!({"source_id": "auth0|m1", "email": "m1@example.com", "password": password,
               "mfa": [{"totp": {"secret": SECRET_1}}]}),
        json!({"source_id": "auth0|m2", "email": "m2@example.com", "password": password}),
        json!({"source_id": "auth0|m3", "email": "m3@example.com", "password": password,
               "mfa": [{"totp": {"secret": SECRET_3}}]}),
    ];
    let users = env.path("seed.ndjson");
    std::fs::write(
        &users,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let o = env
        .run(&["import", "--to", "auth0", users.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        env.sandbox
            .auth0()
            .seed_recovery_code("auth0|m1", "RECOVERY-1")
    );
    let files = Files {
        export: env.path("export.ndjson"),
        hashes: env.path("hashes.ndjson"),
        mfa: env.path("mfa.ndjson"),
    };
    std::fs::write(&files.hashes, support_export(&env, "password-hashes").await).unwrap();
    std::fs::write(&files.mfa, support_export(&env, "mfa-secrets").await).unwrap();
    let o = env
        .run(&[
            "export",
            "--from",
            "auth0",
            "--out",
            files.export.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (env, files)
}

/// One of the exports the sandbox serves in place of Auth0 support's.
async fn support_export(env: &Env, what: &str) -> Vec<u8> {
    let url = format!(
        "{}/_sandbox/auth0/{what}?connection=Username-Password-Authentication",
        env.sandbox.base_url()
    );
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_email<'a>(records: &'a [Value], email: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("{email} in {records:?}"))
}

/// The last `--json` line, which must be the `summary` event.
fn summary(o: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().expect("json lines")).unwrap();
    assert_eq!(last["type"], "summary", "the summary is last: {stdout}");
    last["data"].clone()
}

fn assert_no_secret(what: &str, haystack: &str) {
    for s in [SECRET_1, SECRET_3] {
        assert!(
            !haystack.contains(s),
            "{what} holds a TOTP secret: {haystack}"
        );
    }
}

#[cfg(unix)]
fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

#[cfg(not(unix))]
fn assert_private(_: &Path) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_to_authgear_gives_exactly_the_totp_users_their_exported_secret() {
    let (env, f) = seeded().await;
    // The default path, the spilling password join (a 1-byte budget), and no password
    // join at all (where the transcoder would otherwise take every line).
    let mut outputs = Vec::new();
    for (name, hashes, budget) in [
        ("index", true, None),
        ("spill", true, Some("1")),
        ("nohash", false, None),
    ] {
        let out = env.path(&format!("authgear-{name}.ndjson"));
        let report = env.path(&format!("report-{name}.json"));
        let mut args = vec![
            "--json",
            "convert",
            "--to",
            "authgear",
            p(&f.export),
            "--mfa-secrets",
            p(&f.mfa),
            "--out",
            p(&out),
            "--report",
            p(&report),
        ];
        if hashes {
            args.extend(["--password-hashes", p(&f.hashes)]);
        }
        let vars: Vec<(&str, &str)> = budget
            .map(|b| vec![("AUTHMIGRATE_JOIN_MEMORY", b)])
            .unwrap_or_default();
        let o = env.run_env(&args, &vars).await;
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        let shown = text(&o);
        assert!(
            shown.contains("mfa: 2 users with a TOTP secret"),
            "{name}: {shown}"
        );
        assert!(
            shown.contains("mfa: 2 users carry their TOTP secret"),
            "{name}: {shown}"
        );
        assert_no_secret("stdout/stderr", &shown);
        assert_no_secret("the report", &std::fs::read_to_string(&report).unwrap());
        assert_private(&out);

        let s = summary(&o);
        assert_eq!(s["mfa_joined"], 2, "{name}: {s}");
        assert_eq!(s["mfa"]["otp_users"], 2, "{name}: {s}");
        assert_eq!(s["mfa"]["recovery_codes"], 1, "{name}: {s}");
        let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_eq!(r["summary"]["mfa_joined"], 2, "{name}: {r}");

        let records = lines(&out);
        assert_eq!(records.len(), 3, "{name}");
        assert_eq!(
            by_email(&records, "m1@example.com")["mfa"]["totp"]["secret"],
            SECRET_1
        );
        assert_eq!(
            by_email(&records, "m3@example.com")["mfa"]["totp"]["secret"],
            SECRET_3
        );
        let m2 = by_email(&records, "m2@example.com");
        assert!(m2.get("mfa").is_none(), "{name}: m2 has no TOTP: {m2}");
        for r in &records {
            assert_eq!(
                r["password"]["type"].is_string(),
                hashes,
                "{name}: passwords joined too: {r}"
            );
        }
        if hashes {
            outputs.push(std::fs::read(&out).unwrap());
        }
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the index and the spilling join agree"
    );
    env.sandbox.shutdown().await;
}

/// RFC 4648 base32 (no padding) to bytes.
fn base32(s: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32"),
        };
        bits = (bits << 5) | u32::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

async fn authgear_login(env: &Env, body: Value) -> (u16, Value) {
    let url = format!("{}/_sandbox/authgear/login", env.sandbox.base_url());
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json::<Value>().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_to_authgear_carries_the_totp_secret_and_the_user_logs_in_with_a_code() {
    let (env, f) = seeded().await;
    let o = env
        .run(&[
            "--json",
            "import",
            "--to",
            "authgear",
            p(&f.export),
            "--password-hashes",
            p(&f.hashes),
            "--mfa-secrets",
            p(&f.mfa),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let shown = text(&o);
    assert!(
        shown.contains("mfa: 2 users carry their TOTP secret"),
        "{shown}"
    );
    assert_no_secret("stdout/stderr", &shown);
    let s = summary(&o);
    assert_eq!(s["summary"]["inserted"], 3, "{s}");
    assert_eq!(s["mfa_joined"], 2, "{s}");
    assert_eq!(s["mfa"]["otp_users"], 2, "{s}");

    let ag = env.sandbox.authgear();
    for (email, totps) in [
        ("m1@example.com", 1),
        ("m2@example.com", 0),
        ("m3@example.com", 1),
    ] {
        assert_eq!(
            ag.user_by_login_id(email).unwrap().totp_count,
            totps,
            "{email}"
        );
    }
    // The password alone is refused for a TOTP user; a wrong code too; a current one passes.
    let (s, v) = authgear_login(
        &env,
        json!({"login_id": "m1@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert!(v.to_string().contains("TOTPRequired"), "{v}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let code = authmigrate_sandbox::auth0::mfa::totp_code(&base32(SECRET_1), now);
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let (s, _) = authgear_login(
        &env,
        json!({"login_id": "m1@example.com", "password": PASSWORD, "totp": wrong}),
    )
    .await;
    assert_eq!(s, 401, "a wrong code is refused");
    let (s, v) = authgear_login(
        &env,
        json!({"login_id": "m1@example.com", "password": PASSWORD, "totp": code}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let code3 = authmigrate_sandbox::auth0::mfa::totp_code(&base32(SECRET_3), now);
    let (s, v) = authgear_login(
        &env,
        json!({"login_id": "m3@example.com", "password": PASSWORD, "totp": code3}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = authgear_login(
        &env,
        json!({"login_id": "m2@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200, "no TOTP: the password is enough: {v}");

    // Again with `--upsert`: the users are updated, Authgear ignores `mfa` on update,
    // and each TOTP user is said to be left without it (stderr and report).
    let report = env.path("upsert.json");
    let o = env
        .run(&[
            "import",
            "--to",
            "authgear",
            p(&f.export),
            "--mfa-secrets",
            p(&f.mfa),
            "--upsert",
            "--report",
            p(&report),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let shown = text(&o);
    assert!(
        shown.contains("with `--upsert`, Authgear ignores `mfa.totp`"),
        "{shown}"
    );
    assert!(
        shown.contains("mfa: of those, 2 users were updated: Authgear ignores `mfa.totp`"),
        "{shown}"
    );
    assert!(shown.contains("`m1@example.com` was updated"), "{shown}");
    assert!(!shown.contains("`m2@example.com` was updated"), "{shown}");
    assert_no_secret("stdout/stderr", &shown);
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for rec in r["records"].as_array().unwrap() {
        assert_eq!(rec["outcome"], "updated", "{rec}");
        let warned = rec["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap().contains("mfa.totp")));
        assert_eq!(warned, rec["email"] != "m2@example.com", "{rec}");
    }
    assert_eq!(ag.user_by_login_id("m1@example.com").unwrap().totp_count, 1);
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_auth0_the_secret_becomes_a_totp_factor() {
    let (env, f) = seeded().await;
    let out = env.path("auth0.json");
    let o = env
        .run(&[
            "convert",
            "--to",
            "auth0",
            p(&f.export),
            "--password-hashes",
            p(&f.hashes),
            "--mfa-secrets",
            p(&f.mfa),
            "--out",
            p(&out),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("mfa: 2 users carry their TOTP secret"));
    assert_no_secret("stdout/stderr", &text(&o));
    assert_private(&out);
    let users: Vec<Value> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        by_email(&users, "m1@example.com")["mfa_factors"],
        json!([{"totp": {"secret": SECRET_1}}])
    );
    assert_eq!(
        by_email(&users, "m3@example.com")["mfa_factors"],
        json!([{"totp": {"secret": SECRET_3}}])
    );
    assert!(
        by_email(&users, "m2@example.com")
            .get("mfa_factors")
            .is_none()
    );

    // `import --to auth0` of the same export into another tenant: its own MFA export
    // then holds the same secrets.
    let other = env_target().await;
    let o = other
        .run(&[
            "import",
            "--to",
            "auth0",
            p(&f.export),
            "--password-hashes",
            p(&f.hashes),
            "--mfa-secrets",
            p(&f.mfa),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("mfa: 2 users carry their TOTP secret"));
    assert_no_secret("stdout/stderr", &text(&o));
    let a = other.sandbox.auth0();
    assert_eq!(a.mfa_factor_kinds("auth0|m1"), ["totp"]);
    assert_eq!(a.mfa_factor_kinds("auth0|m3"), ["totp"]);
    assert!(a.mfa_factor_kinds("auth0|m2").is_empty());
    let exported = String::from_utf8(support_export(&other, "mfa-secrets").await).unwrap();
    let otp: Vec<(String, String)> = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "otp")
        .map(|v| {
            (
                v["user_id"].as_str().unwrap().to_owned(),
                v["otp_secret"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(otp.len(), 2, "{exported}");
    assert!(
        otp.contains(&("auth0|m1".into(), SECRET_1.into())),
        "{otp:?}"
    );
    assert!(
        otp.contains(&("auth0|m3".into(), SECRET_3.into())),
        "{otp:?}"
    );
    other.sandbox.shutdown().await;
    env.sandbox.shutdown().await;
}

/// A second, empty sandbox.
async fn env_target() -> Env {
    env().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mfa_row_or_an_input_that_is_not_an_auth0_export_is_refused() {
    let (env, f) = seeded().await;
    let out = env.path("out.ndjson");
    // A bad row: the file and the line are named, and no secret is shown.
    let bad = env.path("bad-mfa.ndjson");
    std::fs::write(
        &bad,
        format!(
            "{}\n{}\n",
            json!({"user_id": "auth0|m1", "type": "otp", "otp_secret": SECRET_1}),
            json!({"type": "otp", "otp_secret": SECRET_3})
        ),
    )
    .unwrap();
    let broken = env.path("broken-mfa.ndjson");
    std::fs::write(
        &broken,
        format!(
            "\n{}\n{{\"user_id\":\"auth0|m3\",\"type\":\"otp\",\"otp_secret\":\"{SECRET_3}\"\n",
            json!({"user_id": "auth0|m1", "type": "otp", "otp_secret": SECRET_1})
        ),
    )
    .unwrap();
    for (file, line, why) in [
        (&bad, 2, "`user_id` is missing"),
        (&broken, 3, "not a JSON object"),
    ] {
        let expected = format!(
            "{}` line {line}: {why}",
            file.file_name().unwrap().to_str().unwrap()
        );
        for cmd in [
            vec![
                "convert",
                "--to",
                "authgear",
                p(&f.export),
                "--out",
                p(&out),
            ],
            vec!["import", "--to", "authgear", p(&f.export)],
        ] {
            let mut args = cmd.clone();
            args.extend(["--mfa-secrets", p(file)]);
            let o = env.run(&args).await;
            assert_eq!(o.status.code(), Some(2), "{}", text(&o));
            let shown = text(&o);
            assert!(shown.contains(&expected), "{expected}: {shown}");
            assert_no_secret("the error", &shown);
        }
    }
    assert!(!out.exists(), "nothing written");
    assert!(env.sandbox.authgear().users().is_empty(), "nothing sent");

    // An input that is not an Auth0 user export: refused, naming the flag.
    let neutral = env.path("neutral.ndjson");
    let o = env
        .run(&[
            "convert",
            "--to",
            "neutral",
            p(&f.export),
            "--out",
            p(&neutral),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let body = env.path("body.json");
    let o = env
        .run(&[
            "convert",
            "--to",
            "authgear",
            p(&f.export),
            "--out",
            p(&body),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (input, reads_as) in [(&neutral, "neutral"), (&body, "authgear-body")] {
        for cmd in [
            vec!["convert", "--to", "authgear", p(input), "--out", p(&out)],
            vec!["import", "--to", "authgear", p(input)],
            vec!["import", "--to", "auth0", p(input)],
        ] {
            let mut args = cmd.clone();
            args.extend(["--mfa-secrets", p(&f.mfa)]);
            let o = env.run(&args).await;
            assert_eq!(o.status.code(), Some(2), "{}", text(&o));
            let shown = text(&o);
            assert!(
                shown.contains("`--mfa-secrets` applies to an Auth0 user export only"),
                "{shown}"
            );
            assert!(shown.contains(&format!("reads as {reads_as}")), "{shown}");
        }
    }
    // Standard input cannot be told apart before it is read.
    let o = env
        .run(&[
            "convert",
            "--to",
            "authgear",
            "-",
            "--out",
            p(&out),
            "--mfa-secrets",
            p(&f.mfa),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("`--mfa-secrets` needs the Auth0 user export as a file"));
    // `--mode create` makes users without factors.
    let o = env
        .run(&[
            "import",
            "--to",
            "auth0",
            "--mode",
            "create",
            p(&f.export),
            "--mfa-secrets",
            p(&f.mfa),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("`--mfa-secrets` needs `--mode bulk`"));
    assert!(!out.exists(), "nothing written");
    assert!(env.sandbox.authgear().users().is_empty(), "nothing sent");
    env.sandbox.shutdown().await;
}
