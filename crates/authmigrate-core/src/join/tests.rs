use super::*;

const SPILL_ALWAYS: usize = 1;

fn hash_of(n: u64) -> Secret {
    let tail: String = format!("{n:053}").chars().rev().collect();
    Secret::new(format!("$2b$10${tail}"))
}

fn user(id: &str, email: &str) -> UserRecord {
    UserRecord {
        source_id: (!id.is_empty()).then(|| id.to_owned()),
        email: (!email.is_empty()).then(|| email.to_owned()),
        name: Some(format!("name of {id}")),
        ..UserRecord::default()
    }
}

fn entry(id: Option<&str>, email: Option<&str>, n: u64) -> HashEntry {
    HashEntry {
        id: id.map(str::to_owned),
        email: email.map(str::to_owned),
        hash: hash_of(n),
    }
}

fn inputs(users: Vec<std::result::Result<UserRecord, RecordFailure>>) -> Vec<InputRecord> {
    users
        .into_iter()
        .enumerate()
        .map(|(i, record)| InputRecord {
            index: i as u64 + 100,
            record,
        })
        .collect()
}

type Out = Vec<(u64, std::result::Result<UserRecord, RecordFailure>)>;

fn run_join(users: Vec<InputRecord>, hashes: Vec<HashEntry>, budget: usize) -> (Out, JoinStats) {
    let options = JoinOptions {
        temp_dir: None,
        memory_budget: budget,
    };
    let mut join = join_passwords(
        users.into_iter(),
        hashes.into_iter().map(Ok::<_, Error>),
        options,
    )
    .unwrap();
    let out: Out = join.by_ref().map(|r| (r.index, r.record)).collect();
    let stats = join.finish().unwrap();
    (out, stats)
}

fn password(out: &Out, i: usize) -> Option<&str> {
    let user = out[i].1.as_ref().unwrap();
    user.password
        .as_ref()
        .and_then(|p| p.as_plain_bcrypt())
        .map(Secret::expose)
}

#[test]
fn joins_by_id_then_email_in_order_in_memory_and_spilled() {
    for budget in [DEFAULT_MEMORY_BUDGET, SPILL_ALWAYS] {
        let mut kept = user("auth0|kept", "kept@x.io");
        kept.password = Some(PasswordHash::bcrypt(hash_of(99)));
        let users = inputs(vec![
            Ok(user("auth0|a", "a@x.io")),          // id beats e-mail
            Ok(user("auth0|b", "Bob@Example.COM")), // e-mail, case-insensitive
            Err(RecordFailure::new("INVALID_RECORD", "line 3: bad json")),
            Ok(user("auth0|nohash", "nohash@x.io")), // unmatched
            Ok(kept),                                // keeps its own password
            Ok(user("", "NOID@x.io")),               // no id: e-mail only
            Ok(user("", "")),                        // no keys at all
        ]);
        let hashes = vec![
            entry(None, Some("A@X.IO"), 1),
            entry(Some("auth0|a"), Some("other@x.io"), 2),
            entry(Some("auth0|zzz"), Some("bob@example.com"), 3),
            entry(Some("auth0|kept"), None, 4),
            entry(None, Some("noid@x.io"), 5),
        ];
        let (out, stats) = run_join(users, hashes, budget);
        let indexes: Vec<u64> = out.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, (100..107).collect::<Vec<_>>(), "budget {budget}");
        assert_eq!(password(&out, 0), Some(hash_of(2).expose()));
        assert_eq!(password(&out, 1), Some(hash_of(3).expose()));
        assert_eq!(
            out[2].1,
            Err(RecordFailure::new("INVALID_RECORD", "line 3: bad json"))
        );
        assert_eq!(password(&out, 3), None);
        assert_eq!(password(&out, 4), Some(hash_of(99).expose()));
        assert_eq!(password(&out, 5), Some(hash_of(5).expose()));
        assert_eq!(password(&out, 6), None);
        // Everything but the password is untouched.
        let u1 = out[1].1.as_ref().unwrap();
        assert_eq!(u1.email.as_deref(), Some("Bob@Example.COM"));
        assert_eq!(u1.name.as_deref(), Some("name of auth0|b"));
        assert_eq!(
            stats,
            JoinStats {
                users: 6,
                by_id: 1,
                by_email: 2,
                kept_password: 1,
                unmatched_users: 2,
                hashes: 5,
                unused_hashes: 2, // entry 1 (a@x.io lost to the id match) and entry 4
                duplicate_keys: 0,
                partitions: if budget == SPILL_ALWAYS {
                    stats.partitions
                } else {
                    0
                },
            },
            "budget {budget}"
        );
        assert_eq!(stats.partitions > 0, budget == SPILL_ALWAYS);
    }
}

