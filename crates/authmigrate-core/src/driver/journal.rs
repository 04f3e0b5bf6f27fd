//! The resume journal: an append-only NDJSON file, one line flushed and synced
//! at a time.
//!
//! ```text
//! {"type":"header","version":2,"fingerprint":"...","backend":"auth0"}
//! {"type":"submitting","chunk":0,"attempt":1,"first_index":0,"count":812}
//! {"type":"submitted","chunk":0,"job":"job_abc","first_index":0,"count":812}
//! {"type":"finished","chunk":0,"outcomes":[{"index":0,"outcome":"inserted","user_id":"auth0|1"},...]}
//! ```
//!
//! - `submitting` is written (and synced) *before* a request is sent: the intent.
//!   `first_index`/`count` name the request's first record and its size; `indices`
//!   lists the request's records when it is only part of the chunk (a quota split,
//!   or the records of an in-doubt request that were not found at the provider);
//!   `doubt` marks a request that resends records an earlier request may have
//!   imported.
//! - `submitted` follows when the provider accepted it, `refused` when it did not
//!   (busy, quota, an error before it was accepted). An intent followed by neither
//!   is *in doubt*: the provider may hold the job.
//! - `part` holds final outcomes of some of a chunk's records (a finished sub-job,
//!   records found at the provider), `finished` all of them in chunk order.
//!
//! A torn last line (the process was killed while writing it) is cut off when the
//! journal is opened again. Version 1 journals (no `submitting`, `refused`, `part`
//! lines) are read as they are; new lines are appended in this form. Finished
//! outcomes are not held in memory: only the byte range of each `finished` line
//! is, and it is read back when replayed. What is held for a chunk that has no
//! `finished` line yet (its parts and its last intent) is dropped when it has one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{JobId, RecordOutcome};
use crate::error::{Error, Result};

/// The journal format version written.
const VERSION: u32 = 2;
/// The oldest version still read.
const OLDEST_VERSION: u32 = 1;

/// One record's outcome as stored in a `finished` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalOutcome {
    pub(crate) index: u64,
    #[serde(flatten)]
    pub(crate) outcome: RecordOutcome,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    Header {
        version: u32,
        fingerprint: String,
        backend: String,
    },
    Submitting {
        chunk: u64,
        attempt: u32,
        first_index: u64,
        count: u64,
        #[serde(default)]
        indices: Option<Vec<u64>>,
        #[serde(default)]
        doubt: bool,
    },
    Submitted {
        chunk: u64,
        job: JobId,
        first_index: u64,
        count: u64,
    },
    Refused {
        chunk: u64,
    },
    Part {
        chunk: u64,
        outcomes: Vec<JournalOutcome>,
    },
    Finished {
        chunk: u64,
        outcomes: Vec<JournalOutcome>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum LineRef<'a> {
    Header {
        version: u32,
        fingerprint: &'a str,
        backend: &'a str,
    },
    Submitting {
        chunk: u64,
        attempt: u32,
        first_index: u64,
        count: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        indices: Option<&'a [u64]>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        doubt: bool,
    },
    Submitted {
        chunk: u64,
        job: &'a JobId,
        first_index: u64,
        count: u64,
    },
    Refused {
        chunk: u64,
    },
    Part {
        chunk: u64,
        outcomes: &'a [JournalOutcome],
    },
    Finished {
        chunk: u64,
        outcomes: &'a [JournalOutcome],
    },
}

/// The last request an earlier run made (or meant to make) for a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// The chunk's request number (0 for a version 1 `submitted` line).
    pub(crate) attempt: u32,
    pub(crate) first_index: u64,
    pub(crate) count: u64,
    /// The request's records, when it is not the whole chunk.
    pub(crate) indices: Option<Vec<u64>>,
    /// Whether it resent records an earlier request may have imported.
    pub(crate) doubt: bool,
    /// The job, once the provider accepted it; `None`: in doubt.
    pub(crate) job: Option<JobId>,
}

/// What an earlier run recorded about a chunk that is not finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChunkLog {
    /// Final outcomes of some of its records (`part` lines).
    pub(crate) done: Vec<JournalOutcome>,
    /// Its last request, unless that one ended (refused, or its outcomes are in `done`).
    pub(crate) last: Option<Attempt>,
    /// Requests made so far.
    pub(crate) attempts: u32,
    /// Whether any request of it was in doubt.
    pub(crate) doubt: bool,
}

/// What an earlier run recorded about a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Nothing: submit it.
    Nothing,
    /// Started: see the log.
    Partial(ChunkLog),
    /// Finished: replay its outcomes.
    Finished,
}

