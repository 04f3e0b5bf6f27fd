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

pub use index::{EncodedBlock, INDEX_BYTES_PER_ENTRY, IndexBuilder, KeyHasher, PasswordIndex};

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

// ---------------------------------------------------------------------------------
// Binary framing of the temp files

const NONE_LEN: u32 = u32::MAX;

fn put_u64(w: &mut impl Write, v: u64) -> io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn put_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    let len = u32::try_from(s.len())
        .ok()
        .filter(|&l| l != NONE_LEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "string longer than 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_opt(w: &mut impl Write, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => put_str(w, s),
        None => w.write_all(&NONE_LEN.to_le_bytes()),
    }
}

/// Reads a `u64`, or `None` at a clean end of file.
fn get_u64_or_eof(r: &mut impl Read) -> io::Result<Option<u64>> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(u64::from_le_bytes(buf)))
}

fn get_u8(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn get_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn get_opt(r: &mut impl Read) -> io::Result<Option<String>> {
    let len = get_u32(r)?;
    if len == NONE_LEN {
        return Ok(None);
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v)?;
    String::from_utf8(v)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "invalid utf-8 in temp file"))
}

fn get_str(r: &mut impl Read) -> io::Result<String> {
    get_opt(r)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "missing string in temp file"))
}

// ---------------------------------------------------------------------------------
// Temp files

/// Creates a new file readable and writable by the owner only.
fn create_private(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).read(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| Error::io("create", path, e))
}

fn open_reader(path: &Path, cap: usize) -> Result<BufReader<File>> {
    File::open(path)
        .map(|f| BufReader::with_capacity(cap, f))
        .map_err(|e| Error::io("read", path, e))
}

/// A temp file being written.
struct TempWriter {
    path: PathBuf,
    w: BufWriter<File>,
    records: u64,
}

impl TempWriter {
    fn create(path: PathBuf, cap: usize) -> Result<Self> {
        let f = create_private(&path)?;
        Ok(Self {
            w: BufWriter::with_capacity(cap, f),
            path,
            records: 0,
        })
    }

    fn err(&self, e: io::Error) -> Error {
        Error::io("write", &self.path, e)
    }

    /// Flushes and closes; returns the path and the record count.
    fn finish(self) -> Result<(PathBuf, u64)> {
        let Self { path, w, records } = self;
        w.into_inner()
            .map_err(|e| Error::io("write", &path, e.into_error()))?;
        Ok((path, records))
    }
}

/// Hash entries staged to one file before the partition count is known.
struct Staging {
    dir: tempfile::TempDir,
    file: TempWriter,
    id_cost: u64,
    email_cost: u64,
}

impl Staging {
    fn create(options: &JoinOptions) -> Result<Self> {
        let mut b = tempfile::Builder::new();
        b.prefix("authmigrate-join-");
        let dir = match &options.temp_dir {
            Some(d) => b
                .tempdir_in(d)
                .map_err(|e| Error::io("create a temp directory in", d, e))?,
            None => b
                .tempdir()
                .map_err(|e| Error::io("create a temp directory in", std::env::temp_dir(), e))?,
        };
        let file = TempWriter::create(dir.path().join("hashes-staged"), STREAM_BUF)?;
        Ok(Self {
            dir,
            file,
            id_cost: 0,
            email_cost: 0,
        })
    }

    fn push(&mut self, ordinal: u64, e: &NormEntry) -> Result<()> {
        let cost = |k: &Option<String>| {
            k.as_ref()
                .map_or(0, |k| (PART_ENTRY_COST + k.len() + e.hash.len()) as u64)
        };
        self.id_cost += cost(&e.id);
        self.email_cost += cost(&e.email);
        let w = &mut self.file.w;
        let r = (|| {
            put_u64(w, ordinal)?;
            put_opt(w, e.id.as_deref())?;
            put_opt(w, e.email.as_deref())?;
            put_str(w, e.hash.expose())
        })();
        r.map_err(|err| self.file.err(err))?;
        self.file.records += 1;
        Ok(())
    }
}

/// `parts` temp files written side by side, one per partition.
struct PartWriters(Vec<TempWriter>);

