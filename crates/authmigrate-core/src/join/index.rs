//! A compact, shareable index of a password-hash export: keys in memory, hashes on disk.
//!
//! [`PasswordIndex`] is what makes the common case of `convert --password-hashes` fast.
//! It holds 8 bytes per key (a 32-bit fingerprint of the key, a kind bit and the
//! entry's 31-bit position in the temp file, in 8-byte units) in a table one quarter
//! empty, so 10 bytes per key and 21 per entry with an id, an e-mail and a "used" flag;
//! the entries themselves (id, lower-cased e-mail, hash) sit in an anonymous `0600`
//! temp file. A million entries take about 21 MB. Lookups take `&self`, so every core can attach
//! hashes to its own users while the input streams through once, in any order, with no
//! user spill.
//!
//! The table is an *ordered* linear-probing table: the keys, sorted, are laid out in
//! order, each at its home slot (its fingerprint scaled to the table) or just after the
//! key before it. A lookup starts at the home slot and reads on while the keys are
//! smaller, so it usually touches one cache line; sorting (not inserting one by one)
//! builds it, and it is spread in place over the sorted keys.
//!
//! While the entries and the keys take at most half the memory budget (a small export)
//! the entries stay in memory and no temp file is written; past that they move to the
//! file. Every candidate is verified against the entry's real key read back,
//! so fingerprint collisions cost a read, never a wrong match: the join is exact.
//! Keys that repeat an earlier entry's key are dropped while building (the first
//! entry wins), as in [`join_passwords`](super::join_passwords).
//!
//! When the entries do not fit the memory budget, [`IndexBuilder::push`] says so and
//! the caller falls back to the Grace hash join of [`join_passwords`](super::join_passwords).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::hash::BuildHasher;

use foldhash::quality::RandomState;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{HashEntry, JoinOptions, JoinStats, email_key, id_key};
use crate::error::{Error, Result};
use crate::record::{PasswordHash, UserRecord};
use crate::secret::Secret;
use zeroize::Zeroizing;

/// Bytes of memory one indexed entry costs: its two keys, the empty slots beside
/// them, and its "used" flag.
pub const INDEX_BYTES_PER_ENTRY: usize = 2 * BYTES_PER_KEY + 1;
/// A key and its share of empty slots: the table has `keys + keys / 4` slots.
const BYTES_PER_KEY: usize = 10;
/// An empty slot. No key equals it: positions stay below [`POSITION`].
const EMPTY: u64 = u64::MAX;
/// Keys per block when the sorted keys are spread into the table (see
/// [`PasswordIndex::spread`]).
const SPREAD_BLOCK: usize = 1024;
/// The kind bit of a key, its top bit: set for e-mail keys, clear for id keys. Sorted,
/// all id keys come before all e-mail keys.
const EMAIL_BIT: u64 = 1 << 63;
/// Where the 32-bit fingerprint sits in a key.
const FP_SHIFT: u32 = 31;
/// The position part of a key: the entry's offset in the temp file / 8 (31 bits).
const POSITION: u64 = (1 << FP_SHIFT) - 1;
/// Entries are stored at multiples of this many bytes.
const ALIGN: usize = 8;
/// Room reserved per expected entry for entries held in memory (a typical one takes
/// about 150 bytes).
const IN_MEMORY_BYTES_PER_ENTRY: usize = 256;
/// Buffer of the temp file writer.
const WRITE_BUF: usize = 256 << 10;
/// Bytes read per lookup: a whole typical entry (about 150 bytes) in one read.
const READ_WINDOW: usize = 256;

/// Hashes keys to fingerprints (foldhash, randomly seeded per run, so colliding keys
/// cannot be prepared in advance; a collision would only cost a read anyway).
#[derive(Clone)]
pub struct KeyHasher {
    state: RandomState,
    /// All ones, except in tests that force collisions.
    mask: u64,
}

