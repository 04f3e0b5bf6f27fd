//! The transcoder against the general path (`from_export_str` → `attach` →
//! `encode_import_record`), which is the oracle.

use std::path::{Path, PathBuf};

use authmigrate_auth0::format::{from_export_str, password_entry_from_str};
use authmigrate_authgear::format::encode_import_record;
use authmigrate_core::join::{EncodedBlock, HashEntry, IndexBuilder, JoinOptions};
use authmigrate_core::secret::Secret;

use super::*;

/// What one line gave: the record's bytes, its warnings, the join counts, the e-mail.
#[derive(Debug, PartialEq)]
struct Outcome {
    json: String,
    warnings: Vec<String>,
    stats: JoinStats,
    email: Option<String>,
}

fn oracle(line: &str, index: Option<&PasswordIndex>, opts: &AuthgearMapOptions) -> Option<Outcome> {
    let mut user = from_export_str(line)?;
    let mut stats = JoinStats::default();
    if let Some(ix) = index {
        ix.attach(&mut user, &mut stats).expect("index read");
    }
    let enc = encode_import_record(&user, opts).ok()?;
    Some(Outcome {
        json: String::from_utf8(enc.json).expect("utf-8"),
        warnings: enc.warnings,
        stats,
        email: user.email,
    })
}

const PREFIX: &[u8] = b"[previous],";

/// Runs the transcoder; on a decline, checks that nothing was touched.
fn fast(t: &Transcoder<'_>, line: &str, index: Option<&PasswordIndex>) -> Option<Outcome> {
    let mut stats = JoinStats::default();
    let mut out = PREFIX.to_vec();
    let mut warnings = Vec::new();
    let got = t
        .transcode(line, index, &mut stats, &mut out, &mut warnings)
        .expect("index read");
    let warnings: Vec<String> = warnings.iter().map(Warning::text).collect();
    match got {
        None => {
            assert_eq!(out, PREFIX, "declined but wrote: {line}");
            assert_eq!(stats, JoinStats::default(), "declined but counted: {line}");
            assert!(warnings.is_empty(), "declined but warned: {line}");
            None
        }
        Some(t) => {
            assert!(out.starts_with(PREFIX), "overwrote earlier output: {line}");
            Some(Outcome {
                json: String::from_utf8(out[PREFIX.len()..].to_vec()).expect("utf-8"),
                warnings,
                stats,
                email: t.email.map(Cow::into_owned),
            })
        }
    }
}

/// Compares both paths on one line; `(transcoder accepted, oracle accepted)`.
fn check(opts: &AuthgearMapOptions, line: &str, index: Option<&PasswordIndex>) -> (bool, bool) {
    let t = Transcoder::new(opts).expect("no custom attributes");
    let want = oracle(line, index, opts);
    let got = fast(&t, line, index);
    match (&got, &want) {
        (Some(g), Some(w)) => assert_eq!(g, w, "differs from the general path on {line}"),
        (Some(_), None) => panic!("accepted a line the general path refuses: {line}"),
        _ => {}
    }
    (got.is_some(), want.is_some())
}

fn opts(identifier: Identifier) -> AuthgearMapOptions {
    AuthgearMapOptions {
        identifier,
        ..Default::default()
    }
}

fn index_of(entries: Vec<HashEntry>) -> PasswordIndex {
    let mut builder = IndexBuilder::new(&JoinOptions::default(), entries.len()).expect("builder");
    let block = EncodedBlock::new(builder.hasher(), entries);
    assert!(builder.push(block).expect("push"));
    builder.finish().expect("finish")
}

