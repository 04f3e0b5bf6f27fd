//! The fast readers (`from_export_str`, `password_entry_from_str`) against the
//! reference `Map` readers: they must agree on every line, and the fast path may only
//! decline lines the slow path refuses.

use std::path::{Path, PathBuf};

use authmigrate_auth0::format::{
    PasswordHashEntry, from_export_str, from_export_user, from_password_export,
    password_entry_from_str,
};
use authmigrate_core::UserRecord;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

// ---------------------------------------------------------------------------
// The two paths side by side
// ---------------------------------------------------------------------------

/// The reference: parse to `Value`, then the `Map` reader. `Err` holds a reason.
fn slow_export(line: &str) -> Result<UserRecord, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => from_export_user(map).map_err(|e| e.to_string()),
        Ok(_) => Err("not an object".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn slow_password(line: &str) -> Result<PasswordHashEntry, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => from_password_export(map).map_err(|e| e.to_string()),
        Ok(_) => Err("not an object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Asserts both paths agree on `line`; returns whether the line is valid.
fn check_export(line: &str) -> bool {
    let slow = slow_export(line);
    let fast = from_export_str(line);
    match (&slow, &fast) {
        (Ok(s), Some(f)) => {
            assert_eq!(f, s, "paths differ on {line:?}");
            // Equal maps may still differ in order: compare the key order too.
            assert_eq!(
                f.unmapped.keys().collect::<Vec<_>>(),
                s.unmapped.keys().collect::<Vec<_>>(),
                "unmapped order differs on {line:?}"
            );
            true
        }
        (Ok(_), None) => panic!("fast path declined a valid line: {line:?}"),
        (Err(e), Some(_)) => {
            panic!("fast path accepted a line the slow path refuses ({e}): {line:?}")
        }
        (Err(_), None) => false,
    }
}

fn check_password(line: &str) -> bool {
    let slow = slow_password(line);
    let fast = password_entry_from_str(line);
    match (&slow, &fast) {
        (Ok(s), Some(f)) => {
            assert_eq!(f, s, "paths differ on {line:?}");
            true
        }
        (Ok(_), None) => panic!("fast path declined a valid line: {line:?}"),
        (Err(e), Some(_)) => {
            panic!("fast path accepted a line the slow path refuses ({e}): {line:?}")
        }
        (Err(_), None) => false,
    }
}

// ---------------------------------------------------------------------------
// A seeded generator of nasty lines
// ---------------------------------------------------------------------------

struct Gen {
    rng: ChaCha8Rng,
    /// Whether values may be invalid JSON (lone surrogates, huge floats, deep nesting).
    messy: bool,
}

const STRINGS: [&str; 14] = [
    "plain",
    "",
    "caf\\u00e9",
    "quote \\\" inside",
    "line\\nbreak",
    "tab\\there",
    "\\u2603 snow",
    "slash \\/ and back \\\\",
    "emoji 😀 raw",
    "pair \\ud83d\\ude00",
    "auth0|5f7c8ec7c33c6c004bbafe82",
    "google-oauth2|1098765",
    "ada@example.com",
    "Ünïcødé",
];

/// Strings that are not valid JSON string contents (Value refuses them).
const BAD_STRINGS: [&str; 4] = [
    "lone \\ud800",
    "bad \\x escape",
    "ctrl \u{1} char",
    "lone \\udc00 low",
];

const UNKNOWN_KEYS: [&str; 12] = [
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
    "last_ip",
    "multifactor",
    "x\\\"y",
    "caf\\u00e9",
    "new\\nline",
    "custom",
    "",
    "zeta",
];

const STRING_FIELDS: [&str; 16] = [
    "email",
    "phone_number",
    "username",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "picture",
    "user_id",
    "middle_name",
    "locale",
    "zoneinfo",
    "birthdate",
    "gender",
    "website",
    "profile",
];

const BOOL_FIELDS: [&str; 3] = ["email_verified", "phone_verified", "blocked"];

impl Gen {
    fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            messy: false,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.gen_range(0..items.len())]
    }

    /// Whitespace, usually none.
    fn ws(&mut self) -> &'static str {
        if self.chance(0.85) {
            ""
        } else {
            self.pick(&[" ", "\n", "\t", "\r\n", "  "])
        }
    }

    fn string(&mut self) -> String {
        let body = if self.messy && self.chance(0.02) {
            self.pick(&BAD_STRINGS)
        } else {
            self.pick(&STRINGS)
        };
        format!("\"{body}\"")
    }

    /// A key as written: sometimes with a `\u` escape standing for a plain letter.
    fn key(&mut self, name: &str) -> String {
        if !name.is_empty() && !name.contains('\\') && self.chance(0.1) {
            let i = self.rng.gen_range(0..name.len());
            if name.is_char_boundary(i) && name.is_char_boundary(i + 1) {
                let c = name.as_bytes()[i];
                return format!("\"{}\\u{:04x}{}\"", &name[..i], c, &name[i + 1..]);
            }
        }
        format!("\"{name}\"")
    }

    fn number(&mut self) -> String {
        let n = if self.messy && self.chance(0.03) {
            self.pick(&["1e400", "-1e999"])
        } else {
            self.pick(&[
                "0",
                "-5",
                "42",
                "18446744073709551615",
                "-9223372036854775808",
                "1.5",
                "-0.0",
                "1e10",
                "2.5E-3",
                "123456789012345678901234567890",
            ])
        };
        n.to_owned()
    }

    fn any_value(&mut self, depth: u32) -> String {
        if self.messy && depth == 0 && self.chance(0.01) {
            // Deeper than serde_json's recursion limit (128).
            return format!("{}{}", "[".repeat(130), "]".repeat(130));
        }
        let top = if depth >= 3 { 5 } else { 7 };
        match self.rng.gen_range(0..top) {
            0 => "null".into(),
            1 => self.pick(&["true", "false"]).into(),
            2 => self.number(),
            3 | 4 => self.string(),
            5 => {
                let n = self.rng.gen_range(0..4);
                let items: Vec<String> = (0..n).map(|_| self.any_value(depth + 1)).collect();
                let sep = format!("{},{}", self.ws(), self.ws());
                format!("[{}{}{}]", self.ws(), items.join(&sep), self.ws())
            }
            _ => {
                let n = self.rng.gen_range(0..4);
                let mut entries = Vec::new();
                for _ in 0..n {
                    let k = self.pick(&["a", "b", "plan", "roles", "x\\\"y", "caf\\u00e9", "a"]);
                    let k = self.key(k);
                    entries.push((k, self.any_value(depth + 1)));
                }
                self.render(&entries)
            }
        }
    }

    fn bool_value(&mut self) -> String {
        self.pick(&["true", "false", "null"]).into()
    }

    fn object_value(&mut self) -> String {
        if self.chance(0.1) {
            return "null".into();
        }
        let n = self.rng.gen_range(0..4);
        let mut entries = Vec::new();
        for _ in 0..n {
            let k = self.pick(&["plan", "theme", "newsletter", "roles", "nested", "plan"]);
            let k = self.key(k);
            entries.push((k, self.any_value(1)));
        }
        self.render(&entries)
    }

    fn identity(&mut self) -> String {
        if self.chance(0.05) {
            return self.any_value(2);
        }
        let mut entries = vec![
            (
                "\"connection\"".to_owned(),
                "\"Username-Password-Authentication\"".to_owned(),
            ),
            ("\"user_id\"".to_owned(), self.string()),
        ];
        if self.chance(0.9) {
            let p = self.pick(&[
                "\"auth0\"",
                "\"auth0\"",
                "\"google-oauth2\"",
                "\"github\"",
                "5",
                "null",
            ]);
            entries.push((self.key("provider"), p.into()));
        }
        if self.chance(0.8) {
            let s = self.pick(&["false", "false", "true", "\"yes\"", "null"]);
            entries.push((self.key("isSocial"), s.into()));
        }
        if self.chance(0.2) {
            entries.push(("\"profileData\"".into(), self.any_value(2)));
        }
        entries.shuffle(&mut self.rng);
        self.duplicate(&mut entries);
        self.render(&entries)
    }

    fn identities(&mut self) -> String {
        if self.messy && self.chance(0.15) {
            return self.any_value(1);
        }
        let n = *[0, 1, 1, 1, 1, 2, 3].choose(&mut self.rng).unwrap_or(&1);
        let items: Vec<String> = (0..n).map(|_| self.identity()).collect();
        format!("[{}]", items.join(","))
    }

    /// `{ "k": v, ... }` with random whitespace.
    fn render(&mut self, entries: &[(String, String)]) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(self.ws());
            out.push_str(k);
            out.push_str(self.ws());
            out.push(':');
            out.push_str(self.ws());
            out.push_str(v);
            out.push_str(self.ws());
        }
        out.push('}');
        out
    }

    /// Duplicates a few keys: an extra occurrence (any value) goes BEFORE the last one,
    /// so in clean lines the last value keeps its valid type.
    fn duplicate(&mut self, entries: &mut Vec<(String, String)>) {
        if entries.is_empty() || !self.chance(0.25) {
            return;
        }
        for _ in 0..self.rng.gen_range(1..=2) {
            let i = self.rng.gen_range(0..entries.len());
            let key = entries[i].0.clone();
            let value = self.any_value(1);
            let at = self.rng.gen_range(0..=i);
            entries.insert(at, (key, value));
        }
    }

    /// Wraps the object: whitespace around it, and in messy lines trailing garbage,
    /// truncation or no object at all.
    fn frame(&mut self, object: String) -> String {
        let mut line = format!("{}{object}{}", self.ws(), self.ws());
        if self.messy {
            match self.rng.gen_range(0..100) {
                0..=2 => line.push_str(self.pick(&["x", "}", "{}", ",", "\"a\""])),
                3..=5 => {
                    line = self
                        .pick(&["[]", "5", "\"s\"", "null", "true", "[{}]", ""])
                        .to_owned();
                }
                6..=8 => {
                    let mut cut = self.rng.gen_range(0..line.len().max(1));
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                _ => {}
            }
        }
        line
    }

    fn export_line(&mut self) -> String {
        self.messy = self.chance(0.4);
        let wrong = if self.messy { 0.08 } else { 0.0 };
        let mut entries: Vec<(String, String)> = Vec::new();
        for name in STRING_FIELDS {
            if self.chance(0.55) {
                let v = if self.chance(wrong) {
                    self.any_value(0)
                } else if self.chance(0.1) {
                    "null".into()
                } else {
                    self.string()
                };
                entries.push((self.key(name), v));
            }
        }
        for name in BOOL_FIELDS {
            if self.chance(0.6) {
                let v = if self.chance(wrong) {
                    self.any_value(0)
                } else {
                    self.bool_value()
                };
                entries.push((self.key(name), v));
            }
        }
        for name in ["app_metadata", "user_metadata"] {
            if self.chance(0.5) {
                let v = if self.chance(wrong) {
                    self.any_value(0)
                } else {
                    self.object_value()
                };
                entries.push((self.key(name), v));
            }
        }
        if self.chance(0.7) {
            let v = self.identities();
            entries.push((self.key("identities"), v));
        }
        for _ in 0..self.rng.gen_range(0..5) {
            let k = self.pick(&UNKNOWN_KEYS);
            let k = self.key(k);
            let v = self.any_value(0);
            entries.push((k, v));
        }
        entries.shuffle(&mut self.rng);
        self.duplicate(&mut entries);
        let object = self.render(&entries);
        self.frame(object)
    }

    fn oid(&mut self) -> String {
        let mut entries = Vec::new();
        let hex = "\"5f7c8ec7c33c6c004bbafe82\"".to_owned();
        let v = if self.messy && self.chance(0.2) {
            self.any_value(2)
        } else {
            hex
        };
        entries.push((self.key("$oid"), v));
        if self.chance(0.1) {
            entries.push(("\"extra\"".into(), self.any_value(2)));
        }
        if self.chance(0.1) {
            entries.push(("\"$oid\"".into(), self.string()));
        }
        entries.shuffle(&mut self.rng);
        self.render(&entries)
    }

    fn identifier(&mut self) -> String {
        if self.chance(0.05) {
            return self.any_value(2);
        }
        let mut entries = Vec::new();
        if self.chance(0.9) {
            let t = self.pick(&[
                "\"email\"",
                "\"email\"",
                "\"phone_number\"",
                "\"username\"",
                "5",
                "null",
            ]);
            entries.push((self.key("type"), t.to_owned()));
        }
        if self.chance(0.9) {
            let v = match self.rng.gen_range(0..10) {
                0 => "\"\"".to_owned(),
                1 => self.any_value(2),
                _ => "\"euclid@example.com\"".to_owned(),
            };
            entries.push((self.key("value"), v));
        }
        if self.chance(0.5) {
            entries.push(("\"verified\"".into(), self.bool_value()));
        }
        entries.shuffle(&mut self.rng);
        self.duplicate(&mut entries);
        self.render(&entries)
    }

    fn password_line(&mut self) -> String {
        self.messy = self.chance(0.4);
        let mut entries: Vec<(String, String)> = Vec::new();
        if self.chance(0.9) {
            let v = match self.rng.gen_range(0..10) {
                0 if self.messy => self.any_value(1),
                1 => "\"5dea9f9c82dd7c0e76e4ec93\"".to_owned(),
                _ => self.oid(),
            };
            entries.push((self.key("_id"), v));
        }
        if self.chance(0.4) {
            let v = match self.rng.gen_range(0..10) {
                0 if self.messy => self.any_value(1),
                1 => "\"\"".to_owned(),
                2 => "null".to_owned(),
                _ => "\"euclid\"".to_owned(),
            };
            entries.push((self.key("alt_id"), v));
        }
        if self.chance(0.95) {
            let v = match self.rng.gen_range(0..20) {
                0 if self.messy => self.any_value(1),
                1 if self.messy => "\"\"".to_owned(),
                2 if self.messy => "null".to_owned(),
                _ => "\"$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K\"".to_owned(),
            };
            entries.push((self.key("passwordHash"), v));
        }
        if self.chance(0.7) {
            let v = match self.rng.gen_range(0..10) {
                0 => self.any_value(1),
                1 => "\"\"".to_owned(),
                _ => "\"ada@example.com\"".to_owned(),
            };
            entries.push((self.key("email"), v));
        }
        if self.chance(0.6) {
            let v = if self.chance(0.1) {
                self.any_value(1)
            } else {
                let n = self.rng.gen_range(0..4);
                let items: Vec<String> = (0..n).map(|_| self.identifier()).collect();
                format!("[{}]", items.join(","))
            };
            entries.push((self.key("identifiers"), v));
        }
        entries.push((
            "\"password_set_date\"".into(),
            "{\"$date\":\"2021-03-04T10:11:12.412Z\"}".into(),
        ));
        for _ in 0..self.rng.gen_range(0..4) {
            let k = self.pick(&[
                "tenant",
                "connection",
                "_tmp_is_unique",
                "email_verified",
                "x\\\"y",
            ]);
            let k = self.key(k);
            let v = self.any_value(0);
            entries.push((k, v));
        }
        entries.shuffle(&mut self.rng);
        self.duplicate(&mut entries);
        let object = self.render(&entries);
        self.frame(object)
    }
}

