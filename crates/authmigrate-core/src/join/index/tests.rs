use super::super::{DEFAULT_MEMORY_BUDGET, join_passwords};
use super::*;
use crate::driver::InputRecord;

fn hash_of(n: u64) -> Secret {
    Secret::new(format!("$2b$10${n:053}"))
}

/// An index of `entries`, pushed `block` at a time. `spill`: with a budget that
/// holds every key but not the entries too, so they move to the temp file part way
/// through; else they all stay in memory.
fn build(entries: &[HashEntry], mask: u64, block: usize, spill: bool) -> PasswordIndex {
    let keys = 2 * entries.len() * BYTES_PER_KEY + entries.len();
    let options = JoinOptions {
        memory_budget: if spill {
            2 * keys
        } else {
            DEFAULT_MEMORY_BUDGET
        },
        ..JoinOptions::default()
    };
    let mut b = IndexBuilder::new(&options, entries.len()).unwrap();
    b.hasher.mask = mask;
    for chunk in entries.chunks(block.max(1)) {
        let encoded = EncodedBlock::new(b.hasher(), chunk.iter().cloned());
        assert!(b.push(encoded).unwrap());
    }
    let index = b.finish().unwrap();
    if !entries.is_empty() {
        assert_eq!(index.in_memory.is_none(), spill, "entries spilled");
    }
    index
}

/// A small deterministic generator (xorshift), enough to mix keys.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Users and entries drawn from a small key space, so ids and e-mails repeat,
/// differ only in case, go missing or are empty.
fn data(seed: u64, n: usize) -> (Vec<UserRecord>, Vec<HashEntry>) {
    let mut r = Rng(seed | 1);
    let id = |r: &mut Rng| match r.below(10) {
        0 => None,
        1 => Some(String::new()),
        _ => Some(format!("auth0|{}", r.below(n as u64))),
    };
    let email = |r: &mut Rng| match r.below(10) {
        0 => None,
        1 => Some(String::new()),
        2 => Some(format!("User{}@Example.COM", r.below(n as u64))),
        3 => Some(format!("ÉLODIE{}@example.com", r.below(n as u64))),
        _ => Some(format!("user{}@example.com", r.below(n as u64))),
    };
    let users = (0..n)
        .map(|i| {
            let mut u = UserRecord {
                source_id: id(&mut r),
                email: email(&mut r),
                ..UserRecord::default()
            };
            if i % 17 == 0 {
                u.password = Some(PasswordHash::bcrypt(hash_of(1_000_000 + i as u64)));
            }
            u
        })
        .collect();
    let entries = (0..n)
        .map(|i| HashEntry {
            id: id(&mut r),
            email: email(&mut r),
            hash: hash_of(i as u64),
        })
        .collect();
    (users, entries)
}

fn reference(users: &[UserRecord], entries: &[HashEntry]) -> (Vec<UserRecord>, JoinStats) {
    let input = users.iter().enumerate().map(|(i, u)| InputRecord {
        index: i as u64,
        record: Ok(u.clone()),
    });
    let hashes = entries.iter().cloned().map(Ok::<_, Error>);
    let mut join = join_passwords(input, hashes, JoinOptions::default()).unwrap();
    let out = join.by_ref().map(|r| r.record.unwrap()).collect();
    (out, join.finish().unwrap())
}

#[test]
fn agrees_with_join_passwords_even_when_every_fingerprint_collides() {
    for spill in [false, true] {
        agrees_with_join_passwords_even_when_every_fingerprint_collides_in(spill);
    }
}

fn agrees_with_join_passwords_even_when_every_fingerprint_collides_in(spill: bool) {
    for (seed, mask) in [(7, u64::from(u32::MAX)), (11, 0b111), (13, 0)] {
        let (users, entries) = data(seed, 400);
        let (expected, expected_stats) = reference(&users, &entries);
        let index = build(&entries, mask, 37, spill);
        let mut stats = JoinStats::default();
        let got: Vec<UserRecord> = users
            .iter()
            .cloned()
            .map(|mut u| {
                index.attach(&mut u, &mut stats).unwrap();
                u
            })
            .collect();
        index.finish_stats(&mut stats);
        assert_eq!(got, expected, "seed {seed}, mask {mask:#x}");
        assert_eq!(stats, expected_stats, "seed {seed}, mask {mask:#x}");
        assert!(stats.by_id > 0 && stats.by_email > 0 && stats.duplicate_keys > 0);
    }
}

#[test]
fn first_entry_wins_and_emails_match_case_insensitively() {
    for spill in [false, true] {
        first_entry_wins_and_emails_match_case_insensitively_in(spill);
    }
}

