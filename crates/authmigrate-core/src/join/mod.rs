//! Joins a password-hash export to users in bounded memory.
//!
//! Auth0 never returns password hashes through its API; support sends them as a
//! separate NDJSON file. [`join_passwords`] attaches those hashes to the users of an
//! export: by id first (`source_id`, e.g. `auth0|abc`), then by lower-cased e-mail,
//! and yields every user exactly once, in input order.
//!
//! # Memory
//! While the hash entries fit [`JoinOptions::memory_budget`] they are held in a hash
//! table and the users are streamed straight through (no temp files). Past the budget
//! the join becomes a Grace hash join over temp files (see `docs/join.md`):
//!
//! 1. hash entries are staged to disk, then partitioned into `P` files under their id
//!    key and `P` files under their e-mail key, `P` chosen so one partition's table
//!    fits half the budget;
//! 2. users are written once, in order, to a spill file, and only their keys
//!    (sequence number, id, e-mail) are partitioned by id;
//! 3. round 1 loads each id partition and streams its user keys: a hit becomes a
//!    match `(sequence, hash)`, a miss is re-partitioned by e-mail;
//! 4. round 2 does the same per e-mail partition;
//! 5. the output reads the user spill in order and k-way merges the (sorted) match
//!    runs by sequence number to attach the hashes.
//!
//! Temp files live in a private temp directory (removed on drop), are created `0600`
//! and hold hashes only in our own binary framing. Hashes never reach logs or `Debug`.

mod index;
mod spill;
#[cfg(test)]
mod tests;

pub use index::{EncodedBlock, INDEX_BYTES_PER_ENTRY, IndexBuilder, KeyHasher, PasswordIndex};
use spill::{SpillOutput, Staging, spill_join};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::backend::RecordFailure;
use crate::driver::InputRecord;
use crate::error::{Error, Result};
use crate::record::{PasswordHash, UserRecord};
use crate::secret::Secret;

/// The default [`JoinOptions::memory_budget`]: 32 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 32 << 20;

/// Most partitions per key kind (keeps open files and merge fan-in bounded).
const MAX_PARTITIONS: usize = 128;
/// Most match runs merged at once; more are merged in cascades first.
const MAX_FAN_IN: usize = 256;
/// Buffer of the big sequential streams.
const STREAM_BUF: usize = 64 << 10;
/// Buffer of each partition writer / run reader.
const PART_BUF: usize = 8 << 10;

/// Estimated bytes one staged entry costs in the in-memory table, on top of its strings.
const MEM_ENTRY_COST: usize = 240;
/// Estimated bytes one key costs in a loaded partition table, on top of key and hash.
const PART_ENTRY_COST: usize = 160;
/// Estimated bytes one buffered e-mail match costs, on top of the hash.
const MATCH_COST: usize = 64;

/// One entry of a password-hash export: the keys it can be matched by and the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashEntry {
    /// The user id it belongs to (`auth0|<alt_id or _id>`), if known.
    pub id: Option<String>,
    /// The user's e-mail address (matched case-insensitively), if known.
    pub email: Option<String>,
    /// The bcrypt hash (`$2b$10$...`).
    pub hash: Secret,
}

/// How [`join_passwords`] runs.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// Where to create the private temp directory (default: the system temp dir).
    pub temp_dir: Option<PathBuf>,
    /// Bytes the join may use for its tables (default [`DEFAULT_MEMORY_BUDGET`]).
    /// Peak memory is about this plus I/O buffers (under 3 MiB).
    pub memory_budget: usize,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            temp_dir: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// Counts of a join. Final once the [`PasswordJoin`] is exhausted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Users read (records that are `Err` are not counted).
    pub users: u64,
    /// Users that got a hash by id.
    pub by_id: u64,
    /// Users that got a hash by e-mail (no id match).
    pub by_email: u64,
    /// Users that already had a password and kept it (not joined).
    pub kept_password: u64,
    /// Users without a password that matched no hash.
    pub unmatched_users: u64,
    /// Hash entries read.
    pub hashes: u64,
    /// Hash entries that no user used (including shadowed duplicates).
    pub unused_hashes: u64,
    /// Keys (id or e-mail) that repeated an earlier entry's key and were ignored: the
    /// first entry with a key wins.
    pub duplicate_keys: u64,
    /// Partitions per key kind; 0 when the join ran in memory.
    pub partitions: u64,
}