// ---------------------------------------------------------------------------
// Equivalence
// ---------------------------------------------------------------------------

#[test]
fn export_paths_agree_on_generated_lines() {
    let mut g = Gen::new(0x00a7_0001);
    let (mut ok, mut err, mut with_unmapped) = (0, 0, 0);
    for _ in 0..4000 {
        let line = g.export_line();
        if check_export(&line) {
            ok += 1;
            with_unmapped +=
                usize::from(from_export_str(&line).is_some_and(|r| r.unmapped.len() > 1));
        } else {
            err += 1;
        }
    }
    // The generator must exercise both outcomes, and ordering of several leftovers.
    assert!(ok >= 1500, "only {ok} valid lines");
    assert!(err >= 400, "only {err} invalid lines");
    assert!(
        with_unmapped >= 500,
        "only {with_unmapped} lines with several unmapped keys"
    );
}

#[test]
fn password_paths_agree_on_generated_lines() {
    let mut g = Gen::new(0x00a7_0002);
    let (mut ok, mut err, mut by_identifiers) = (0, 0, 0);
    for _ in 0..4000 {
        let line = g.password_line();
        if check_password(&line) {
            ok += 1;
            let e = password_entry_from_str(&line).expect("checked");
            if e.email.as_deref() == Some("euclid@example.com") {
                by_identifiers += 1;
            }
        } else {
            err += 1;
        }
    }
    assert!(ok >= 1500, "only {ok} valid lines");
    assert!(err >= 400, "only {err} invalid lines");
    assert!(
        by_identifiers >= 100,
        "only {by_identifiers} e-mails from identifiers"
    );
}