impl PartWriters {
    fn create(dir: &Path, name: &str, parts: usize) -> Result<Self> {
        (0..parts)
            .map(|p| TempWriter::create(dir.join(format!("{name}-{p}")), PART_BUF))
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    fn get(&mut self, key: &str) -> &mut TempWriter {
        let p = partition(key, self.0.len());
        &mut self.0[p]
    }

    fn finish(self) -> Result<Vec<(PathBuf, u64)>> {
        self.0.into_iter().map(TempWriter::finish).collect()
    }
}

/// Hash entries of one partition, keyed by one key kind: first entry wins.
fn load_partition(
    path: &Path,
    records: u64,
    stats: &mut JoinStats,
) -> Result<HashMap<String, (u64, Secret)>> {
    let mut map = HashMap::with_capacity(usize::try_from(records).unwrap_or(0));
    let mut r = open_reader(path, STREAM_BUF)?;
    let rd = |e| Error::io("read", path, e);
    while let Some(ord) = get_u64_or_eof(&mut r).map_err(rd)? {
        let key = get_str(&mut r).map_err(rd)?;
        let hash = Secret::from(get_str(&mut r).map_err(rd)?);
        match map.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => stats.duplicate_keys += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((ord, hash));
            }
        }
    }
    Ok(map)
}

fn remove_quietly(path: &Path) {
    // Early clean-up to save disk; the temp dir removes whatever is left anyway.
    let _ = std::fs::remove_file(path);
}

// ---------------------------------------------------------------------------------
// Spilled join

