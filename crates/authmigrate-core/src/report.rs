//! The `--report` writer.
//!
//! The report is one JSON document, summary first, records sorted by input index:
//!
//! ```text
//! {"summary":{"total":2,"inserted":1,"updated":0,"skipped":0,"failed":1},"records":[
//! {"index":0,"email":"a@x.io","outcome":"inserted","user_id":"auth0|1","code":null,"message":null,"warnings":[]},
//! {"index":1,"email":null,"outcome":"failed","user_id":null,"code":"MISSING_EMAIL","message":"...","warnings":[]}
//! ]}
//! ```
//!
//! Every record object has all seven keys (`null` or `[]` when empty).
//!
//! Outcomes may arrive in any order. They are held in memory up to a run size
//! ([`ReportWriter::with_run_capacity`], 100 000 records by default); a full run is
//! sorted and spilled to a temporary NDJSON file next to the report, and
//! [`ReportWriter::finish`] merges the runs (an external merge sort), so memory
//! stays bounded for any number of records. The report is written to a temporary
//! file in the same directory and renamed into place, so a reader never sees a
//! half-written report. Temporary files are removed, also on error.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::backend::{Outcome, RecordOutcome};
use crate::driver::{Event, Observer, Summary};
use crate::error::{Error, Result};

/// Records held in memory before a sorted run is spilled, by default.
pub const DEFAULT_RUN_CAPACITY: usize = 100_000;

/// One record of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// 0-based input position.
    pub index: u64,
    /// The record's e-mail, if known.
    pub email: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// The user's id at the target provider, if known.
    pub user_id: Option<String>,
    /// Failure code.
    pub code: Option<String>,
    /// Failure message.
    pub message: Option<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

impl ReportRecord {
    /// A report record from an outcome.
    pub fn new(index: u64, email: Option<&str>, outcome: &RecordOutcome) -> Self {
        Self {
            index,
            email: email.map(str::to_owned),
            outcome: outcome.outcome,
            user_id: outcome.user_id.clone(),
            code: outcome.code.clone(),
            message: outcome.message.clone(),
            warnings: outcome.warnings.clone(),
        }
    }
}

/// The report's summary object (exactly the contract's five counts).
#[derive(Serialize)]
struct ReportSummary {
    total: u64,
    inserted: u64,
    updated: u64,
    skipped: u64,
    failed: u64,
}

/// A file removed when dropped.
#[derive(Debug)]
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a new hidden temporary file next to `target`.
fn temp_next_to(target: &Path, what: &str) -> Result<(TempPath, File)> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    for _ in 0..100 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{what}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((TempPath(path), f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", path, e)),
        }
    }
    Err(Error::io(
        "create",
        dir,
        std::io::Error::other("no free temporary file name"),
    ))
}

/// Writes a `--report` file. See the [module docs](self).
#[derive(Debug)]
pub struct ReportWriter {
    path: PathBuf,
    buffer: Vec<ReportRecord>,
    run_capacity: usize,
    runs: Vec<TempPath>,
}