/// An open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// Byte range of each finished line loaded from an earlier run.
    finished: HashMap<u64, (u64, usize)>,
    started: HashMap<u64, ChunkLog>,
    /// The highest chunk an earlier run recorded.
    max_chunk: Option<u64>,
}

fn state_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::State {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl Journal {
    /// Opens (or creates) the journal, refusing one written for another input,
    /// options or backend.
    pub(crate) fn open(path: &Path, fingerprint: &str, backend: &str) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| Error::io("read", path, e))?;

        let mut journal = Self {
            path: path.to_owned(),
            file,
            finished: HashMap::new(),
            started: HashMap::new(),
            max_chunk: None,
        };

        // Complete lines only: a last line without '\n' was torn by a kill.
        let mut good_len = 0usize;
        let mut header_seen = false;
        let mut offset = 0usize;
        let mut line_no = 0u64;
        while let Some(nl) = data[offset..].iter().position(|&b| b == b'\n') {
            let bytes = &data[offset..offset + nl];
            line_no += 1;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                offset += nl + 1;
                good_len = offset;
                continue;
            }
            let line: Line = serde_json::from_slice(bytes).map_err(|e| {
                state_err(path, format!("line {line_no} is not a journal line: {e}"))
            })?;
            match line {
                Line::Header {
                    version,
                    fingerprint: fp,
                    backend: be,
                } => {
                    if header_seen {
                        return Err(state_err(path, format!("line {line_no}: a second header")));
                    }
                    if !(OLDEST_VERSION..=VERSION).contains(&version) {
                        return Err(state_err(
                            path,
                            format!(
                                "journal version {version} is not supported (this authmigrate reads versions {OLDEST_VERSION} to {VERSION}); finish that run with the authmigrate that wrote it, or delete the file to start over"
                            ),
                        ));
                    }
                    if be != backend {
                        return Err(state_err(
                            path,
                            format!("it belongs to a run into `{be}`, not `{backend}`"),
                        ));
                    }
                    if fp != fingerprint {
                        return Err(state_err(
                            path,
                            format!(
                                "it belongs to another input or other options (fingerprint `{fp}`, this run `{fingerprint}`); use another --state file or delete it to start over"
                            ),
                        ));
                    }
                    header_seen = true;
                }
                _ if !header_seen => {
                    return Err(state_err(path, "the first line is not a journal header"));
                }
                Line::Submitting {
                    chunk,
                    attempt,
                    first_index,
                    count,
                    indices,
                    doubt,
                } => {
                    let log = journal.log(chunk);
                    if log.last.as_ref().is_some_and(|a| a.job.is_none()) {
                        // The earlier intent was never answered: in doubt.
                        log.doubt = true;
                    }
                    log.attempts = log.attempts.max(attempt);
                    log.doubt |= doubt;
                    log.last = Some(Attempt {
                        attempt,
                        first_index,
                        count,
                        indices,
                        doubt,
                        job: None,
                    });
                }
                Line::Submitted {
                    chunk,
                    job,
                    first_index,
                    count,
                } => {
                    let log = journal.log(chunk);
                    match &mut log.last {
                        Some(a) if a.job.is_none() => a.job = Some(job),
                        // Version 1: no intent line before it.
                        _ => {
                            log.attempts += 1;
                            log.last = Some(Attempt {
                                attempt: 0,
                                first_index,
                                count,
                                indices: None,
                                doubt: false,
                                job: Some(job),
                            });
                        }
                    }
                }
                Line::Refused { chunk } => {
                    journal.log(chunk).last = None;
                }
                Line::Part { chunk, outcomes } => {
                    let log = journal.log(chunk);
                    log.last = None;
                    log.done.extend(outcomes);
                }
                Line::Finished { chunk, .. } => {
                    journal.note_chunk(chunk);
                    journal.started.remove(&chunk);
                    journal.finished.insert(chunk, (offset as u64, nl));
                }
            }
            offset += nl + 1;
            good_len = offset;
        }
        if good_len < data.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = data.len() - good_len,
                "cutting off a torn last journal line"
            );
            journal
                .file
                .set_len(good_len as u64)
                .map_err(|e| Error::io("truncate", path, e))?;
        }
        if !header_seen {
            if good_len > 0 {
                return Err(state_err(path, "it has no journal header"));
            }
            journal.write(&LineRef::Header {
                version: VERSION,
                fingerprint,
                backend,
            })?;
        }
        Ok(journal)
    }

    fn log(&mut self, chunk: u64) -> &mut ChunkLog {
        self.note_chunk(chunk);
        self.started.entry(chunk).or_default()
    }

    fn note_chunk(&mut self, chunk: u64) {
        self.max_chunk = Some(self.max_chunk.map_or(chunk, |m| m.max(chunk)));
    }

    /// The path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The highest chunk number an earlier run recorded.
    pub(crate) fn max_recorded_chunk(&self) -> Option<u64> {
        self.max_chunk
    }

    /// What an earlier run recorded about `chunk`.
    pub(crate) fn recorded(&self, chunk: u64) -> Recorded {
        if self.finished.contains_key(&chunk) {
            Recorded::Finished
        } else if let Some(log) = self.started.get(&chunk) {
            Recorded::Partial(log.clone())
        } else {
            Recorded::Nothing
        }
    }

    /// Reads back the outcomes of a chunk an earlier run finished.
    pub(crate) fn finished_outcomes(&self, chunk: u64) -> Result<Vec<JournalOutcome>> {
        let Some(&(offset, len)) = self.finished.get(&chunk) else {
            return Err(state_err(
                &self.path,
                format!("chunk {chunk} is not finished"),
            ));
        };
        let mut file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("read", &self.path, e))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)
            .map_err(|e| Error::io("read", &self.path, e))?;
        match serde_json::from_slice(&buf) {
            Ok(Line::Finished { chunk: c, outcomes }) if c == chunk => Ok(outcomes),
            _ => Err(state_err(
                &self.path,
                format!("the finished line of chunk {chunk} changed while running"),
            )),
        }
    }

    /// Records the intent to send a request for `chunk` (before sending it).
    pub(crate) fn submitting(
        &mut self,
        chunk: u64,
        attempt: u32,
        indices: &[u64],
        whole: bool,
        doubt: bool,
    ) -> Result<()> {
        self.write(&LineRef::Submitting {
            chunk,
            attempt,
            first_index: indices.first().copied().unwrap_or(0),
            count: indices.len() as u64,
            indices: (!whole).then_some(indices),
            doubt,
        })
    }

    /// Records that the last request for `chunk` was not accepted.
    pub(crate) fn refused(&mut self, chunk: u64) -> Result<()> {
        self.write(&LineRef::Refused { chunk })
    }

    /// Records final outcomes of some of `chunk`'s records.
    pub(crate) fn part(&mut self, chunk: u64, outcomes: &[JournalOutcome]) -> Result<()> {
        self.write(&LineRef::Part { chunk, outcomes })
    }

    /// Records that `chunk` was submitted as `job`.
    pub(crate) fn submitted(
        &mut self,
        chunk: u64,
        job: &JobId,
        first_index: u64,
        count: u64,
    ) -> Result<()> {
        self.write(&LineRef::Submitted {
            chunk,
            job,
            first_index,
            count,
        })
    }

    /// Records the final outcomes of `chunk`.
    pub(crate) fn finished(&mut self, chunk: u64, outcomes: &[JournalOutcome]) -> Result<()> {
        self.write(&LineRef::Finished { chunk, outcomes })
    }

    fn write(&mut self, line: &LineRef<'_>) -> Result<()> {
        let mut bytes = serde_json::to_vec(line)
            .map_err(|e| Error::io("write", &self.path, std::io::Error::other(e)))?;
        bytes.push(b'\n');
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io("write", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Outcome;

    #[test]
    fn round_trip_torn_line_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.ndjson");
        {
            let mut j = Journal::open(&path, "fp1", "memory").unwrap();
            assert_eq!(j.recorded(0), Recorded::Nothing);
            j.submitted(0, &JobId("job_a".into()), 0, 2).unwrap();
            j.finished(
                0,
                &[
                    JournalOutcome {
                        index: 0,
                        outcome: RecordOutcome::success(Outcome::Inserted, Some("mem|1".into())),
                    },
                    JournalOutcome {
                        index: 1,
                        outcome: RecordOutcome::failed(crate::backend::RecordFailure::new(
                            "X", "y",
                        )),
                    },
                ],
            )
            .unwrap();
            j.submitted(1, &JobId("job_b".into()), 2, 3).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"type":"header","version":2,"fingerprint":"fp1","backend":"memory"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"type":"submitted","chunk":0,"job":"job_a","first_index":0,"count":2}"#
        );
        assert_eq!(
            lines[2],
            r#"{"type":"finished","chunk":0,"outcomes":[{"index":0,"outcome":"inserted","user_id":"mem|1"},{"index":1,"outcome":"failed","code":"X","message":"y"}]}"#
        );
        // A torn last line is cut off.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"type":"finished","chunk":1,"outc"#)
            .unwrap();
        let j = Journal::open(&path, "fp1", "memory").unwrap();
        assert_eq!(j.recorded(0), Recorded::Finished);
        assert_eq!(
            j.recorded(1),
            Recorded::Partial(ChunkLog {
                done: vec![],
                last: Some(Attempt {
                    attempt: 0,
                    first_index: 2,
                    count: 3,
                    indices: None,
                    doubt: false,
                    job: Some(JobId("job_b".into())),
                }),
                attempts: 1,
                doubt: false,
            })
        );
        assert_eq!(j.max_recorded_chunk(), Some(1));
        let out = j.finished_outcomes(0).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].outcome.code.as_deref(), Some("X"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        let err = Journal::open(&path, "fp2", "memory").unwrap_err();
        assert!(
            matches!(&err, Error::State { reason, .. } if reason.contains("fingerprint `fp1`")),
            "{err}"
        );
        let err = Journal::open(&path, "fp1", "auth0").unwrap_err();
        assert!(
            matches!(&err, Error::State { reason, .. } if reason.contains("`memory`")),
            "{err}"
        );
    }

    #[test]
    fn intents_parts_and_refusals_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.ndjson");
        {
            let mut j = Journal::open(&path, "fp", "memory").unwrap();
            // Chunk 0: an intent never answered (killed after sending).
            j.submitting(0, 1, &[0, 1, 2], true, false).unwrap();
            // Chunk 1: refused once, then half of it accepted and finished, then an
            // intent for the rest.
            j.submitting(1, 1, &[3, 4, 5, 6], true, false).unwrap();
            j.refused(1).unwrap();
            j.submitting(1, 2, &[3, 4], false, false).unwrap();
            j.submitted(1, &JobId("job_1".into()), 3, 2).unwrap();
            let done = |i| JournalOutcome {
                index: i,
                outcome: RecordOutcome::success(Outcome::Inserted, None),
            };
            j.part(1, &[done(3), done(4)]).unwrap();
            j.submitting(1, 3, &[5, 6], false, false).unwrap();
            j.submitted(1, &JobId("job_2".into()), 5, 2).unwrap();
            // Chunk 2: an intent in doubt, then a resend of what was not found.
            j.submitting(2, 1, &[7, 8], true, false).unwrap();
            j.submitting(2, 2, &[8], false, true).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(
            r#"{"type":"submitting","chunk":1,"attempt":2,"first_index":3,"count":2,"indices":[3,4]}"#
        ));
        assert!(text.contains(
            r#"{"type":"submitting","chunk":2,"attempt":2,"first_index":8,"count":1,"indices":[8],"doubt":true}"#
        ));
        let j = Journal::open(&path, "fp", "memory").unwrap();
        let Recorded::Partial(log0) = j.recorded(0) else {
            panic!()
        };
        assert_eq!(log0.last.as_ref().unwrap().job, None);
        assert_eq!(log0.last.as_ref().unwrap().indices, None);
        assert!(!log0.doubt);
        let Recorded::Partial(log1) = j.recorded(1) else {
            panic!()
        };
        assert_eq!(
            log1.done.iter().map(|o| o.index).collect::<Vec<_>>(),
            [3, 4]
        );
        let last = log1.last.unwrap();
        assert_eq!(last.job, Some(JobId("job_2".into())));
        assert_eq!(last.indices, Some(vec![5, 6]));
        assert_eq!(log1.attempts, 3);
        let Recorded::Partial(log2) = j.recorded(2) else {
            panic!()
        };
        assert!(log2.doubt, "the first intent was superseded unanswered");
        assert_eq!(log2.last.unwrap().indices, Some(vec![8]));

        // A version this build does not know is refused clearly.
        let other = dir.path().join("v9.ndjson");
        std::fs::write(
            &other,
            "{\"type\":\"header\",\"version\":9,\"fingerprint\":\"fp\",\"backend\":\"memory\"}\n",
        )
        .unwrap();
        let err = Journal::open(&other, "fp", "memory").unwrap_err();
        assert!(
            err.to_string().contains("version 9 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn version_1_journals_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.ndjson");
        std::fs::write(
            &path,
            concat!(
                r#"{"type":"header","version":1,"fingerprint":"fp","backend":"memory"}"#,
                "\n",
                r#"{"type":"submitted","chunk":0,"job":"job_a","first_index":0,"count":2}"#,
                "\n"
            ),
        )
        .unwrap();
        let j = Journal::open(&path, "fp", "memory").unwrap();
        let Recorded::Partial(log) = j.recorded(0) else {
            panic!()
        };
        assert_eq!(log.last.unwrap().job, Some(JobId("job_a".into())));
    }
}