fn spill_join<U>(
    users: U,
    staging: Staging,
    budget: usize,
    stats: &mut JoinStats,
) -> Result<SpillOutput>
where
    U: Iterator<Item = InputRecord>,
{
    let Staging {
        dir,
        file,
        id_cost,
        email_cost,
    } = staging;
    let (staged_path, _) = file.finish()?;
    let target = (budget / 2).max(1) as u64;
    let parts = (id_cost.max(email_cost).div_ceil(target) as usize).clamp(2, MAX_PARTITIONS);
    stats.partitions = parts as u64;
    let root = dir.path().to_path_buf();

    // 1. Partition the hash entries under each key.
    let mut hid = PartWriters::create(&root, "hash-id", parts)?;
    let mut hem = PartWriters::create(&root, "hash-email", parts)?;
    {
        let mut r = open_reader(&staged_path, STREAM_BUF)?;
        let rd = |e| Error::io("read", &staged_path, e);
        while let Some(ord) = get_u64_or_eof(&mut r).map_err(rd)? {
            let id = get_opt(&mut r).map_err(rd)?;
            let email = get_opt(&mut r).map_err(rd)?;
            let hash = Secret::from(get_str(&mut r).map_err(rd)?);
            for (key, parts) in [(id, &mut hid), (email, &mut hem)] {
                if let Some(key) = key {
                    let w = parts.get(&key);
                    let res = put_u64(&mut w.w, ord)
                        .and_then(|()| put_str(&mut w.w, &key))
                        .and_then(|()| put_str(&mut w.w, hash.expose()));
                    res.map_err(|e| w.err(e))?;
                    w.records += 1;
                }
            }
        }
    }
    remove_quietly(&staged_path);
    let hid = hid.finish()?;
    let hem = hem.finish()?;

    // 2. Spill the users in order; partition their keys.
    let mut spill = TempWriter::create(root.join("users"), STREAM_BUF)?;
    let mut uid = PartWriters::create(&root, "user-id", parts)?;
    let mut uem = PartWriters::create(&root, "user-email", parts)?;
    for (seq, rec) in users.enumerate() {
        let seq = seq as u64;
        write_user(&mut spill, &rec)?;
        let Ok(user) = &rec.record else { continue };
        stats.users += 1;
        if user.password.is_some() {
            stats.kept_password += 1;
            continue;
        }
        let email = user.email.as_deref().and_then(email_key);
        if let Some(id) = id_key(user) {
            let w = uid.get(id);
            let res = put_u64(&mut w.w, seq)
                .and_then(|()| put_str(&mut w.w, id))
                .and_then(|()| put_opt(&mut w.w, email.as_deref()));
            res.map_err(|e| w.err(e))?;
        } else if let Some(email) = email {
            write_email_key(&mut uem, seq, &email)?;
        }
    }
    let (users_path, _) = spill.finish()?;
    let uid = uid.finish()?;

    let mut used = BitSet::with_len(stats.hashes);
    let mut runs: Vec<PathBuf> = Vec::new();
    let mut run_no = 0usize;
    let mut new_run = |runs: &mut Vec<PathBuf>| -> Result<TempWriter> {
        run_no += 1;
        let w = TempWriter::create(root.join(format!("run-{run_no}")), STREAM_BUF)?;
        runs.push(w.path.clone());
        Ok(w)
    };

    // 3. Round 1: by id. Each partition's user keys are in input order, so its
    // matches form a sorted run as they come.
    for ((hpath, hcount), (upath, _)) in hid.iter().zip(&uid) {
        let map = load_partition(hpath, *hcount, stats)?;
        remove_quietly(hpath);
        let mut run = new_run(&mut runs)?;
        let mut r = open_reader(upath, STREAM_BUF)?;
        let rd = |e| Error::io("read", upath, e);
        while let Some(seq) = get_u64_or_eof(&mut r).map_err(rd)? {
            let id = get_str(&mut r).map_err(rd)?;
            let email = get_opt(&mut r).map_err(rd)?;
            if let Some((ord, hash)) = map.get(&id) {
                used.set(*ord);
                stats.by_id += 1;
                write_match(&mut run, seq, BY_ID, hash)?;
            } else if let Some(email) = email {
                write_email_key(&mut uem, seq, &email)?;
            }
        }
        drop(r);
        remove_quietly(upath);
        let (path, records) = run.finish()?;
        if records == 0 {
            runs.pop();
            remove_quietly(&path);
        }
    }
    let uem = uem.finish()?;

    // 4. Round 2: by e-mail. Inputs come from several sources, so matches are
    // sorted before they are written (and flushed as extra runs past the budget).
    let match_budget = (budget / 4).max(1);
    for ((hpath, hcount), (upath, _)) in hem.iter().zip(&uem) {
        let map = load_partition(hpath, *hcount, stats)?;
        remove_quietly(hpath);
        let mut matches: Vec<(u64, Secret)> = Vec::new();
        let mut cost = 0usize;
        let mut r = open_reader(upath, STREAM_BUF)?;
        let rd = |e| Error::io("read", upath, e);
        while let Some(seq) = get_u64_or_eof(&mut r).map_err(rd)? {
            let email = get_str(&mut r).map_err(rd)?;
            if let Some((ord, hash)) = map.get(&email) {
                used.set(*ord);
                stats.by_email += 1;
                cost += MATCH_COST + hash.len();
                matches.push((seq, hash.clone()));
                if cost > match_budget {
                    flush_matches(&mut matches, new_run(&mut runs)?)?;
                    cost = 0;
                }
            }
        }
        drop(r);
        remove_quietly(upath);
        if !matches.is_empty() {
            flush_matches(&mut matches, new_run(&mut runs)?)?;
        }
    }
    stats.unused_hashes = stats.hashes - used.count();
    stats.unmatched_users = stats.users - stats.kept_password - stats.by_id - stats.by_email;

    // 5. Merge cascades while there are too many runs to open at once.
    while runs.len() > MAX_FAN_IN {
        let group: Vec<PathBuf> = runs.drain(..MAX_FAN_IN).collect();
        let mut merged = RunMerge::open(&group)?;
        let mut out = new_run(&mut runs)?;
        while let Some((seq, kind, hash)) = merged.pop()? {
            write_match(&mut out, seq, kind, &hash)?;
        }
        out.finish()?;
        for p in &group {
            remove_quietly(p);
        }
    }

    Ok(SpillOutput {
        merge: RunMerge::open(&runs)?,
        users: open_reader(&users_path, STREAM_BUF)?,
        users_path,
        seq: 0,
        buf: Vec::new(),
        _dir: dir,
    })
}

fn write_email_key(parts: &mut PartWriters, seq: u64, email: &str) -> Result<()> {
    let w = parts.get(email);
    put_u64(&mut w.w, seq)
        .and_then(|()| put_str(&mut w.w, email))
        .map_err(|e| w.err(e))?;
    w.records += 1;
    Ok(())
}

fn write_match(w: &mut TempWriter, seq: u64, kind: u8, hash: &Secret) -> Result<()> {
    put_u64(&mut w.w, seq)
        .and_then(|()| w.w.write_all(&[kind]))
        .and_then(|()| put_str(&mut w.w, hash.expose()))
        .map_err(|e| w.err(e))?;
    w.records += 1;
    Ok(())
}

fn flush_matches(matches: &mut Vec<(u64, Secret)>, mut run: TempWriter) -> Result<()> {
    matches.sort_unstable_by_key(|(seq, _)| *seq);
    for (seq, hash) in matches.drain(..) {
        write_match(&mut run, seq, BY_EMAIL, &hash)?;
    }
    run.finish()?;
    Ok(())
}