impl ReportWriter {
    /// Prepares a report at `path`, checking that its directory is writable.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        // Fail now rather than after the import.
        drop(temp_next_to(&path, "check")?);
        Ok(Self {
            path,
            buffer: Vec::new(),
            run_capacity: DEFAULT_RUN_CAPACITY,
            runs: Vec::new(),
        })
    }

    /// Holds at most `records` in memory before spilling a sorted run (at least 1).
    pub fn with_run_capacity(mut self, records: usize) -> Self {
        self.run_capacity = records.max(1);
        self
    }

    /// The report's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds one record's outcome (any order).
    pub fn record(
        &mut self,
        index: u64,
        email: Option<&str>,
        outcome: &RecordOutcome,
    ) -> Result<()> {
        self.buffer.push(ReportRecord::new(index, email, outcome));
        if self.buffer.len() >= self.run_capacity {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.buffer.sort_by_key(|r| r.index);
        let (temp, file) = temp_next_to(&self.path, "run")?;
        let mut w = BufWriter::new(file);
        for r in self.buffer.drain(..) {
            serde_json::to_writer(&mut w, &r)
                .map_err(std::io::Error::other)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| Error::io("write", &temp.0, e))?;
        }
        w.flush().map_err(|e| Error::io("write", &temp.0, e))?;
        self.runs.push(temp);
        Ok(())
    }

    /// Writes the report: the summary, then every record sorted by index.
    pub fn finish(mut self, summary: &Summary) -> Result<()> {
        self.buffer.sort_by_key(|r| r.index);
        let (temp, file) = temp_next_to(&self.path, "tmp")?;
        let io = |e| Error::io("write", &temp.0, e);
        let mut w = BufWriter::new(file);
        let head = ReportSummary {
            total: summary.total,
            inserted: summary.inserted,
            updated: summary.updated,
            skipped: summary.skipped,
            failed: summary.failed,
        };
        w.write_all(b"{\"summary\":").map_err(io)?;
        serde_json::to_writer(&mut w, &head).map_err(|e| io(std::io::Error::other(e)))?;
        w.write_all(b",\"records\":[").map_err(io)?;

        let mut first = true;
        let mut emit = |w: &mut BufWriter<File>, line: &[u8]| -> std::io::Result<()> {
            crate::driver::test_hook("report");
            w.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            w.write_all(line)
        };

        // Sources: each spilled run, plus the in-memory buffer.
        let mut readers = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            let f = File::open(&run.0).map_err(|e| Error::io("read", &run.0, e))?;
            readers.push((BufReader::new(f), &run.0));
        }
        let mut heads: Vec<Option<(u64, Vec<u8>)>> = Vec::with_capacity(readers.len());
        for (r, p) in &mut readers {
            heads.push(next_line(r, p)?);
        }
        let mut heap = BinaryHeap::new();
        for (i, h) in heads.iter().enumerate() {
            if let Some((idx, _)) = h {
                heap.push(Reverse((*idx, i)));
            }
        }
        let mut memory = std::mem::take(&mut self.buffer).into_iter().peekable();
        loop {
            let from_runs = heap.peek().map(|Reverse((idx, _))| *idx);
            let from_memory = memory.peek().map(|r| r.index);
            match (from_runs, from_memory) {
                (None, None) => break,
                (Some(a), Some(b)) if b < a => {}
                (Some(_), _) => {
                    let Some(Reverse((_, i))) = heap.pop() else {
                        break;
                    };
                    if let Some((_, line)) = heads[i].take() {
                        emit(&mut w, &line).map_err(io)?;
                    }
                    let (r, p) = &mut readers[i];
                    heads[i] = next_line(r, p)?;
                    if let Some((idx, _)) = &heads[i] {
                        heap.push(Reverse((*idx, i)));
                    }
                    continue;
                }
                (None, Some(_)) => {}
            }
            if let Some(r) = memory.next() {
                let line = serde_json::to_vec(&r).map_err(|e| io(std::io::Error::other(e)))?;
                emit(&mut w, &line).map_err(io)?;
            }
        }
        w.write_all(if first { b"]}\n" } else { b"\n]}\n" })
            .map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&temp.0, &self.path).map_err(|e| Error::io("write", &self.path, e))?;
        // Renamed: nothing left to remove.
        std::mem::forget(temp);
        Ok(())
    }
}

/// The next line of a run and its record index.
fn next_line(r: &mut BufReader<File>, path: &Path) -> Result<Option<(u64, Vec<u8>)>> {
    #[derive(Deserialize)]
    struct IndexOnly {
        index: u64,
    }
    let mut line = Vec::new();
    let n = r
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::io("read", path, e))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    let idx: IndexOnly = serde_json::from_slice(&line)
        .map_err(|e| Error::io("read", path, std::io::Error::other(e)))?;
    Ok(Some((idx.index, line)))
}

/// An [`Observer`] that feeds [`Event::Record`]s to a [`ReportWriter`]. The first
/// write error is kept and returned by [`ReportObserver::finish`].
#[derive(Debug)]
pub struct ReportObserver {
    state: Mutex<(Option<ReportWriter>, Option<Error>)>,
}

impl ReportObserver {
    /// Wraps a writer.
    pub fn new(writer: ReportWriter) -> Self {
        Self {
            state: Mutex::new((Some(writer), None)),
        }
    }

    /// Writes the report, or returns the first error met while recording.
    pub fn finish(&self, summary: &Summary) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = state.1.take() {
            return Err(e);
        }
        match state.0.take() {
            Some(w) => w.finish(summary),
            None => Err(Error::Config("the report was already written".into())),
        }
    }
}