fn fixture_lines(prefix: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".ndjson"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures/{prefix}*.ndjson");
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .expect("fixture")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn fixtures_agree() {
    let users = fixture_lines("auth0-export");
    assert!(users.len() >= 3);
    for line in &users {
        assert!(check_export(line), "fixture line refused: {line}");
    }
    let hashes = fixture_lines("auth0-password-hashes");
    assert!(hashes.len() >= 3);
    for line in &hashes {
        assert!(check_password(line), "fixture line refused: {line}");
    }
    // A fixture with a social identity keeps it; one with a single auth0 identity does not.
    let social = users
        .iter()
        .filter_map(|l| from_export_str(l))
        .find(|r| {
            r.source_id
                .as_deref()
                .is_some_and(|s| s.starts_with("google-oauth2|"))
        })
        .expect("social fixture");
    assert!(social.unmapped.contains_key("identities"));
}

// ---------------------------------------------------------------------------
// Targeted cases
// ---------------------------------------------------------------------------

fn keys(r: &UserRecord) -> Vec<&str> {
    r.unmapped.keys().map(String::as_str).collect()
}

#[test]
fn unmapped_keys_come_out_in_file_order() {
    let line = r#"{"zeta":1,"user_id":"auth0|x","alpha":2,"identities":[{"provider":"github","isSocial":true}],"mid":3,"email":"a@b.co","created_at":"2021-01-01"}"#;
    let slow = slow_export(line).expect("valid");
    let fast = from_export_str(line).expect("valid");
    let want = ["zeta", "alpha", "identities", "mid", "created_at"];
    assert_eq!(keys(&slow), want);
    assert_eq!(keys(&fast), want);
    assert_eq!(fast, slow);

    // Duplicates: the last value at the first position, in both paths.
    let line = r#"{"b":1,"a":2,"b":3,"c":null,"d":4}"#;
    for r in [
        slow_export(line).expect("valid"),
        from_export_str(line).expect("valid"),
    ] {
        assert_eq!(keys(&r), ["b", "a", "d"]);
        assert_eq!(r.unmapped["b"], 3);
    }
    // A null that is replaced later keeps its place; a value nulled later goes.
    let line = r#"{"x":null,"y":1,"x":2,"z":5,"z":null}"#;
    for r in [
        slow_export(line).expect("valid"),
        from_export_str(line).expect("valid"),
    ] {
        assert_eq!(keys(&r), ["x", "y"]);
    }
    // A single auth0 identity is dropped without disturbing the rest.
    let line = r#"{"c":1,"identities":[{"provider":"auth0","isSocial":false}],"a":2}"#;
    for r in [
        slow_export(line).expect("valid"),
        from_export_str(line).expect("valid"),
    ] {
        assert_eq!(keys(&r), ["c", "a"]);
    }
}

#[test]
fn known_fields_take_the_last_duplicate() {
    let line = r#"{"email":5,"name":"A","email":"a@b.co","blocked":"yes","blocked":true,"user_metadata":[],"user_metadata":{"p":1},"name":null}"#;
    assert!(check_export(line));
    let r = from_export_str(line).expect("valid");
    assert_eq!(r.email.as_deref(), Some("a@b.co"));
    assert_eq!(r.name, None);
    assert_eq!(r.blocked, Some(true));
    assert_eq!(r.user_metadata.expect("metadata")["p"], 1);
    // The wrong type last: both refuse.
    assert!(!check_export(r#"{"email":"a@b.co","email":5}"#));
    assert!(!check_export(r#"{"identities":[],"identities":null}"#));
    // Social identities in the first occurrence, a plain one last: not carried.
    let r = from_export_str(
        r#"{"identities":[{"provider":"github"}],"a":1,"identities":[{"provider":"auth0"}]}"#,
    )
    .expect("valid");
    assert_eq!(keys(&r), ["a"]);
}

#[test]
fn identities_are_read_like_values() {
    // Duplicate keys inside an identity: the last value decides, and a carried list
    // comes out as `Value` builds it (last value at the first position).
    let line = r#"{"identities":[{"provider":"auth0","n":-1.5,"provider":"github","p":{"a":[1,null]}}],"z":0}"#;
    assert!(check_export(line));
    let r = from_export_str(line).expect("valid");
    assert_eq!(
        serde_json::to_string(&r.unmapped).expect("json"),
        r#"{"identities":[{"provider":"github","n":-1.5,"p":{"a":[1,null]}}],"z":0}"#
    );
    let line = r#"{"identities":[{"provider":"github","isSocial":true,"provider":"auth0","isSocial":false}]}"#;
    assert!(check_export(line));
    assert!(from_export_str(line).expect("valid").unmapped.is_empty());
    // Not a list: refused by both.
    for ids in ["{}", "\"x\"", "null", "1"] {
        assert!(
            !check_export(&format!(r#"{{"identities":{ids}}}"#)),
            "{ids}"
        );
    }
}

#[test]
fn escaped_keys_and_values_are_read() {
    let line = "{\"em\\u0061il\":\"caf\\u00e9 \\\"q\\\"\\n\",\"x\\\"y\":\"\\ud83d\\ude00\"}";
    assert!(check_export(line));
    let r = from_export_str(line).expect("valid");
    assert_eq!(r.email.as_deref(), Some("café \"q\"\n"));
    assert_eq!(r.unmapped["x\"y"], "😀");
}

#[test]
fn what_value_refuses_the_fast_path_refuses() {
    for line in [
        r#"{"a":"\ud800"}"#,
        r#"{"a":1e400}"#,
        &format!(r#"{{"a":{}{}}}"#, "[".repeat(130), "]".repeat(130)),
        r#"{"email":"a@b.co"} x"#,
        r#"{"email":"a@b.co",}"#,
        r#"[{"email":"a@b.co"}]"#,
        "",
        "  ",
        r#"{"identities":{}}"#,
        r#"{"user_id":["auth0|x"]}"#,
    ] {
        assert!(!check_export(line), "{line}");
        assert!(from_export_str(line).is_none(), "{line}");
    }
    // Whitespace around the object is fine.
    assert!(check_export(" \t{\"email\" : \"a@b.co\"}\r\n"));
    // Serde_json's raw-value token as first key: declined (the slow path decides).
    assert!(from_export_str(r#"{"$serde_json::private::RawValue":"{}"}"#).is_none());
}

#[test]
fn password_rules() {
    let hash = "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K";
    // Empty alt_id is ignored; empty email falls back to identifiers; empty
    // identifier values are skipped.
    let line = format!(
        r#"{{"_id":{{"$oid":"abc"}},"alt_id":"","email":"","passwordHash":"{hash}","identifiers":[{{"type":"email","value":""}},{{"type":"phone_number","value":"+1"}},{{"value":"e@x.io","type":"email"}}]}}"#
    );
    assert!(check_password(&line));
    let e = password_entry_from_str(&line).expect("valid");
    assert_eq!(e.user_id, "auth0|abc");
    assert_eq!(e.email.as_deref(), Some("e@x.io"));
    assert_eq!(e.hash.expose(), hash);
    // alt_id wins, and then `_id` does not matter at all.
    let line = format!(r#"{{"_id":17,"alt_id":"euclid","passwordHash":"{hash}"}}"#);
    assert!(check_password(&line));
    assert_eq!(
        password_entry_from_str(&line).expect("valid").user_id,
        "auth0|euclid"
    );
    // `_id` as a plain string.
    let line = format!(r#"{{"_id":"s1","passwordHash":"{hash}","email":5}}"#);
    assert!(check_password(&line));
    let e = password_entry_from_str(&line).expect("valid");
    assert_eq!((e.user_id.as_str(), e.email), ("auth0|s1", None));
    // Refused by both.
    for line in [
        format!(r#"{{"_id":{{"$oid":""}},"passwordHash":"{hash}"}}"#),
        format!(r#"{{"_id":{{"$oid":"a"}},"alt_id":5,"passwordHash":"{hash}"}}"#),
        format!(r#"{{"passwordHash":"{hash}"}}"#),
        r#"{"_id":{"$oid":"a"},"passwordHash":""}"#.to_owned(),
        r#"{"_id":{"$oid":"a"}}"#.to_owned(),
        format!(r#"{{"_id":{{"$oid":"a"}},"passwordHash":"{hash}","x":"\udc00"}}"#),
        format!(r#"{{"_id":{{"$oid":"a"}},"passwordHash":"{hash}","x":-1e999}}"#),
    ] {
        assert!(!check_password(&line), "{line}");
    }
}

// ---------------------------------------------------------------------------
// Measure (ignored): cargo test --release -p authmigrate-auth0 --test fast_readers -- --ignored --nocapture
// ---------------------------------------------------------------------------

/// The first `n` lines of `target/bench-data/<name>`, else `None`.
fn bench_lines(name: &str, n: usize) -> Option<Vec<String>> {
    use std::io::BufRead;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let file = std::fs::File::open(target.join("bench-data").join(name)).ok()?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .take(n)
        .collect::<Result<_, _>>()
        .ok()?;
    Some(lines)
}

fn per_line_us<T>(lines: &[String], f: impl Fn(&str) -> Option<T>) -> f64 {
    // Best of three runs, to damp noise from other jobs on the machine.
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let mut n = 0usize;
        for l in lines {
            n += usize::from(std::hint::black_box(f(l)).is_some());
        }
        assert_eq!(n, lines.len(), "every bench line must be valid");
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / lines.len() as f64);
    }
    best
}

#[test]
#[ignore = "timing, run by hand in release"]
fn measure_paths() {
    const N: usize = 100_000;
    let users = bench_lines("users.ndjson", N).unwrap_or_else(|| {
        // Lines shaped like the bench data when it is absent.
        (0..N)
            .map(|i| {
                format!(
                    r#"{{"user_id":"auth0|{i:024x}","email":"ken.allen.{i}@example.org","email_verified":true,"name":"Ken Allen","nickname":"ken","given_name":"Ken","family_name":"Allen","picture":"https://s.gravatar.com/avatar/6c031199972a846916419f828b9d2434?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fke.png","created_at":"2019-07-18T17:24:32.455Z","updated_at":"2019-07-21T19:12:19.952Z","last_login":"2019-07-21T19:12:19.952Z","logins_count":16,"identities":[{{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"{i:024x}","isSocial":false}}],"user_metadata":{{"plan":"free","newsletter":true,"locale":"fr"}},"app_metadata":{{"customer_id":"cus_9a1d815ef6d1","roles":["user","admin"]}}}}"#
                )
            })
            .collect()
    });
    let bytes = users.iter().map(String::len).sum::<usize>() / users.len();
    // The floor: serde_json checking the syntax and building nothing.
    let scan = per_line_us(&users, |l| {
        serde_json::from_str::<serde::de::IgnoredAny>(l).ok()
    });
    let slow = per_line_us(&users, |l| slow_export(l).ok());
    let fast = per_line_us(&users, from_export_str);
    println!(
        "export: {} lines of ~{bytes} bytes: slow {slow:.2} us/line, fast {fast:.2} us/line ({:.1}x), bare scan {scan:.2} us/line",
        users.len(),
        slow / fast
    );
    if let Some(hashes) = bench_lines("hashes.ndjson", N) {
        let bytes = hashes.iter().map(String::len).sum::<usize>() / hashes.len();
        let slow = per_line_us(&hashes, |l| slow_password(l).ok());
        let fast = per_line_us(&hashes, password_entry_from_str);
        println!(
            "password: {} lines of ~{bytes} bytes: slow {slow:.2} us/line, fast {fast:.2} us/line ({:.1}x)",
            hashes.len(),
            slow / fast
        );
    }
}
