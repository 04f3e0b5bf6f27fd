//! The resume journal: an append-only NDJSON file, one line flushed and synced
//! at a time.
//!
//! ```text
//! {"type":"header","version":1,"fingerprint":"...","backend":"auth0"}
//! {"type":"submitted","chunk":0,"job":"job_abc","first_index":0,"count":812}
//! {"type":"finished","chunk":0,"outcomes":[{"index":0,"outcome":"inserted","user_id":"auth0|1"},...]}
//! ```
//!
//! A torn last line (the process was killed while writing it) is cut off when the
//! journal is opened again. Finished outcomes are not held in memory: only the
//! byte range of each `finished` line is, and it is read back when replayed.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{JobId, RecordOutcome};
use crate::error::{Error, Result};

/// The journal format version.
const VERSION: u32 = 1;

/// One record's outcome as stored in a `finished` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    Submitted {
        chunk: u64,
        job: JobId,
        first_index: u64,
        count: u64,
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
    Submitted {
        chunk: u64,
        job: &'a JobId,
        first_index: u64,
        count: u64,
    },
    Finished {
        chunk: u64,
        outcomes: &'a [JournalOutcome],
    },
}

/// A job recorded as submitted by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubmittedEntry {
    pub(crate) job: JobId,
    pub(crate) first_index: u64,
    pub(crate) count: u64,
}

/// What an earlier run recorded about a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Nothing: submit it.
    Nothing,
    /// Submitted, outcome unknown: poll this job again.
    Submitted(SubmittedEntry),
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
    submitted: HashMap<u64, SubmittedEntry>,
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
            submitted: HashMap::new(),
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
                    if version != VERSION {
                        return Err(state_err(
                            path,
                            format!(
                                "journal version {version} is not supported (expected {VERSION})"
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
                Line::Submitted {
                    chunk,
                    job,
                    first_index,
                    count,
                } => {
                    journal.note_chunk(chunk);
                    journal.submitted.insert(
                        chunk,
                        SubmittedEntry {
                            job,
                            first_index,
                            count,
                        },
                    );
                }
                Line::Finished { chunk, .. } => {
                    journal.note_chunk(chunk);
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
        } else if let Some(s) = self.submitted.get(&chunk) {
            Recorded::Submitted(s.clone())
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
            r#"{"type":"header","version":1,"fingerprint":"fp1","backend":"memory"}"#
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
            Recorded::Submitted(SubmittedEntry {
                job: JobId("job_b".into()),
                first_index: 2,
                count: 3
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
}