fn first_entry_wins_and_emails_match_case_insensitively_in(spill: bool) {
    let entries = vec![
        HashEntry {
            id: Some("auth0|a".into()),
            email: Some("Ada@Example.com".into()),
            hash: hash_of(1),
        },
        HashEntry {
            id: Some("auth0|a".into()),
            email: Some("ada@example.COM".into()),
            hash: hash_of(2),
        },
    ];
    let index = build(&entries, u64::from(u32::MAX), 1, spill);
    assert_eq!(index.duplicate_keys(), 2);
    let mut stats = JoinStats::default();
    let mut by_email = UserRecord {
        source_id: Some("auth0|other".into()),
        email: Some("ADA@example.com".into()),
        ..UserRecord::default()
    };
    index.attach(&mut by_email, &mut stats).unwrap();
    let mut nobody = UserRecord {
        source_id: Some("auth0|b".into()),
        ..UserRecord::default()
    };
    index.attach(&mut nobody, &mut stats).unwrap();
    index.finish_stats(&mut stats);
    let got = by_email.password.as_ref().and_then(|p| p.as_plain_bcrypt());
    assert_eq!(got.map(Secret::expose), Some(hash_of(1).expose()));
    assert!(nobody.password.is_none());
    assert_eq!(
        (stats.by_email, stats.by_id, stats.unmatched_users),
        (1, 0, 1)
    );
    assert_eq!((stats.hashes, stats.unused_hashes), (2, 1));
}

#[test]
fn entries_longer_than_one_read_are_read_whole() {
    for spill in [false, true] {
        entries_longer_than_one_read_are_read_whole_in(spill);
    }
}

fn entries_longer_than_one_read_are_read_whole_in(spill: bool) {
    let long = |c: char, n: usize| std::iter::repeat_n(c, n).collect::<String>();
    let entries: Vec<HashEntry> = (0..20)
        .map(|i| HashEntry {
            id: Some(format!("auth0|{i}{}", long('x', 300 * (i % 3)))),
            email: Some(format!("{}{i}@example.com", long('e', 200 * (i % 2)))),
            hash: hash_of(i as u64),
        })
        .collect();
    let index = build(&entries, u64::from(u32::MAX), 7, spill);
    let mut stats = JoinStats::default();
    for (i, e) in entries.iter().enumerate() {
        let by_id = index.lookup(e.id.as_deref(), None, &mut stats).unwrap();
        let by_email = index
            .lookup(
                None,
                e.email.as_deref().map(str::to_uppercase).as_deref(),
                &mut stats,
            )
            .unwrap();
        for got in [by_id, by_email] {
            assert_eq!(
                got.as_ref().map(Secret::expose),
                Some(hash_of(i as u64).expose())
            );
        }
    }
    assert_eq!((stats.by_id, stats.by_email), (20, 20));
}

#[test]
fn entries_move_to_the_temp_file_once_they_outgrow_half_the_budget() {
    let entries: Vec<HashEntry> = (0..2000u64)
        .map(|i| HashEntry {
            id: Some(format!("auth0|{i}")),
            email: Some(format!("u{i}@example.com")),
            hash: hash_of(i),
        })
        .collect();
    // Room for every key (21 bytes an entry) and for some entries (about 100
    // bytes each) beside them, within half the budget.
    let options = JoinOptions {
        memory_budget: 2 * 2000 * INDEX_BYTES_PER_ENTRY + 2 * 20_000,
        ..JoinOptions::default()
    };
    let mut b = IndexBuilder::new(&options, 2000).unwrap();
    let mut in_memory = Vec::new();
    for chunk in entries.chunks(100) {
        assert!(
            b.push(EncodedBlock::new(b.hasher(), chunk.iter().cloned()))
                .unwrap()
        );
        in_memory.push(b.in_memory.is_some());
    }
    assert!(in_memory[0] && !in_memory[19], "{in_memory:?}");
    let index = b.finish().unwrap();
    assert!(index.in_memory.is_none());
    // Entries from before and after the move are read back alike.
    let mut stats = JoinStats::default();
    for (i, e) in entries.iter().enumerate() {
        for (id, email) in [(e.id.as_deref(), None), (None, e.email.as_deref())] {
            let got = index.lookup(id, email, &mut stats).unwrap();
            assert_eq!(
                got.as_ref().map(Secret::expose),
                Some(hash_of(i as u64).expose())
            );
        }
    }
    assert!(index.memory() < options.memory_budget);
}

#[test]
fn one_kind_of_key_alone_fills_its_table() {
    for spill in [false, true] {
        one_kind_of_key_alone_fills_its_table_in(spill);
    }
}