/// A bcrypt-shaped hash Authgear accepts (`cost` 10) or refuses (cost 3).
fn hash(i: usize, cost: u32) -> Secret {
    let body = format!("{i:0>53}");
    Secret::new(format!("$2b${cost:02}${}", &body[body.len() - 53..]))
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn fixture_lines(prefix: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".ndjson"))
        })
        .collect();
    files.sort();
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
fn usernames_the_rules_refuse_take_the_general_path() {
    let o = opts(Identifier::Email);
    for (u, accepted) in [("ada", true), ("Admin", false), ("a b", false)] {
        let line = format!(r#"{{"user_id":"auth0|1","email":"a@example.com","username":"{u}"}}"#);
        assert_eq!(check(&o, &line, None), (accepted, accepted), "{u}");
    }
    let mut own = opts(Identifier::Email);
    own.reserved_usernames = authmigrate_authgear::username::ReservedUsernames::from_list("ada\n");
    let line = r#"{"user_id":"auth0|1","email":"a@example.com","username":"Admin"}"#;
    assert_eq!(check(&own, line, None), (true, true));
    let line = r#"{"user_id":"auth0|1","email":"a@example.com","username":"ADA"}"#;
    assert_eq!(check(&own, line, None), (false, false));
}

#[test]
fn new_declines_custom_attribute_mappings() {
    let mut o = opts(Identifier::Email);
    assert!(Transcoder::new(&o).is_some());
    o.custom_attributes
        .push(("user_metadata.plan".into(), "plan".into()));
    assert!(Transcoder::new(&o).is_none());
}

#[test]
fn known_line_gives_the_exact_record_and_warnings() {
    let line = r#"{"user_id":"auth0|u1","email":"Ada@Example.com","email_verified":true,"name":"Ada \"A\" L","nickname":"","created_at":"2021","last_ip":null,"identities":[{"provider":"auth0","isSocial":false}],"user_metadata":{"plan":"pro","plan":"x","theme":1},"app_metadata":{"tier":"gold"},"blocked":true}"#;
    let o = opts(Identifier::Email);
    let t = Transcoder::new(&o).expect("transcoder");
    let mut stats = JoinStats::default();
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let got = t
        .transcode(line, None, &mut stats, &mut out, &mut warnings)
        .expect("no index")
        .expect("accepted");
    let warnings: Vec<String> = warnings.iter().map(Warning::text).collect();
    assert_eq!(got.email.as_deref(), Some("Ada@Example.com"));
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        r#"{"email":"ada@example.com","email_verified":true,"name":"Ada \"A\" L","disabled":true}"#
    );
    assert_eq!(
        warnings,
        [
            "`email` lower-cased: Authgear login IDs are case-insensitive by default",
            "`nickname` is empty: left out (Authgear rejects empty strings)",
            "`user_metadata.plan` not imported: no declared custom attribute (use --custom-attribute user_metadata.plan=NAME)",
            "`user_metadata.theme` not imported: no declared custom attribute (use --custom-attribute user_metadata.theme=NAME)",
            "`app_metadata.tier` not imported: no declared custom attribute (use --custom-attribute app_metadata.tier=NAME)",
            "`source_id` is not sent: Authgear assigns new ids (--id-map records the mapping)",
            "`created_at` cannot be imported into Authgear: left out",
            NO_PASSWORD,
        ]
    );
    assert_eq!(stats, JoinStats::default());
    assert_eq!(check(&o, line, None), (true, true));
}

#[test]
fn fixtures_are_all_accepted_and_identical() {
    let lines = fixture_lines("auth0-export");
    assert!(!lines.is_empty(), "no auth0-export fixtures");
    let entries: Vec<HashEntry> = fixture_lines("auth0-password-hashes")
        .iter()
        .map(|l| {
            let e = password_entry_from_str(l).expect("hash fixture line");
            HashEntry {
                id: Some(e.user_id),
                email: e.email,
                hash: e.hash,
            }
        })
        .collect();
    let index = index_of(entries);
    let mut joined = 0;
    for identifier in Identifier::ALL {
        let o = opts(identifier);
        for line in &lines {
            for ix in [None, Some(&index)] {
                let (got, want) = check(&o, line, ix);
                assert_eq!(
                    got, want,
                    "must accept what the general path accepts: {line}"
                );
                if got && ix.is_some() {
                    let t = Transcoder::new(&o).expect("transcoder");
                    joined += fast(&t, line, ix).expect("accepted").stats.by_id;
                }
            }
        }
    }
    // Ada, Euclid and Alan carry hashes in the fixture; every identifier accepts some.
    assert!(joined >= 3, "only {joined} fixture users were joined by id");
}