#[test]
fn duplicate_keys_first_entry_wins() {
    for budget in [DEFAULT_MEMORY_BUDGET, SPILL_ALWAYS] {
        let users = inputs(vec![Ok(user("auth0|a", "")), Ok(user("auth0|b", "b@x.io"))]);
        let hashes = vec![
            entry(Some("auth0|a"), None, 1),
            entry(Some("auth0|a"), None, 2),
            entry(None, Some("B@x.io"), 3),
            entry(Some("auth0|c"), Some("b@X.io"), 4),
        ];
        let (out, stats) = run_join(users, hashes, budget);
        assert_eq!(password(&out, 0), Some(hash_of(1).expose()));
        assert_eq!(password(&out, 1), Some(hash_of(3).expose()));
        assert_eq!(stats.duplicate_keys, 2, "budget {budget}");
        assert_eq!(stats.unused_hashes, 2, "budget {budget}");
        assert_eq!(
            (stats.by_id, stats.by_email, stats.unmatched_users),
            (1, 1, 0)
        );
    }
}

#[test]
fn empty_hashes_pass_users_through_unchanged() {
    for budget in [DEFAULT_MEMORY_BUDGET, SPILL_ALWAYS] {
        let users = vec![
            Ok(user("auth0|a", "a@x.io")),
            Err(RecordFailure::new("X", "y")),
            Ok(user("auth0|b", "")),
        ];
        let (out, stats) = run_join(inputs(users.clone()), vec![], budget);
        let got: Vec<_> = out.into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, users);
        assert_eq!(stats.users, 2);
        assert_eq!(stats.unmatched_users, 2);
        assert_eq!(stats.hashes, 0);
        assert_eq!(stats.partitions, 0, "nothing to spill with no hashes");
    }
}

#[test]
fn no_users() {
    for budget in [DEFAULT_MEMORY_BUDGET, SPILL_ALWAYS] {
        let (out, stats) = run_join(vec![], vec![entry(Some("auth0|a"), None, 1)], budget);
        assert!(out.is_empty());
        assert_eq!((stats.users, stats.hashes, stats.unused_hashes), (0, 1, 1));
    }
}

fn many_users(n: u64) -> Vec<InputRecord> {
    (0..n)
        .map(|i| InputRecord {
            index: i,
            record: if i % 997 == 5 {
                Err(RecordFailure::new("INVALID_RECORD", format!("record {i}")))
            } else {
                let mut u = user(&format!("auth0|{i:024x}"), &format!("User{i}@Example.com"));
                let mut meta = crate::record::JsonObject::new();
                meta.insert(
                    "plan".into(),
                    serde_json::json!(["free", "pro"][(i % 2) as usize]),
                );
                u.user_metadata = Some(meta);
                if i % 501 == 7 {
                    u.password = Some(PasswordHash::bcrypt(hash_of(0)));
                }
                Ok(u)
            },
        })
        .collect()
}

/// Hashes for `n` users, shuffled: 10% only by e-mail (different id), 2% missing,
/// plus a few duplicates and strays.
fn many_hashes(n: u64) -> Vec<HashEntry> {
    let mut v: Vec<HashEntry> = (0..n)
        .filter(|i| i % 50 != 3)
        .map(|i| {
            let id = if i % 10 == 1 {
                format!("auth0|alt{i}")
            } else {
                format!("auth0|{i:024x}")
            };
            entry(Some(&id), Some(&format!("user{i}@example.COM")), i + 1)
        })
        .collect();
    v.push(entry(Some("auth0|stray"), Some("stray@x.io"), 7));
    v.push(entry(Some(&format!("auth0|{:024x}", 2)), None, 8));
    // Deterministic shuffle (LCG Fisher-Yates).
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (s >> 33) as usize % (i + 1));
    }
    v
}

#[test]
fn tiny_budget_gives_the_same_output_as_in_memory_on_20000_users() {
    let n = 20_000;
    let (big, big_stats) = run_join(many_users(n), many_hashes(n), DEFAULT_MEMORY_BUDGET);
    let (small, small_stats) = run_join(many_users(n), many_hashes(n), 64 << 10);
    assert_eq!(big_stats.partitions, 0);
    assert!(small_stats.partitions >= 16, "{small_stats:?}");
    assert_eq!(big.len(), n as usize);
    assert!(big == small, "outputs differ");
    assert_eq!(
        JoinStats {
            partitions: 0,
            ..small_stats
        },
        big_stats
    );
    // Spot checks against the generator's rules.
    assert!(big.iter().enumerate().all(|(i, (idx, _))| *idx == i as u64));
    assert_eq!(password(&big, 0), Some(hash_of(1).expose())); // by id
    assert_eq!(password(&big, 11), Some(hash_of(12).expose())); // by e-mail
    assert_eq!(password(&big, 53), None); // no hash
    assert_eq!(password(&big, 7), Some(hash_of(0).expose())); // kept
    let errs = big.iter().filter(|(_, r)| r.is_err()).count() as u64;
    let s = big_stats;
    assert_eq!(s.users, n - errs);
    assert_eq!(
        s.users,
        s.by_id + s.by_email + s.kept_password + s.unmatched_users
    );
    assert_eq!(s.duplicate_keys, 1);
    assert!(s.by_email > 1_500 && s.by_id > 15_000, "{s:?}");
}