fn one_kind_of_key_alone_fills_its_table_in(spill: bool) {
    // Only e-mails (the id table is empty), then only ids (the e-mail table is).
    for only_email in [true, false] {
        let entries: Vec<HashEntry> = (0..3000u64)
            .map(|i| HashEntry {
                id: (!only_email).then(|| format!("auth0|{i}")),
                email: only_email.then(|| format!("u{i}@example.com")),
                hash: hash_of(i),
            })
            .collect();
        let index = build(&entries, u64::from(u32::MAX), 700, spill);
        let mut stats = JoinStats::default();
        for (i, e) in entries.iter().enumerate() {
            let got = index
                .lookup(e.id.as_deref(), e.email.as_deref(), &mut stats)
                .unwrap();
            assert_eq!(
                got.as_ref().map(Secret::expose),
                Some(hash_of(i as u64).expose()),
                "entry {i}, only e-mails: {only_email}"
            );
        }
        let (by_id, by_email) = if only_email { (0, 3000) } else { (3000, 0) };
        assert_eq!((stats.by_id, stats.by_email), (by_id, by_email));
        assert!(
            index
                .lookup(Some("auth0|3000"), Some("u3000@example.com"), &mut stats)
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn every_key_is_found_across_spread_blocks_and_absent_keys_are_not() {
    for spill in [false, true] {
        every_key_is_found_across_spread_blocks_and_absent_keys_are_not_in(spill);
    }
}

fn every_key_is_found_across_spread_blocks_and_absent_keys_are_not_in(spill: bool) {
    // Over ten spread blocks of keys; narrow masks pile fingerprints onto few home
    // slots, so long runs of keys sit far from their homes.
    let entries: Vec<HashEntry> = (0..6000u64)
        .map(|i| HashEntry {
            id: Some(format!("auth0|{i:x}")),
            email: (i % 5 != 0).then(|| format!("u{i}@example.com")),
            hash: hash_of(i),
        })
        .collect();
    for mask in [u64::from(u32::MAX), 0xffff_0000, 0x3ff] {
        let index = build(&entries, mask, 501, spill);
        let [id, email] = index.tables;
        assert!(
            id.len >= id.homes && email.len >= email.homes,
            "mask {mask:#x}"
        );
        assert_eq!((id.start, email.start), (0, id.len), "mask {mask:#x}");
        assert_eq!(index.keys.len(), id.len + email.len, "mask {mask:#x}");
        let in_table = |t: Table, want: u64| {
            index.keys[t.start..t.start + t.len]
                .iter()
                .all(|k| *k == EMPTY || k & EMAIL_BIT == want)
        };
        assert!(
            in_table(id, 0) && in_table(email, EMAIL_BIT),
            "mask {mask:#x}"
        );
        let keys: Vec<u64> = index.keys.iter().copied().filter(|k| *k != EMPTY).collect();
        assert_eq!(keys.len(), 6000 + 4800, "mask {mask:#x}");
        assert!(keys.is_sorted(), "mask {mask:#x}");
        let mut stats = JoinStats::default();
        for (i, e) in entries.iter().enumerate() {
            let got = index.lookup(e.id.as_deref(), None, &mut stats).unwrap();
            assert_eq!(
                got.as_ref().map(Secret::expose),
                Some(hash_of(i as u64).expose())
            );
            if let Some(email) = &e.email {
                let got = index.lookup(None, Some(email), &mut stats).unwrap();
                assert_eq!(
                    got.as_ref().map(Secret::expose),
                    Some(hash_of(i as u64).expose())
                );
            }
            let absent = format!("auth0|{i:x}-gone");
            assert!(
                index
                    .lookup(Some(&absent), Some("gone@example.com"), &mut stats)
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!(
            (stats.by_id, stats.by_email),
            (6000, 4800),
            "mask {mask:#x}"
        );
    }
    let empty = build(&[], u64::from(u32::MAX), 1, false);
    let mut stats = JoinStats::default();
    let got = empty.lookup(Some("auth0|a"), Some("a@example.com"), &mut stats);
    assert!(got.unwrap().is_none());
}

#[test]
fn says_when_the_budget_is_outgrown() {
    let (_, entries) = data(3, 1000);
    let options = JoinOptions {
        temp_dir: None,
        memory_budget: 100 * INDEX_BYTES_PER_ENTRY,
    };
    let mut b = IndexBuilder::new(&options, 0).unwrap();
    let mut fits = Vec::new();
    for chunk in entries.chunks(50) {
        fits.push(
            b.push(EncodedBlock::new(b.hasher(), chunk.iter().cloned()))
                .unwrap(),
        );
    }
    assert_eq!(fits.iter().filter(|f| **f).count(), 2, "{fits:?}");
    assert!(!fits[2]);
    let _ = DEFAULT_MEMORY_BUDGET;
}

#[test]
fn debug_shows_no_hash() {
    let entries = vec![HashEntry {
        id: Some("auth0|a".into()),
        email: None,
        hash: hash_of(42),
    }];
    let b = IndexBuilder::new(&JoinOptions::default(), 1).unwrap();
    let block = EncodedBlock::new(b.hasher(), entries.clone());
    let index = build(&entries, u64::from(u32::MAX), 1, false);
    for text in [format!("{block:?}"), format!("{b:?}"), format!("{index:?}")] {
        assert!(!text.contains("$2b$"), "{text}");
    }
}
