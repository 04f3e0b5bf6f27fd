//! The keyed look-up the work store was chosen for, measured against the password index
//! (`join::PasswordIndex`) on the same data: 1,000,000 entries (an id, an e-mail and a
//! 60-byte value), built from a stream, then every entry looked up once by id in
//! another order. Run with
//! `cargo test --release -p authmigrate-core verify::bench -- --ignored --nocapture`
//! (`STORE_BENCH_N` changes the size). The figures are in `docs/architecture.md`.

use std::time::Instant;

use rusqlite::params;

use crate::join::{EncodedBlock, IndexBuilder, JoinOptions, JoinStats};
use crate::workstore::WorkStore;

fn n() -> u64 {
    std::env::var("STORE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn id(i: u64) -> String {
    format!("auth0|{i:024x}")
}

fn value(i: u64) -> String {
    format!("$2b$10${i:053}")
}

/// A permutation of 0..n by multiplication (7,368,787 is prime, so coprime with n
/// unless it divides n).
fn shuffled(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |k| k.wrapping_mul(7_368_787) % n)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "benchmark: 1,000,000 entries, run in release"]
fn store_against_password_index() {
    let n = n();
    // The password index.
    let start = Instant::now();
    let options = JoinOptions::default();
    let mut builder = IndexBuilder::new(&options, n as usize).unwrap();
    let mut block = EncodedBlock::new(builder.hasher(), []);
    for i in 0..n {
        block.push(
            builder.hasher(),
            Some(&id(i)),
            Some(&format!("user{i}@example.com")),
            &value(i),
        );
        if block.len() == 4096 {
            let full = std::mem::replace(&mut block, EncodedBlock::new(builder.hasher(), []));
            assert!(builder.push(full).unwrap(), "within the index's budget");
        }
    }
    builder.push(block).unwrap();
    let index = builder.finish().unwrap();
    let built = start.elapsed();
    let start = Instant::now();
    let mut stats = JoinStats::default();
    let mut found = 0u64;
    for i in shuffled(n) {
        let k = id(i);
        found += u64::from(
            index
                .lookup_with(Some(&k), None, &mut stats, |h| h.len())
                .unwrap()
                .is_some(),
        );
    }
    let looked = start.elapsed();
    assert_eq!(found, n);
    eprintln!(
        "password index: {n} entries built in {built:.2?}, {n} look-ups in {looked:.2?} \
         ({:.0}/s); index memory {} MiB; VmHWM {} MiB",
        n as f64 / looked.as_secs_f64(),
        index.memory() >> 20,
        vm_hwm_kib() >> 10
    );
    drop(index);

    // The work store, as `verify` uses it: rows in blocks, indexes after loading.
    let hwm = vm_hwm_kib();
    let start = Instant::now();
    let store = WorkStore::temporary(None).unwrap();
    store
        .ensure_schema(
            "bench",
            1,
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT, email TEXT, value BLOB);",
        )
        .unwrap();
    let mut i = 0;
    while i < n {
        let tx = store.conn().unchecked_transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO t (id, email, value) VALUES (?1, ?2, ?3)")
                .unwrap();
            for j in i..(i + 8192).min(n) {
                st.execute(params![
                    id(j),
                    format!("user{j}@example.com"),
                    value(j).into_bytes()
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        i += 8192;
    }
    let loaded = start.elapsed();
    store
        .conn()
        .execute_batch("CREATE INDEX t_id ON t(id); CREATE INDEX t_email ON t(email);")
        .unwrap();
    let built = start.elapsed();
    let start = Instant::now();
    let mut found = 0u64;
    {
        let mut st = store
            .conn()
            .prepare_cached("SELECT value FROM t WHERE id = ?1")
            .unwrap();
        for i in shuffled(n) {
            let v: Vec<u8> = st.query_row(params![id(i)], |r| r.get(0)).unwrap();
            found += u64::from(v.len() == 60);
        }
    }
    let looked = start.elapsed();
    assert_eq!(found, n);
    let size = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "work store: {n} rows loaded in {loaded:.2?}, indexed by {built:.2?}, {n} look-ups in \
         {looked:.2?} ({:.0}/s); file {} MiB ({} bytes a row); VmHWM {} MiB (was {} MiB)",
        n as f64 / looked.as_secs_f64(),
        size >> 20,
        size / n.max(1),
        vm_hwm_kib() >> 10,
        hwm >> 10
    );
}