impl Observer for ReportObserver {
    fn event(&self, event: &Event<'_>) {
        if let Event::Record {
            index,
            email,
            outcome,
            ..
        } = *event
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (writer, error) = &mut *state;
            if error.is_none()
                && let Some(w) = writer
                && let Err(e) = w.record(index, email, outcome)
            {
                *error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::RecordFailure;
    use serde_json::{Value, json};

    fn outcome(i: u64) -> RecordOutcome {
        match i % 3 {
            0 => RecordOutcome::success(Outcome::Inserted, Some(format!("auth0|{i}"))),
            1 => RecordOutcome::failed(RecordFailure::new(
                "DUPLICATED_USER",
                format!("user {i} exists"),
            ))
            .with_warnings(["field `x` dropped".to_owned()]),
            _ => RecordOutcome::success(Outcome::Skipped, None),
        }
    }

    fn expected(i: u64) -> Value {
        let email = if i % 5 == 0 {
            Value::Null
        } else {
            json!(format!("u{i}@x.io"))
        };
        match i % 3 {
            0 => {
                json!({"index":i,"email":email,"outcome":"inserted","user_id":format!("auth0|{i}"),
                        "code":null,"message":null,"warnings":[]})
            }
            1 => {
                json!({"index":i,"email":email,"outcome":"failed","user_id":null,"code":"DUPLICATED_USER",
                        "message":format!("user {i} exists"),"warnings":["field `x` dropped"]})
            }
            _ => json!({"index":i,"email":email,"outcome":"skipped","user_id":null,"code":null,
                        "message":null,"warnings":[]}),
        }
    }

    fn write(capacity: usize, order: &[u64]) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        let mut w = ReportWriter::create(&path)
            .unwrap()
            .with_run_capacity(capacity);
        let mut summary = Summary::default();
        for &i in order {
            let email = (i % 5 != 0).then(|| format!("u{i}@x.io"));
            let o = outcome(i);
            summary.add(o.outcome);
            w.record(i, email.as_deref(), &o).unwrap();
        }
        w.finish(&summary).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // Only the report is left in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
        (dir, text)
    }

    fn shuffled(n: u64) -> Vec<u64> {
        // A deterministic permutation (n is not a multiple of 7919).
        (0..n).map(|i| (i * 7919) % n).collect()
    }

    #[test]
    fn sorted_exact_shape_summary_first() {
        for capacity in [1, 3, 7, 1000] {
            let (_d, text) = write(capacity, &shuffled(50));
            assert!(text.starts_with(r#"{"summary":{"total":50,"inserted":17,"updated":0,"skipped":16,"failed":17},"records":["#), "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let expected_records: Vec<Value> = (0..50).map(expected).collect();
            assert_eq!(
                v,
                json!({"summary":{"total":50,"inserted":17,"updated":0,"skipped":16,"failed":17},
                       "records": expected_records})
            );
            // Key order inside a record is the contract's.
            assert!(text.contains(r#"{"index":1,"email":"u1@x.io","outcome":"failed","user_id":null,"code":"DUPLICATED_USER","message":"user 1 exists","warnings":["field `x` dropped"]}"#));
        }
    }

    #[test]
    fn empty_report_is_valid_json() {
        let (_d, text) = write(10, &[]);
        assert_eq!(
            text,
            "{\"summary\":{\"total\":0,\"inserted\":0,\"updated\":0,\"skipped\":0,\"failed\":0},\"records\":[]}\n"
        );
    }

    #[test]
    fn create_fails_on_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = ReportWriter::create(dir.path().join("nope/report.json")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn report_observer_writes_what_the_driver_reports() {
        use crate::driver::{DriverOptions, InputRecord, run_import};
        use crate::memory::MemoryBackend;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let obs = Arc::new(ReportObserver::new(
            ReportWriter::create(&path).unwrap().with_run_capacity(4),
        ));
        let input = (0..20u64).map(|i| InputRecord {
            index: i,
            record: Ok(crate::UserRecord {
                email: (i != 3).then(|| format!("u{i}@x.io")),
                username: Some(format!("u{i}")),
                ..Default::default()
            }),
        });
        let backend = Arc::new(
            MemoryBackend::new()
                .with_max_array_bytes(200)
                .with_users(["u5@x.io"]),
        );
        let options = DriverOptions {
            poll_initial: std::time::Duration::from_millis(1),
            ..Default::default()
        };
        let summary = run_import(backend, input, options, obs.clone())
            .await
            .unwrap();
        obs.finish(&summary).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            v["summary"],
            json!({"total":20,"inserted":18,"updated":0,"skipped":0,"failed":2})
        );
        let recs = v["records"].as_array().unwrap();
        let idx: Vec<u64> = recs.iter().map(|r| r["index"].as_u64().unwrap()).collect();
        assert_eq!(idx, (0..20).collect::<Vec<_>>());
        assert_eq!(recs[3]["code"], "MISSING_EMAIL");
        assert_eq!(recs[3]["email"], Value::Null);
        assert_eq!(recs[5]["code"], "DUPLICATED_USER");
        assert_eq!(recs[5]["email"], "u5@x.io");
        assert_eq!(recs[6]["outcome"], "inserted");
    }
}