impl JoinStats {
    /// Adds the per-user counts (users, by id, by e-mail, kept password) of another
    /// tally, e.g. one kept by each thread attaching through a [`PasswordIndex`].
    pub fn add(&mut self, other: &JoinStats) {
        self.users += other.users;
        self.by_id += other.by_id;
        self.by_email += other.by_email;
        self.kept_password += other.kept_password;
    }
}

/// The joined users, in input order. See [`join_passwords`].
pub struct PasswordJoin<U> {
    inner: Inner<U>,
    stats: JoinStats,
    error: Option<Error>,
}

enum Inner<U> {
    Memory { users: U, table: MemTable },
    Spilled(Box<SpillOutput>),
    Done,
}

impl<U> fmt::Debug for PasswordJoin<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.inner {
            Inner::Memory { .. } => "memory",
            Inner::Spilled(_) => "spilled",
            Inner::Done => "done",
        };
        f.debug_struct("PasswordJoin")
            .field("mode", &mode)
            .field("stats", &self.stats)
            .field("failed", &self.error.is_some())
            .finish()
    }
}

impl<U> PasswordJoin<U> {
    /// The counts so far (final after the iterator returned `None`).
    pub fn stats(&self) -> JoinStats {
        self.stats
    }

    /// Ends the join: the final counts, or the error that stopped the output early
    /// (a temp file that could not be read back). Call it after iterating: a `None`
    /// from [`Iterator::next`] alone does not prove every user was yielded.
    pub fn finish(mut self) -> Result<JoinStats> {
        match self.error.take() {
            Some(e) => Err(e),
            None if matches!(self.inner, Inner::Done) => Ok(self.stats),
            None => Err(Error::Config(
                "password join finished before every user was read".into(),
            )),
        }
    }
}

impl<U: Iterator<Item = InputRecord>> Iterator for PasswordJoin<U> {
    type Item = InputRecord;

    fn next(&mut self) -> Option<InputRecord> {
        let out = match &mut self.inner {
            Inner::Done => return None,
            Inner::Memory { users, table } => match users.next() {
                Some(mut rec) => {
                    if let Ok(user) = &mut rec.record {
                        table.attach(user, &mut self.stats);
                    }
                    Ok(Some(rec))
                }
                None => {
                    let used = table.used.count();
                    self.stats.unused_hashes = self.stats.hashes - used;
                    self.stats.unmatched_users = self.stats.users
                        - self.stats.kept_password
                        - self.stats.by_id
                        - self.stats.by_email;
                    Ok(None)
                }
            },
            Inner::Spilled(out) => out.next(),
        };
        match out {
            Ok(Some(rec)) => Some(rec),
            Ok(None) => {
                self.inner = Inner::Done;
                None
            }
            Err(e) => {
                self.error = Some(e);
                self.inner = Inner::Done;
                None
            }
        }
    }
}

/// Joins `hashes` to `users`: every user is yielded exactly once, in input order, with
/// `password` set to [`PasswordHash::bcrypt`] of the matched hash. A user matches an
/// entry by `source_id` == [`HashEntry::id`] first, else by lower-cased e-mail. Users
/// that already have a password keep it; `Err` records pass through untouched, in
/// place. For each key the first entry wins; later ones count as
/// [`JoinStats::duplicate_keys`].
///
/// The hashes are read completely before this returns. When they do not fit the
/// memory budget the users are read completely as well (and spilled to temp files);
/// otherwise they are streamed. An `Err` from `hashes` stops the join with that error.
pub fn join_passwords<U, H, E>(users: U, hashes: H, options: JoinOptions) -> Result<PasswordJoin<U>>
where
    U: Iterator<Item = InputRecord>,
    H: Iterator<Item = std::result::Result<HashEntry, E>>,
    E: Into<Error>,
{
    let budget = options.memory_budget.max(1);
    let mut stats = JoinStats::default();
    let mut pending: Vec<NormEntry> = Vec::new();
    let mut pending_cost = 0usize;
    let mut staging: Option<Staging> = None;
    for item in hashes {
        let entry = NormEntry::new(item.map_err(Into::into)?);
        let ordinal = stats.hashes;
        stats.hashes += 1;
        if let Some(s) = &mut staging {
            s.push(ordinal, &entry)?;
            continue;
        }
        pending_cost += entry.mem_cost();
        pending.push(entry);
        if pending_cost > budget {
            let mut s = Staging::create(&options)?;
            for (i, e) in pending.drain(..).enumerate() {
                s.push(i as u64, &e)?;
            }
            pending = Vec::new();
            staging = Some(s);
        }
    }
    match staging {
        None => {
            let table = MemTable::build(pending, &mut stats);
            Ok(PasswordJoin {
                inner: Inner::Memory { users, table },
                stats,
                error: None,
            })
        }
        Some(staging) => {
            let out = spill_join(users, staging, budget, &mut stats)?;
            Ok(PasswordJoin {
                inner: Inner::Spilled(Box::new(out)),
                stats,
                error: None,
            })
        }
    }
}