const USER_OK: u8 = 0;
const USER_ERR: u8 = 1;

fn write_user(w: &mut TempWriter, rec: &InputRecord) -> Result<()> {
    let res = (|| {
        put_u64(&mut w.w, rec.index)?;
        match &rec.record {
            Ok(user) => {
                w.w.write_all(&[USER_OK])?;
                let json = serde_json::to_vec(user).map_err(io::Error::other)?;
                let len = u32::try_from(json.len()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "record larger than 4 GiB")
                })?;
                w.w.write_all(&len.to_le_bytes())?;
                w.w.write_all(&json)
            }
            Err(f) => {
                w.w.write_all(&[USER_ERR])?;
                put_str(&mut w.w, &f.code)?;
                put_str(&mut w.w, &f.message)
            }
        }
    })();
    res.map_err(|e| w.err(e))?;
    w.records += 1;
    Ok(())
}

/// The output side of a spilled join: the user spill read in order, with the match
/// runs merged by sequence number.
struct SpillOutput {
    users: BufReader<File>,
    users_path: PathBuf,
    merge: RunMerge,
    seq: u64,
    buf: Vec<u8>,
    // Declared last: the files are closed before the directory is removed.
    _dir: tempfile::TempDir,
}

impl SpillOutput {
    fn next(&mut self) -> Result<Option<InputRecord>> {
        let rd = |e| Error::io("read", &self.users_path, e);
        let Some(index) = get_u64_or_eof(&mut self.users).map_err(rd)? else {
            return Ok(None);
        };
        let seq = self.seq;
        self.seq += 1;
        let record = match get_u8(&mut self.users).map_err(rd)? {
            USER_OK => {
                let len = get_u32(&mut self.users).map_err(rd)? as usize;
                self.buf.resize(len, 0);
                self.users.read_exact(&mut self.buf).map_err(rd)?;
                let mut user: UserRecord = serde_json::from_slice(&self.buf)
                    .map_err(|e| rd(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                while let Some((mseq, _, hash)) = self.merge.pop_if_le(seq)? {
                    if mseq == seq {
                        user.password = Some(PasswordHash::bcrypt(hash));
                    }
                }
                Ok(user)
            }
            USER_ERR => {
                let code = get_str(&mut self.users).map_err(rd)?;
                let message = get_str(&mut self.users).map_err(rd)?;
                Err(RecordFailure { code, message })
            }
            _ => {
                return Err(rd(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad record tag",
                )));
            }
        };
        Ok(Some(InputRecord { index, record }))
    }
}

/// A k-way merge of match runs (each sorted by sequence number).
struct RunMerge {
    readers: Vec<(PathBuf, BufReader<File>)>,
    heads: Vec<Option<(u8, Secret)>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl RunMerge {
    fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut m = Self {
            readers: Vec::with_capacity(paths.len()),
            heads: Vec::with_capacity(paths.len()),
            heap: BinaryHeap::with_capacity(paths.len()),
        };
        for (i, p) in paths.iter().enumerate() {
            m.readers.push((p.clone(), open_reader(p, PART_BUF)?));
            m.heads.push(None);
            m.advance(i)?;
        }
        Ok(m)
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        let (path, r) = &mut self.readers[i];
        let rd = |e| Error::io("read", &*path, e);
        if let Some(seq) = get_u64_or_eof(r).map_err(rd)? {
            let kind = get_u8(r).map_err(rd)?;
            let hash = Secret::from(get_str(r).map_err(rd)?);
            self.heads[i] = Some((kind, hash));
            self.heap.push(Reverse((seq, i)));
        }
        Ok(())
    }

    /// The smallest match, if any.
    fn pop(&mut self) -> Result<Option<(u64, u8, Secret)>> {
        self.pop_if_le(u64::MAX)
    }

    /// The smallest match if its sequence number is at most `seq`.
    fn pop_if_le(&mut self, seq: u64) -> Result<Option<(u64, u8, Secret)>> {
        match self.heap.peek() {
            Some(Reverse((s, _))) if *s <= seq => {}
            _ => return Ok(None),
        }
        let Some(Reverse((s, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let head = self.heads[i].take();
        self.advance(i)?;
        Ok(head.map(|(kind, hash)| (s, kind, hash)))
    }
}

#[cfg(test)]
mod tests {
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

    fn run_join(
        users: Vec<InputRecord>,
        hashes: Vec<HashEntry>,
        budget: usize,
    ) -> (Out, JoinStats) {
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
}