#[test]
#[cfg(unix)]
fn temp_files_are_private_and_removed() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let options = JoinOptions {
        temp_dir: Some(root.path().to_path_buf()),
        memory_budget: SPILL_ALWAYS,
    };
    let users = inputs(vec![Ok(user("auth0|a", "a@x.io"))]);
    let hashes = vec![Ok::<_, Error>(entry(Some("auth0|a"), None, 1))];
    let join = join_passwords(users.into_iter(), hashes.into_iter(), options).unwrap();
    let dirs: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert_eq!(dirs.len(), 1);
    let dir = dirs[0].as_ref().unwrap().path();
    let mut files = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let meta = f.unwrap().metadata().unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        files += 1;
    }
    assert!(files >= 2, "users spill and a match run");
    assert!(!format!("{join:?}").contains("$2b$"));
    let out: Vec<_> = join.collect();
    assert_eq!(out.len(), 1);
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn a_bad_hash_entry_stops_the_join() {
    let hashes = vec![
        Ok(entry(Some("auth0|a"), None, 1)),
        Err(Error::Config("hashes file line 2: not json".into())),
    ];
    let err = join_passwords(
        std::iter::empty(),
        hashes.into_iter(),
        JoinOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "hashes file line 2: not json");
}

#[test]
fn finish_before_exhaustion_is_an_error() {
    let users = inputs(vec![Ok(user("auth0|a", ""))]);
    let join = join_passwords(
        users.into_iter(),
        std::iter::empty::<Result<HashEntry>>(),
        JoinOptions::default(),
    )
    .unwrap();
    assert!(join.finish().is_err());
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// 1,000,000 users and hashes streamed from generators (nothing held by the test):
/// prints throughput and peak RSS. Run with
/// `cargo test --release -p authmigrate-core join::tests::million -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: 1,000,000 users, run in release"]
fn million_users_peak_rss() {
    let n: u64 = std::env::var("JOIN_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let users = (0..n).map(|i| {
        let mut u = user(&format!("auth0|{i:024x}"), &format!("User{i}@Example.com"));
        u.email_verified = Some(i % 3 != 0);
        u.given_name = Some(format!("Given{i}"));
        u.family_name = Some(format!("Family{i}"));
        u.nickname = Some(format!("user{i}"));
        u.picture = Some(format!("https://s.gravatar.com/avatar/{i:032x}?s=480&r=pg"));
        let mut meta = crate::record::JsonObject::new();
        meta.insert("plan".into(), serde_json::json!("pro"));
        meta.insert("theme".into(), serde_json::json!("dark"));
        u.user_metadata = Some(meta);
        let mut unmapped = crate::record::JsonObject::new();
        unmapped.insert("logins_count".into(), serde_json::json!(i % 17));
        unmapped.insert(
            "created_at".into(),
            serde_json::json!("2023-04-05T06:07:08.000Z"),
        );
        u.unmapped = unmapped;
        InputRecord {
            index: i,
            record: Ok(u),
        }
    });
    // A cheap pseudo-shuffle: a permutation by multiplication modulo n.
    let no_hashes = std::env::var_os("JOIN_BENCH_NO_HASHES").is_some();
    let hashes = (0..n).filter(move |_| !no_hashes).filter_map(move |k| {
        let i = (k.wrapping_mul(7_368_787)) % n;
        (i % 50 != 3).then(|| {
            let id = if i % 10 == 1 {
                format!("auth0|alt{i}")
            } else {
                format!("auth0|{i:024x}")
            };
            Ok::<_, Error>(entry(Some(&id), Some(&format!("user{i}@example.com")), i))
        })
    });
    let start = std::time::Instant::now();
    let before = vm_hwm_kib();
    let mut join = join_passwords(users, hashes, JoinOptions::default()).unwrap();
    let joined = start.elapsed();
    let mut count = 0u64;
    let mut bytes = 0usize;
    for rec in join.by_ref() {
        count += 1;
        if let Ok(u) = &rec.record {
            bytes += u.password.as_ref().map_or(0, |p| p.hash.value.len());
        }
    }
    let stats = join.finish().unwrap();
    let total = start.elapsed();
    eprintln!(
        "join of {n} users: {stats:?}\n  join phase {:.2?}, total {:.2?} ({:.0} users/s), \
         VmHWM before {:?} KiB, after {:?} KiB, hash bytes {bytes}",
        joined,
        total,
        n as f64 / total.as_secs_f64(),
        before,
        vm_hwm_kib()
    );
    assert_eq!(count, n);
    assert_eq!(
        stats.users,
        stats.by_id + stats.by_email + stats.unmatched_users
    );
}