// ---------------------------------------------------------------------------------
// Keys

/// A hash entry with its keys normalised (empty keys dropped, e-mail lower-cased).
struct NormEntry {
    id: Option<String>,
    email: Option<String>,
    hash: Secret,
}

impl NormEntry {
    fn new(e: HashEntry) -> Self {
        Self {
            id: e.id.filter(|s| !s.is_empty()),
            email: e.email.as_deref().and_then(email_key),
            hash: e.hash,
        }
    }

    fn mem_cost(&self) -> usize {
        MEM_ENTRY_COST
            + self.id.as_ref().map_or(0, String::len)
            + self.email.as_ref().map_or(0, String::len)
            + self.hash.len()
    }
}

/// The e-mail match key: lower-cased, `None` when empty.
fn email_key(email: &str) -> Option<String> {
    if email.is_empty() {
        None
    } else if email.is_ascii() {
        Some(email.to_ascii_lowercase())
    } else {
        Some(email.to_lowercase())
    }
}

/// The id match key of a user.
fn id_key(user: &UserRecord) -> Option<&str> {
    user.source_id.as_deref().filter(|s| !s.is_empty())
}

/// Stable partition of a key (FNV-1a, then a 64-bit finaliser).
fn partition(key: &str, parts: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % parts as u64) as usize
}

/// One bit per hash entry: used by some user.
#[derive(Default)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn with_len(n: u64) -> Self {
        Self(vec![0; n.div_ceil(64) as usize])
    }

    fn set(&mut self, i: u64) {
        let (w, b) = ((i / 64) as usize, i % 64);
        if let Some(word) = self.0.get_mut(w) {
            *word |= 1 << b;
        }
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

const BY_ID: u8 = 0;
const BY_EMAIL: u8 = 1;

// ---------------------------------------------------------------------------------
// In memory

struct MemTable {
    hashes: Vec<Secret>,
    by_id: HashMap<String, u32>,
    by_email: HashMap<String, u32>,
    used: BitSet,
}

impl MemTable {
    fn build(entries: Vec<NormEntry>, stats: &mut JoinStats) -> Self {
        let n = entries.len();
        let mut by_id = HashMap::with_capacity(entries.iter().filter(|e| e.id.is_some()).count());
        let mut by_email =
            HashMap::with_capacity(entries.iter().filter(|e| e.email.is_some()).count());
        let mut hashes = Vec::with_capacity(n);
        for (i, e) in entries.into_iter().enumerate() {
            // In memory means far fewer than u32::MAX entries (each costs > 240 bytes).
            let ord = u32::try_from(i).unwrap_or(u32::MAX);
            for (key, map) in [(e.id, &mut by_id), (e.email, &mut by_email)] {
                if let Some(key) = key {
                    match map.entry(key) {
                        std::collections::hash_map::Entry::Occupied(_) => stats.duplicate_keys += 1,
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(ord);
                        }
                    }
                }
            }
            hashes.push(e.hash);
        }
        Self {
            used: BitSet::with_len(n as u64),
            hashes,
            by_id,
            by_email,
        }
    }

    fn attach(&mut self, user: &mut UserRecord, stats: &mut JoinStats) {
        stats.users += 1;
        if user.password.is_some() {
            stats.kept_password += 1;
            return;
        }
        let hit = match id_key(user).and_then(|id| self.by_id.get(id)) {
            Some(&ord) => Some((ord, BY_ID)),
            None => user
                .email
                .as_deref()
                .and_then(email_key)
                .and_then(|k| self.by_email.get(&k).map(|&ord| (ord, BY_EMAIL))),
        };
        if let Some((ord, kind)) = hit
            && let Some(hash) = self.hashes.get(ord as usize)
        {
            self.used.set(u64::from(ord));
            user.password = Some(PasswordHash::bcrypt(hash.clone()));
            if kind == BY_ID {
                stats.by_id += 1;
            } else {
                stats.by_email += 1;
            }
        }
    }
}