impl KeyHasher {
    fn fingerprint(&self, email: bool, key: &str) -> u64 {
        (self.state.hash_one((email, key)) >> 32) & self.mask
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher")
    }
}

/// Hash entries encoded for the index, ready to be appended by [`IndexBuilder::push`].
/// Made with [`EncodedBlock::new`], which needs only the builder's [`KeyHasher`], so
/// blocks can be encoded on every core while one thread pushes them in order.
#[derive(Default)]
pub struct EncodedBlock {
    /// The entries, each `ordinal within the block, id, e-mail, hash` (a `u32` and
    /// three length-prefixed strings), padded to [`ALIGN`].
    bytes: Vec<u8>,
    entries: u32,
    /// `kind bit | fingerprint << 31 | position within the block`.
    keys: Vec<u64>,
}

impl fmt::Debug for EncodedBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes hold password hashes: never print them.
        f.debug_struct("EncodedBlock")
            .field("entries", &self.entries)
            .finish()
    }
}

impl EncodedBlock {
    /// Encodes `entries` (keys normalised: empty keys dropped, e-mail lower-cased).
    pub fn new(hasher: &KeyHasher, entries: impl IntoIterator<Item = HashEntry>) -> Self {
        let mut block = Self::default();
        for e in entries {
            block.push(hasher, e.id.as_deref(), e.email.as_deref(), e.hash.expose());
        }
        block
    }

    /// Encodes one entry without taking ownership of its parts, e.g. borrowed from the
    /// line it was parsed from (keys normalised as in [`EncodedBlock::new`]).
    pub fn push(&mut self, hasher: &KeyHasher, id: Option<&str>, email: Option<&str>, hash: &str) {
        let id = id.filter(|s| !s.is_empty());
        let email = email.and_then(lower_email);
        let position = (self.bytes.len() / ALIGN) as u64;
        if let Some(id) = id {
            self.keys
                .push((hasher.fingerprint(false, id) << FP_SHIFT) | position);
        }
        if let Some(email) = &email {
            self.keys
                .push(EMAIL_BIT | (hasher.fingerprint(true, email) << FP_SHIFT) | position);
        }
        self.bytes.extend_from_slice(&self.entries.to_le_bytes());
        for part in [id.unwrap_or(""), email.as_deref().unwrap_or(""), hash] {
            self.bytes
                .extend_from_slice(&(part.len() as u32).to_le_bytes());
            self.bytes.extend_from_slice(part.as_bytes());
        }
        self.bytes
            .resize(self.bytes.len().next_multiple_of(ALIGN), 0);
        self.entries += 1;
    }

    /// Entries in the block.
    pub fn len(&self) -> usize {
        self.entries as usize
    }