/// A small deterministic generator (splitmix64): no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Users `0..USERS`; the index holds hashes for some by id, some by e-mail (in
/// another case), some with a hash Authgear refuses, none for the rest.
const USERS: usize = 300;

fn generated_index() -> PasswordIndex {
    let entries = (0..USERS)
        .filter_map(|i| {
            let cost = if i % 11 == 0 { 3 } else { 10 };
            match i % 4 {
                0 => Some(HashEntry {
                    id: Some(format!("auth0|u{i}")),
                    email: None,
                    hash: hash(i, cost),
                }),
                1 => Some(HashEntry {
                    id: Some(format!("auth0|other{i}")),
                    email: Some(format!("USER{i}@EXAMPLE.COM")),
                    hash: hash(i, cost),
                }),
                2 => Some(HashEntry {
                    id: None,
                    email: Some(format!("user{i}@example.com")),
                    hash: hash(i, cost),
                }),
                _ => None,
            }
        })
        .collect();
    index_of(entries)
}

/// One line shaped like the bench data (and most real exports).
fn bench_like(rng: &mut Rng, i: usize) -> String {
    let email = match rng.below(4) {
        0 => format!("User{i}@Example.com"),
        _ => format!("user{i}@example.com"),
    };
    let phone = if rng.chance(30) {
        format!(
            r#""phone_number":"+1212555{i:04}","phone_verified":{},"#,
            rng.chance(50)
        )
    } else {
        String::new()
    };
    let username = if rng.chance(30) {
        format!(r#""username":"User{i}","#)
    } else {
        String::new()
    };
    let identities = match rng.below(4) {
        0 => r#"{"connection":"google-oauth2","provider":"google-oauth2","user_id":"1","isSocial":true}"#.to_owned(),
        1 => format!(
            r#"{{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"u{i}","isSocial":false}},{{"connection":"github","provider":"github","user_id":"2","isSocial":true}}"#
        ),
        _ => format!(
            r#"{{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"u{i}","isSocial":false}}"#
        ),
    };
    format!(
        r#"{{"user_id":"auth0|u{i}","email":"{email}","email_verified":{},{phone}{username}"name":"Ken Allen","nickname":"ken","given_name":"Ken","family_name":"Allen","picture":"https://s.gravatar.com/avatar/6c0?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fke.png","created_at":"2019-07-18T17:24:32.455Z","updated_at":"2019-07-21T19:12:19.952Z","last_login":"2019-07-21T19:12:19.952Z","logins_count":{},"identities":[{identities}],"user_metadata":{{"plan":"free","newsletter":true,"locale":"fr"}},"app_metadata":{{"customer_id":"cus_9a1d815ef6d1","roles":["user","admin"]}}}}"#,
        rng.chance(50),
        rng.below(100),
    )
}

#[test]
fn bench_like_lines_are_all_accepted_and_identical() {
    let index = generated_index();
    let mut rng = Rng(7);
    let (mut by_id, mut by_email, mut refused) = (0, 0, 0);
    for i in 0..USERS {
        let line = bench_like(&mut rng, i);
        for identifier in Identifier::ALL {
            let o = opts(identifier);
            for ix in [None, Some(&index)] {
                let (got, want) = check(&o, &line, ix);
                assert_eq!(
                    got, want,
                    "must accept what the general path accepts: {line}"
                );
                if identifier == Identifier::Email && ix.is_some() {
                    match oracle(&line, ix, &o) {
                        Some(w) => {
                            by_id += w.stats.by_id;
                            by_email += w.stats.by_email;
                        }
                        None => refused += 1,
                    }
                }
            }
        }
        // Every identifier the line has is accepted with the e-mail identifier.
        assert!(check(&opts(Identifier::Email), &line, None).0);
    }
    assert!(
        by_id > 20 && by_email > 20,
        "by id {by_id}, by e-mail {by_email}"
    );
    // Users whose hash Authgear refuses (cost 3): declined, the general path fails them.
    assert!(refused > 5, "only {refused} refused hashes");
}

/// Pieces of a random line: values of each kind, valid or not.
const STRINGS: &[&str] = &[
    r#""plain""#,
    r#""""#,
    r#""Mixed@Example.COM""#,
    r#""user7@example.com""#,
    r#""USER5@EXAMPLE.COM""#,
    r#""with \"quote\" and \\ back""#,
    r#""\u00c9t\u00e9@example.com""#,
    r#""ÉMILE@exemple.fr""#,
    r#""tab\there\n""#,
    r#""\ud83d\ude00""#,
    r#""\ud800""#,
    r#""ctl\u0001""#,
    "null",
    r#""auth0|u4""#,
    r#""auth0|u8""#,
    r#""google-oauth2|123""#,
];
/// Values of the wrong type for a string or boolean field.
const WRONG: &[&str] = &["42", "true", "[]", "{}", r#""true""#, "1.5"];
const BOOLS: &[&str] = &["true", "false", "null"];
const ANY: &[&str] = &[
    "null",
    "0",
    "-1.5e3",
    "18446744073709551616",
    r#""x""#,
    r#"["a",{"b":null}]"#,
    r#"{"k":[1,2,{"z":false}]}"#,
    "[[[[[]]]]]",
];
/// Values `Value` refuses (or reads as a raw value), anywhere.
const BROKEN: &[&str] = &[
    "1e400",
    "tru",
    r#"{"$serde_json::private::RawValue":"1"}"#,
    r#""\ud800""#,
    r#"[1,]"#,
];
const METAS: &[&str] = &[
    r#"{"plan":"free","newsletter":true,"locale":"fr"}"#,
    "{}",
    "null",
    r#"{"a":1,"a":2,"b":null}"#,
    r#"{"n":{"deep":[1,{"x":"y"}]}}"#,
    r#"{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1}"#,
];
/// Metadata the general path takes and the transcoder declines (escaped or too many keys).
const RARE_METAS: &[&str] = &[
    r#"{"esc\u0061ped":1}"#,
    r#"{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1}"#,
];
const IDENTITIES: &[&str] = &[
    r#"[{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"u","isSocial":false}]"#,
    r#"[{"provider":"google-oauth2","isSocial":true}]"#,
    r#"[{"provider":"auth0","isSocial":true}]"#,
    r#"[{"provider":"auth0"},{"provider":"auth0"}]"#,
    "[]",
    "[1]",
    r#"["auth0"]"#,
    r#"[{"isSocial":true,"isSocial":"no","provider":"auth0"}]"#,
    r#"[{"provider":"github","provider":"auth0"}]"#,
    r#"[{"provid\u0065r":"github"}]"#,
    r#"[{"provider":"auth\u0030"}]"#,
    r#"[{"provider":{"x":1},"isSocial":[true]}]"#,
    "[1,2,3,4,5,6,7,8]",
];
const UNKNOWN: &[&str] = &[
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
    "last_ip",
    "multifactor",
    "address",
    "custom",
    "identities_extra",
];

/// One random line: a random subset of keys in random order, sometimes repeated,
/// escaped or broken.
fn random_line(rng: &mut Rng) -> String {
    let mut members: Vec<String> = Vec::new();
    let i = rng.below(USERS);
    if rng.chance(80) {
        members.push(format!(r#""user_id":"auth0|u{i}""#));
    }
    if rng.chance(85) {
        let email = match rng.below(3) {
            0 => format!(r#""user{i}@example.com""#),
            1 => format!(r#""User{i}@Example.COM""#),
            _ => rng.pick(STRINGS).to_owned(),
        };
        members.push(format!(r#""email":{email}"#));
    }
    for key in &STR_KEYS[1..] {
        if *key != "user_id" && rng.chance(25) {
            let v = if rng.chance(3) {
                rng.pick(WRONG)
            } else {
                rng.pick(STRINGS)
            };
            members.push(format!(r#""{key}":{}"#, v));
        }
    }
    for key in BOOL_KEYS {
        if rng.chance(40) {
            let v = if rng.chance(3) {
                rng.pick(WRONG)
            } else {
                rng.pick(BOOLS)
            };
            members.push(format!(r#""{key}":{}"#, v));
        }
    }
    for key in META_KEYS {
        if rng.chance(50) {
            let v = match rng.below(100) {
                0..3 => rng.pick(WRONG),
                3..6 => rng.pick(RARE_METAS),
                _ => rng.pick(METAS),
            };
            members.push(format!(r#""{key}":{}"#, v));
        }
    }
    if rng.chance(70) {
        let v = match rng.below(100) {
            0..3 => rng.pick(&["null", "{}", r#""auth0""#]),
            3..5 => "[1,2,3,4,5,6,7,8,9]",
            _ => rng.pick(IDENTITIES),
        };
        members.push(format!(r#""identities":{}"#, v));
    }
    for key in UNKNOWN {
        if rng.chance(25) {
            let v = if rng.chance(3) {
                rng.pick(BROKEN)
            } else {
                rng.pick(ANY)
            };
            members.push(format!(r#""{key}":{v}"#));
        }
    }
    // Shuffle, then maybe repeat or escape a key.
    for k in (1..members.len()).rev() {
        members.swap(k, rng.below(k + 1));
    }
    if !members.is_empty() && rng.chance(5) {
        let dup = members[rng.below(members.len())].clone();
        members.push(dup);
    }
    if !members.is_empty() && rng.chance(5) {
        let k = rng.below(members.len());
        members[k] = members[k].replacen("e", r"\u0065", 1);
    }
    let mut line = format!("{{{}}}", members.join(","));
    match rng.below(40) {
        0 => {
            let mut at = rng.below(line.len().max(1));
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            line.truncate(at);
        }
        1 => line.push_str(" x"),
        2 => line.push_str("  "),
        3 => line = format!("[{line}]"),
        _ => {}
    }
    line
}

#[test]
fn random_lines_match_the_general_path() {
    let index = generated_index();
    let mut rng = Rng(42);
    let mut accepted = 0u32;
    let mut declined = 0u32;
    let mut declined_valid = 0u32;
    let mut joined = 0u64;
    for _ in 0..3000 {
        let line = random_line(&mut rng);
        for identifier in Identifier::ALL {
            let o = opts(identifier);
            for ix in [None, Some(&index)] {
                let (got, want) = check(&o, &line, ix);
                if got {
                    accepted += 1;
                    if ix.is_some() {
                        joined +=
                            oracle(&line, ix, &o).map_or(0, |w| w.stats.by_id + w.stats.by_email);
                    }
                } else {
                    declined += 1;
                    if want {
                        declined_valid += 1;
                    }
                }
            }
        }
    }
    eprintln!("accepted {accepted}, declined {declined} ({declined_valid} the general path takes)");
    assert!(accepted > 2500, "only {accepted} accepted");
    assert!(declined > 2500, "only {declined} declined");
    assert!(
        declined_valid > 100,
        "only {declined_valid} valid lines declined"
    );
    assert!(joined > 100, "only {joined} accepted lines joined a hash");
}

#[test]
fn a_refused_hash_declines_without_counting() {
    let index = index_of(vec![HashEntry {
        id: Some("auth0|u1".into()),
        email: None,
        hash: hash(1, 3),
    }]);
    let line = r#"{"user_id":"auth0|u1","email":"a@example.com"}"#;
    let o = opts(Identifier::Email);
    let t = Transcoder::new(&o).expect("transcoder");
    assert!(fast(&t, line, Some(&index)).is_none());
    assert!(oracle(line, Some(&index), &o).is_none());
    // Without the index the same line goes through.
    assert_eq!(check(&o, line, None), (true, true));
}

/// Times the transcoder against the general path over the bench data, if present.
/// `cargo test -p authmigrate-cli --release -- --ignored --nocapture transcode_speed`
#[test]
#[ignore = "timing; needs target/bench-data"]
fn transcode_speed() {
    use std::io::BufRead;
    use std::time::Instant;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    let read = |name: &str| -> Option<Vec<String>> {
        let f = std::fs::File::open(dir.join(name)).ok()?;
        Some(
            std::io::BufReader::new(f)
                .lines()
                .take(100_000)
                .map(|l| l.expect("bench line"))
                .collect(),
        )
    };
    let Some(users) = read("users.ndjson") else {
        eprintln!("no bench data: skipped");
        return;
    };
    let index = read("hashes.ndjson").map(|lines| {
        index_of(
            lines
                .iter()
                .filter_map(|l| password_entry_from_str(l))
                .map(|e| HashEntry {
                    id: Some(e.user_id),
                    email: e.email,
                    hash: e.hash,
                })
                .collect(),
        )
    });
    let o = opts(Identifier::Email);
    let t = Transcoder::new(&o).expect("transcoder");
    // The floor: checking each line's JSON and dropping it.
    let start = Instant::now();
    for line in &users {
        serde_json::from_str::<Skip>(line).expect("bench line");
    }
    eprintln!(
        "parse only: {:.3} us/line",
        start.elapsed().as_secs_f64() * 1e6 / users.len() as f64
    );
    for ix in [None, index.as_ref()] {
        let mut out = Vec::with_capacity(1 << 20);
        let mut stats = JoinStats::default();
        let mut warnings = 0u64;
        let mut accepted = 0u64;
        let start = Instant::now();
        for line in &users {
            out.clear();
            let mut got = Vec::new();
            if t.transcode(line, ix, &mut stats, &mut out, &mut got)
                .expect("index read")
                .is_some()
            {
                accepted += 1;
            }
            warnings += got.len() as u64;
        }
        let fast_us = start.elapsed().as_secs_f64() * 1e6 / users.len() as f64;
        let start = Instant::now();
        let mut stats = JoinStats::default();
        for line in &users {
            if let Some(mut user) = from_export_str(line) {
                if let Some(ix) = ix {
                    ix.attach(&mut user, &mut stats).expect("index read");
                }
                let _ = encode_import_record(&user, &o);
            }
        }
        let slow_us = start.elapsed().as_secs_f64() * 1e6 / users.len() as f64;
        eprintln!(
            "index: {}, lines: {}, accepted: {accepted} ({:.3}%), warnings: {warnings}, transcoder: {fast_us:.3} us/line, general path: {slow_us:.3} us/line",
            ix.is_some(),
            users.len(),
            accepted as f64 * 100.0 / users.len() as f64,
        );
    }
}

#[test]
fn every_known_key_is_classified_as_itself() {
    for (i, key) in STR_KEYS.iter().enumerate() {
        assert!(matches!(classify(key), Field::Str(j) if j == i), "{key}");
    }
    for (i, key) in BOOL_KEYS.iter().enumerate() {
        assert!(matches!(classify(key), Field::Bool(j) if j == i), "{key}");
    }
    for (i, key) in META_KEYS.iter().enumerate() {
        assert!(matches!(classify(key), Field::Meta(j) if j == i), "{key}");
    }
    assert!(matches!(classify("identities"), Field::Identities));
    assert!(matches!(classify("created_at"), Field::Unknown));
    assert!(matches!(classify("Email"), Field::Unknown));
}

#[test]
fn strings_are_escaped_like_serde_json() {
    for s in [
        "plain",
        "",
        "q\"uote",
        "back\\slash",
        "tab\t",
        "nul\u{0}",
        "del\u{7f}",
        "é/<>&\u{2028}",
    ] {
        let mut out = Vec::new();
        write_json_str(&mut out, s).expect("write");
        assert_eq!(out, serde_json::to_vec(s).expect("serde_json"), "{s:?}");
    }
}
