//! The reader thread: reads, checks for duplicates, encodes and chunks the input.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use super::dups::DupIndex;
use super::{DUPLICATE_IN_INPUT, InputRecord, RECORD_TOO_LARGE};
use crate::backend::{Batch, BatchRecord, ImportBackend, Limits, RecordFailure};

/// Items in flight between the reader thread and the driver (a chunk is up to
/// one upload in size, so this bounds memory to a few uploads).
pub(super) const CHANNEL_CAPACITY: usize = 8;

/// What the reader thread sends.
pub(super) enum Item {
    /// A record that cannot be submitted.
    Failed {
        index: u64,
        label: Option<String>,
        email: Option<String>,
        failure: RecordFailure,
    },
    /// A record read after the run stopped (not encoded).
    Unread {
        index: u64,
        label: Option<String>,
        email: Option<String>,
    },
    /// A chunk ready to submit.
    Chunk {
        batch: Batch,
        emails: Vec<Option<String>>,
    },
}

/// Reads, encodes and chunks the input (blocking thread).
pub(super) fn read_input(
    input: impl Iterator<Item = InputRecord>,
    backend: &dyn ImportBackend,
    limits: &Limits,
    tx: &mpsc::Sender<Item>,
    abort: &AtomicBool,
) {
    let max_bytes = limits.max_array_bytes;
    let max_records = limits.max_records_per_job.unwrap_or(usize::MAX).max(1);
    let mut next_chunk = 0u64;
    let mut records: Vec<BatchRecord> = Vec::new();
    let mut emails: Vec<Option<String>> = Vec::new();
    let mut array_len = 2usize;
    let mut dups = DupIndex::default();

    let mut flush = |records: &mut Vec<BatchRecord>, emails: &mut Vec<Option<String>>| -> bool {
        if records.is_empty() {
            return true;
        }
        let batch = Batch {
            chunk: next_chunk,
            records: std::mem::take(records),
        };
        next_chunk += 1;
        tx.blocking_send(Item::Chunk {
            batch,
            emails: std::mem::take(emails),
        })
        .is_ok()
    };

    for InputRecord { index, record } in input {
        let item = match record {
            Err(failure) => Item::Failed {
                index,
                label: None,
                email: None,
                failure,
            },
            Ok(record) if abort.load(Ordering::Relaxed) => {
                if !flush(&mut records, &mut emails) {
                    return;
                }
                Item::Unread {
                    index,
                    label: record.label().map(str::to_owned),
                    email: record.email.clone(),
                }
            }
            Ok(record) => {
                let label = record.label().map(str::to_owned);
                let email = record.email.clone();
                if let Some((kind, first)) = dups.check(index, &record) {
                    let first = first
                        .map_or_else(|| "an earlier record".to_owned(), |i| format!("record {i}"));
                    let failure = RecordFailure::new(
                        DUPLICATE_IN_INPUT,
                        format!(
                            "the same {} as {first} (its first occurrence in the input): a user may be given only once",
                            kind.as_str()
                        ),
                    );
                    if tx
                        .blocking_send(Item::Failed {
                            index,
                            label,
                            email,
                            failure,
                        })
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                match backend.encode(&record) {
                    Err(failure) => Item::Failed {
                        index,
                        label,
                        email,
                        failure,
                    },
                    Ok(enc) if enc.json.len() + 2 > max_bytes => Item::Failed {
                        index,
                        label,
                        email,
                        failure: RecordFailure::new(
                            RECORD_TOO_LARGE,
                            format!(
                                "the encoded record is {} bytes; one request's records array may hold at most {max_bytes} bytes",
                                enc.json.len()
                            ),
                        ),
                    },
                    Ok(enc) => {
                        let len = enc.json.len();
                        if !records.is_empty()
                            && (array_len + 1 + len > max_bytes || records.len() >= max_records)
                        {
                            if !flush(&mut records, &mut emails) {
                                return;
                            }
                            array_len = 2;
                        }
                        array_len += len + usize::from(!records.is_empty());
                        records.push(BatchRecord {
                            index,
                            label,
                            json: enc.json,
                            warnings: enc.warnings,
                        });
                        emails.push(email);
                        continue;
                    }
                }
            }
        };
        if tx.blocking_send(item).is_err() {
            return;
        }
    }
    flush(&mut records, &mut emails);
}