    /// Whether the block holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Builds a [`PasswordIndex`] from encoded blocks, in file order.
pub struct IndexBuilder {
    hasher: KeyHasher,
    writer: BufWriter<File>,
    /// The entries, while they and the keys take at most half the budget; then they
    /// are written to the temp file and this is `None`. Grown by hand, never by
    /// `Vec`'s own reallocation, which would leave a copy of the hashes unzeroed.
    in_memory: Option<Zeroizing<Vec<u8>>>,
    written: u64,
    entries: u64,
    keys: Vec<u64>,
    budget: usize,
}

impl fmt::Debug for IndexBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexBuilder")
            .field("entries", &self.entries)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl IndexBuilder {
    /// A builder whose temp file goes to `options.temp_dir` (or the system temp dir).
    /// `expected_entries` only sizes the tables up front (untouched capacity costs no
    /// memory); it is capped by the budget.
    pub fn new(options: &JoinOptions, expected_entries: usize) -> Result<Self> {
        let file = match &options.temp_dir {
            Some(dir) => tempfile::tempfile_in(dir).map_err(|e| Error::io("create", dir, e))?,
            None => {
                tempfile::tempfile().map_err(|e| Error::io("create", std::env::temp_dir(), e))?
            }
        };
        let budget = options.memory_budget.max(1);
        let cap = expected_entries.min(budget / INDEX_BYTES_PER_ENTRY);
        // Room for the table's empty slots too, so spreading the keys never reallocates.
        let cap = cap * 2 + cap / 2 + 8;
        Ok(Self {
            hasher: KeyHasher {
                state: RandomState::default(),
                mask: u64::from(u32::MAX),
            },
            writer: BufWriter::with_capacity(WRITE_BUF, file),
            // Untouched capacity costs no memory.
            in_memory: Some(Zeroizing::new(Vec::with_capacity(
                (budget / 2).min(expected_entries.saturating_mul(IN_MEMORY_BYTES_PER_ENTRY)),
            ))),
            written: 0,
            entries: 0,
            keys: Vec::with_capacity(cap),
            budget,
        })
    }

    /// The hasher [`EncodedBlock::new`] needs.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Entries pushed so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Appends a block. `Ok(false)` means the index has outgrown the memory budget:
    /// stop and use [`join_passwords`](super::join_passwords) instead.
    pub fn push(&mut self, mut block: EncodedBlock) -> Result<bool> {
        let base = self.written / ALIGN as u64;
        let end = self.written + block.bytes.len() as u64;
        if end / ALIGN as u64 > POSITION
            || self.entries + u64::from(block.entries) > u64::from(u32::MAX)
        {
            return Ok(false);
        }
        // Entries carry their ordinal within the block: make it global.
        let mut at = 0;
        while at < block.bytes.len() {
            let local = read_u32(&block.bytes, at).unwrap_or(0);
            let global = (self.entries + u64::from(local)) as u32;
            block.bytes[at..at + 4].copy_from_slice(&global.to_le_bytes());
            at = entry_end(&block.bytes, at).unwrap_or(block.bytes.len());
        }
        self.keys.extend(block.keys.iter().map(|k| k + base));
        match &mut self.in_memory {
            Some(bytes) => {
                let need = bytes.len() + block.bytes.len();
                if need > bytes.capacity() {
                    // Grown by hand, so that the old buffer is zeroed as it goes.
                    let mut grown =
                        Zeroizing::new(Vec::with_capacity(need.max(2 * bytes.capacity())));
                    grown.extend_from_slice(bytes);
                    *bytes = grown;
                }
                bytes.extend_from_slice(&block.bytes);
            }
            None => self
                .writer
                .write_all(&block.bytes)
                .map_err(|e| temp_error("write", e))?,
        }
        self.written = end;
        self.entries += u64::from(block.entries);
        if self.in_memory.is_some() && self.memory() > self.budget / 2 {
            self.spill()?;
        }
        Ok(self.memory() <= self.budget)
    }

    /// Moves the entries held in memory to the temp file; the next ones go there too.
    fn spill(&mut self) -> Result<()> {
        if let Some(bytes) = self.in_memory.take() {
            self.writer
                .write_all(&bytes)
                .map_err(|e| temp_error("write", e))?;
        }
        Ok(())
    }

    /// Bytes the table, the used flags and the entries held in memory take (empty
    /// slots are charged per key).
    fn memory(&self) -> usize {
        self.keys.len() * BYTES_PER_KEY
            + self.entries as usize
            + self.in_memory.as_ref().map_or(0, |b| b.len())
    }

    /// Sorts the keys, drops repeated keys (the first entry wins), lays them out in
    /// the table and opens the index for lookups.
    pub fn finish(mut self) -> Result<PasswordIndex> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| temp_error("write", e.into_error()))?;
        // Sorting two million keys takes a tenth of a second: on every core.
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut self.keys[..]);
        let mut index = PasswordIndex {
            keys: self.keys,
            tables: [Table::default(); 2],
            file,
            in_memory: self.in_memory,
            file_len: self.written,
            hasher: self.hasher,
            used: (0..self.entries).map(|_| AtomicBool::new(false)).collect(),
            entries: self.entries,
            duplicate_keys: 0,
        };
        index.drop_repeated_keys()?;
        index.spread();
        Ok(index)
    }
}

