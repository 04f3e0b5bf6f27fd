//! `authmigrate sandbox`, run as the real binary: it prints variables that work.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

#[test]
fn sandbox_prints_working_variables_and_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let env_file = dir.path().join(".env");
    let mut child = Command::new(env!("CARGO_BIN_EXE_authmigrate"))
        .args([
            "sandbox",
            "--port",
            "0",
            "--key-file",
            key.to_str().unwrap(),
            "--env-file",
            env_file.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut vars = std::collections::HashMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let (k, v) = line
            .strip_prefix("export ")
            .unwrap()
            .split_once('=')
            .unwrap();
        vars.insert(k.to_owned(), v.to_owned());
        if k == "AUTHGEAR_PRIVATE_KEY_FILE" {
            break;
        }
    }
    for k in [
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTHGEAR_ENDPOINT",
        "AUTHGEAR_PROJECT_ID",
        "AUTHGEAR_KEY_ID",
    ] {
        assert!(vars.contains_key(k), "{k} missing: {vars:?}");
    }
    assert!(vars["AUTH0_DOMAIN"].starts_with("http://127.0.0.1:"));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The variables really point the other commands at the sandbox (read from `.env`).
    let users = dir.path().join("u.json");
    let generated = Command::new(env!("CARGO_BIN_EXE_authmigrate"))
        .args([
            "generate",
            "--count",
            "3",
            "--cost",
            "4",
            "--format",
            "authgear",
            "--out",
            users.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let mut import = Command::new(env!("CARGO_BIN_EXE_authmigrate"));
    import
        .args(["import", "--to", "authgear", users.to_str().unwrap()])
        .current_dir(dir.path());
    for k in [
        "AUTH0_DOMAIN",
        "AUTHGEAR_ENDPOINT",
        "AUTHGEAR_PROJECT_ID",
        "AUTHGEAR_KEY_ID",
        "AUTHGEAR_PRIVATE_KEY_FILE",
        "AUTHGEAR_ADMIN_TOKEN",
    ] {
        import.env_remove(k);
    }
    let o = import.output().unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("3 inserted"));
}