/// The e-mail match key ([`email_key`]) without a copy when the address is already
/// lower-case ASCII, as most are.
fn lower_email(email: &str) -> Option<Cow<'_, str>> {
    if email.is_empty() {
        None
    } else if email
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Some(Cow::Borrowed(email))
    } else {
        email_key(email).map(Cow::Owned)
    }
}

fn temp_error(action: &'static str, e: std::io::Error) -> Error {
    Error::io(action, "(password-hash index temp file)", e)
}

/// Password-hash entries indexed by id and e-mail. See the [module docs](self).
pub struct PasswordIndex {
    /// Two tables back to back, the id keys' then the e-mail keys' (see [`Table`]):
    /// `kind bit | fingerprint << 31 | position`, one key of one entry each, in
    /// ascending order, each at or after its home slot; [`EMPTY`] between. Apart, the
    /// table that almost every lookup reads (ids) is half the size, and stays in the
    /// cache better.
    keys: Vec<u64>,
    /// Where the id table and the e-mail table are in `keys`.
    tables: [Table; 2],
    file: File,
    /// The entries, when they were few enough to stay in memory (then `file` is empty).
    in_memory: Option<Zeroizing<Vec<u8>>>,
    /// Bytes of entries.
    file_len: u64,
    hasher: KeyHasher,
    /// One flag per entry: used by some user. A byte each, not a bit: marking is a
    /// plain store, which never waits for the cache line the way a read-modify-write
    /// of a shared word does when both cores mark entries at random.
    used: Vec<AtomicBool>,
    entries: u64,
    duplicate_keys: u64,
}

impl fmt::Debug for PasswordIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordIndex")
            .field("entries", &self.entries)
            .field("slots", &self.keys.len())
            .field("in_memory", &self.in_memory.is_some())
            .field("duplicate_keys", &self.duplicate_keys)
            .finish()
    }
}

/// One of the two tables in [`PasswordIndex::keys`].
#[derive(Debug, Clone, Copy, Default)]
struct Table {
    /// Its first slot.
    start: usize,
    /// Its slots.
    len: usize,
    /// Home slots are `start..start + homes` (fingerprints scaled to this).
    homes: usize,
}

/// One entry read back from the temp file.
struct EntryRef<'a> {
    ordinal: u64,
    id: &'a str,
    email: &'a str,
    hash: &'a str,
}

impl EntryRef<'_> {
    fn key(&self, email: bool) -> &str {
        if email { self.email } else { self.id }
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Where the entry starting at `at` ends (padding included), when `bytes` holds its
/// header; `None` when more bytes are needed to tell.
fn entry_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut end = at + 4;
    for _ in 0..3 {
        end += 4 + read_u32(bytes, end)? as usize;
    }
    Some(end.next_multiple_of(ALIGN))
}

fn parse_entry(bytes: &[u8]) -> Option<EntryRef<'_>> {
    let (ordinal, mut rest) = bytes.split_first_chunk::<4>()?;
    let mut next = || -> Option<&str> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (s, tail) = tail.split_at_checked(len)?;
        rest = tail;
        std::str::from_utf8(s).ok()
    };
    Some(EntryRef {
        ordinal: u64::from(u32::from_le_bytes(*ordinal)),
        id: next()?,
        email: next()?,
        hash: next()?,
    })
}

impl PasswordIndex {
    /// Hash entries indexed (including those without a usable key).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Keys dropped because an earlier entry had the same one.
    pub fn duplicate_keys(&self) -> u64 {
        self.duplicate_keys
    }

    /// Bytes the in-memory tables (and entries, when held in memory) take.
    pub fn memory(&self) -> usize {
        self.keys.len() * 8 + self.used.len() + self.in_memory.as_ref().map_or(0, |b| b.len())
    }

    /// Reads the entry at `position` (in [`ALIGN`] units) and calls `f` with it.
    fn with_entry<T>(&self, position: u64, f: impl FnOnce(EntryRef<'_>) -> T) -> Result<T> {
        let start = position * ALIGN as u64;
        if let Some(bytes) = &self.in_memory {
            let rest = usize::try_from(start)
                .ok()
                .and_then(|start| bytes.get(start..))
                .ok_or_else(corrupt)?;
            let len = entry_end(rest, 0).ok_or_else(corrupt)?;
            return rest
                .get(..len)
                .and_then(parse_entry)
                .map(f)
                .ok_or_else(corrupt);
        }
        let available = self.file_len.saturating_sub(start);
        let mut window = [0u8; READ_WINDOW];
        let first = &mut window[..available.min(READ_WINDOW as u64) as usize];
        read_exact_at(&self.file, first, start).map_err(|e| temp_error("read", e))?;
        let len = match entry_end(first, 0) {
            Some(len) => len,
            None if first.len() == READ_WINDOW => self.entry_len(start)?,
            None => return Err(corrupt()),
        };
        if len <= first.len() {
            return parse_entry(&first[..len]).map(f).ok_or_else(corrupt);
        }
        // A long entry (over READ_WINDOW bytes): read it whole.
        if len as u64 > available {
            return Err(corrupt());
        }
        let mut whole = vec![0u8; len];
        read_exact_at(&self.file, &mut whole, start).map_err(|e| temp_error("read", e))?;
        parse_entry(&whole).map(f).ok_or_else(corrupt)
    }

    /// The length of the entry at byte `start`, read field by field (for entries
    /// whose header does not fit one read window).
    fn entry_len(&self, start: u64) -> Result<usize> {
        let mut end = 4usize;
        for _ in 0..3 {
            let mut len = [0u8; 4];
            read_exact_at(&self.file, &mut len, start + end as u64)
                .map_err(|e| temp_error("read", e))?;
            end += 4 + u32::from_le_bytes(len) as usize;
        }
        Ok(end.next_multiple_of(ALIGN))
    }

    /// The positions of the entries whose key of this kind has this fingerprint, in
    /// file order.
    fn candidates(&self, email: bool, fp: u64) -> impl Iterator<Item = u64> + '_ {
        let want = (fp << FP_SHIFT) | if email { EMAIL_BIT } else { 0 };
        let table = self.tables[usize::from(email)];
        let keys = self
            .keys
            .get(table.start..table.start + table.len)
            .unwrap_or(&[]);
        // Smaller keys that were pushed past their own home come first; an empty slot
        // or a bigger key means there is no such key.
        let mut at = home(fp, table.homes);
        while keys.get(at).is_some_and(|k| *k < want) {
            at += 1;
        }
        keys.get(at..)
            .unwrap_or(&[])
            .iter()
            .take_while(move |k| **k != EMPTY && (**k & !POSITION) == want)
            .map(|k| *k & POSITION)
    }

    /// Calls `f` (taken from `f`) with the hash of the first entry whose key of this
    /// kind is `key`, if there is one, and gives the entry's ordinal with what `f`
    /// returned.
    fn find<T>(
        &self,
        email: bool,
        key: &str,
        f: &mut Option<impl FnOnce(&str) -> T>,
    ) -> Result<Option<(u64, T)>> {
        let fp = self.hasher.fingerprint(email, key);
        for position in self.candidates(email, fp) {
            let hit = self.with_entry(position, |e| {
                if e.key(email) != key {
                    return None;
                }
                let f = f.take()?;
                Some((e.ordinal, f(e.hash)))
            })?;
            if hit.is_some() {
                return Ok(hit);
            }
        }
        Ok(None)
    }

    /// Attaches the matching hash to `user`, exactly as
    /// [`join_passwords`](super::join_passwords) does: by `source_id` first, then by
    /// lower-cased e-mail; a user that already has a password keeps it. Counts into
    /// `stats` (users, by_id, by_email, kept_password); [`PasswordIndex::finish_stats`]
    /// completes them.
    pub fn attach(&self, user: &mut UserRecord, stats: &mut JoinStats) -> Result<()> {
        if user.password.is_some() {
            stats.users += 1;
            stats.kept_password += 1;
            return Ok(());
        }
        if let Some(hash) = self.lookup(id_key(user), user.email.as_deref(), stats)? {
            user.password = Some(PasswordHash::bcrypt(hash));
        }
        Ok(())
    }

    /// The hash for a user without a password, given its id and e-mail as they
    /// appear in the user file (the e-mail is lower-cased here; empty keys match
    /// nothing). Counts like [`PasswordIndex::attach`].
    pub fn lookup(
        &self,
        id: Option<&str>,
        email: Option<&str>,
        stats: &mut JoinStats,
    ) -> Result<Option<Secret>> {
        self.lookup_with(id, email, stats, |hash| Secret::new(hash.to_owned()))
    }

    /// [`PasswordIndex::lookup`] without a copy: calls `f` with the hash, borrowed
    /// from the read buffer, and gives what it returned. Counts the same.
    pub fn lookup_with<T>(
        &self,
        id: Option<&str>,
        email: Option<&str>,
        stats: &mut JoinStats,
        f: impl FnOnce(&str) -> T,
    ) -> Result<Option<T>> {
        stats.users += 1;
        let mut f = Some(f);
        let mut hit = None;
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            hit = self.find(false, id, &mut f)?;
            stats.by_id += u64::from(hit.is_some());
        }
        if hit.is_none()
            && let Some(key) = email.and_then(lower_email)
        {
            hit = self.find(true, &key, &mut f)?;
            stats.by_email += u64::from(hit.is_some());
        }
        Ok(hit.map(|(ordinal, value)| {
            if let Some(flag) = self.used.get(ordinal as usize) {
                flag.store(true, Ordering::Relaxed);
            }
            value
        }))
    }

    /// Fills in the counts only the index knows (hashes, unused hashes, repeated keys)
    /// and the unmatched users, once every user went through [`PasswordIndex::attach`].
    pub fn finish_stats(&self, stats: &mut JoinStats) {
        let used: u64 = self
            .used
            .iter()
            .filter(|flag| flag.load(Ordering::Relaxed))
            .count() as u64;
        stats.hashes = self.entries;
        stats.unused_hashes = self.entries - used;
        stats.duplicate_keys = self.duplicate_keys;
        stats.unmatched_users = stats
            .users
            .saturating_sub(stats.kept_password + stats.by_id + stats.by_email);
        stats.partitions = 0;
    }

    /// Removes keys that repeat an earlier entry's key of the same kind. Keys are
    /// sorted, so equal keys share a run of equal fingerprint and kind, ordinals
    /// ascending; within a run the real keys are read back and compared.
    fn drop_repeated_keys(&mut self) -> Result<()> {
        let mut dropped = 0u64;
        let (mut read, mut write) = (0usize, 0usize);
        let mut seen = HashSet::new();
        while read < self.keys.len() {
            let head = self.keys[read] & !POSITION;
            let mut end = read + 1;
            while end < self.keys.len() && self.keys[end] & !POSITION == head {
                end += 1;
            }
            let email = head & EMAIL_BIT != 0;
            seen.clear();
            for k in read..end {
                let key = self.keys[k];
                // A lone fingerprint needs no read: its key cannot repeat.
                let first = end - read == 1
                    || seen.insert(self.with_entry(key & POSITION, |e| e.key(email).to_owned())?);
                if first {
                    self.keys[write] = key;
                    write += 1;
                } else {
                    dropped += 1;
                }
            }
            read = end;
        }
        self.keys.truncate(write);
        self.duplicate_keys = dropped;
        Ok(())
    }

    /// Lays the sorted keys out in their two tables, in place. Within a table, key `i`
    /// goes to slot `s(i) = max(home(i), s(i - 1) + 1)`, empty slots between; the
    /// e-mail table starts where the id table ends. Every key moves up (`s(i) >= i`,
    /// and the id table has at least one slot per id key), so moving the e-mail keys
    /// first, then the id keys, each from the last one down, never overwrites a key
    /// not yet moved.
    fn spread(&mut self) {
        let n = self.keys.len();
        let ids = self.keys.partition_point(|k| k & EMAIL_BIT == 0);
        let homes = |keys: usize| (keys + keys / 4).max(1);
        let mut id = Table {
            start: 0,
            len: 0,
            homes: homes(ids),
        };
        let id_checkpoints = checkpoints(&self.keys[..ids], &mut id);
        let mut email = Table {
            start: id.len,
            len: 0,
            homes: homes(n - ids),
        };
        let email_checkpoints = checkpoints(&self.keys[ids..], &mut email);
        // Each table has at least one slot per key: `len >= n`.
        let len = id.len + email.len;
        self.keys.reserve_exact(len - n);
        self.keys.resize(len, EMPTY);
        spread_into(&mut self.keys, ids..n, email, &email_checkpoints);
        spread_into(&mut self.keys, 0..ids, id, &id_checkpoints);
        self.tables = [id, email];
    }
}

/// The slot of a key in `table` (relative to its start), after the slot of the key
/// before it.
fn slot_of(key: u64, homes: usize, before: Option<usize>) -> usize {
    home((key >> FP_SHIFT) & u64::from(u32::MAX), homes).max(before.map_or(0, |s| s + 1))
}

/// Sets `table.len` for these sorted keys and gives the slot before every
/// [`SPREAD_BLOCK`]-th key (`None` for the first).
fn checkpoints(keys: &[u64], table: &mut Table) -> Vec<Option<usize>> {
    let mut checkpoints = Vec::with_capacity(keys.len().div_ceil(SPREAD_BLOCK));
    let mut last = None;
    for (i, key) in keys.iter().enumerate() {
        if i % SPREAD_BLOCK == 0 {
            checkpoints.push(last);
        }
        last = Some(slot_of(*key, table.homes, last));
    }
    table.len = last.map_or(0, |s| s + 1).max(table.homes);
    checkpoints
}

/// Moves the sorted keys at `from` into `table` (slots recomputed block by block
/// from the checkpoints), filling the table's other slots with [`EMPTY`]. Needs
/// `table.start + s(i) >= from.start + i` for every key `i`.
fn spread_into(
    keys: &mut [u64],
    from: std::ops::Range<usize>,
    table: Table,
    checkpoints: &[Option<usize>],
) {
    let n = from.len();
    let mut slots = [0usize; SPREAD_BLOCK];
    // The first slot already laid out (everything from it on is final).
    let mut next = table.start + table.len;
    for (block, checkpoint) in checkpoints.iter().enumerate().rev() {
        let start = block * SPREAD_BLOCK;
        let end = (start + SPREAD_BLOCK).min(n);
        let mut before = *checkpoint;
        for i in start..end {
            let s = slot_of(keys[from.start + i], table.homes, before);
            slots[i - start] = s;
            before = Some(s);
        }
        for i in (start..end).rev() {
            let (key, s) = (keys[from.start + i], table.start + slots[i - start]);
            keys[s + 1..next].fill(EMPTY);
            keys[s] = key;
            next = s;
        }
    }
    keys[table.start..next].fill(EMPTY);
}

/// The home slot of a fingerprint (below 2^32) in a table of `homes` home slots:
/// order-preserving, so sorted keys have ascending homes.
fn home(fp: u64, homes: usize) -> usize {
    ((fp * homes as u64) >> 32) as usize
}

fn corrupt() -> Error {
    temp_error(
        "read",
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "an entry could not be read back",
        ),
    )
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
