//! The streaming record reader.

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::scan::{Header, ScanError, Scanner, show_byte};
use super::{InputFormat, detect_reader, open_input};
use crate::error::{Error, Location, Result};

/// The default cap on one record's size. A bigger record becomes an unreadable
/// ([`RawRecord::value`] `Err`) record; the reader skips it without holding it.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Buffers that grew past this are shrunk back after the record that needed them.
const KEEP_CAPACITY: usize = 64 * 1024;

/// One input record, read but not interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// 0-based position among all records of the input (blank NDJSON lines don't count).
    pub index: u64,
    /// 1-based line: of the record for NDJSON, of the record's first byte for arrays.
    pub line: Option<u64>,
    /// The JSON object, or why this one record is unreadable (never echoes its content).
    pub value: Result<Map<String, Value>, String>,
}

impl RawRecord {
    /// This record's location in `file`, for messages: `` `users.json`, line 3, record 2 ``.
    pub fn location(&self, file: &Path) -> Location {
        Location {
            file: Some(file.to_path_buf()),
            line: self.line,
            index: Some(self.index),
            field: None,
        }
    }
}

/// A cloneable view of a [`RecordReader`]'s fatal error, kept by the caller when the
/// reader itself is moved away (e.g. into the import driver as an iterator).
#[derive(Debug, Clone, Default)]
pub struct ReaderStatus(Arc<Mutex<Option<Error>>>);

impl ReaderStatus {
    /// Takes the fatal error that ended the iteration early, if any. Iteration that ends
    /// with `None` here read the whole input.
    pub fn take_error(&self) -> Option<Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether a fatal error is waiting to be taken.
    pub fn has_error(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Records a fatal error that ended reading.
    pub fn set(&self, error: Error) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing read yet.
    Start,
    /// Inside the array, right after `[` or after an element that ended at `]`.
    ElementOrEnd,
    /// Inside the array, right after a `,`.
    Element,
    /// Reading NDJSON lines.
    Lines,
    /// Finished (or failed).
    Done,
}

/// Streams [`RawRecord`]s from NDJSON, a JSON array (Auth0 bulk import) or the `records`
/// array of an Authgear import body, in O(largest record) memory.
///
/// - NDJSON: one object a line; blank lines are skipped and not counted; a line that is
///   not a JSON object is an `Err` record and reading goes on with the next line.
/// - Arrays: each element is cut by a framing scanner and parsed on its own; an element
///   that is not an object (or not valid JSON) is an `Err` record. A break in the array
///   framing itself (unterminated string, end of input inside the array, a trailing
///   comma, content after the array) is fatal.
/// - Authgear body: `identifier` and `upsert` are kept when they appear BEFORE `records`
///   ([`authgear_identifier`](Self::authgear_identifier),
///   [`authgear_upsert`](Self::authgear_upsert)); members after the `records` array are
///   not read at all.
///
/// Fatal errors are [`Error::Input`] (naming the file and the record index reached) or
/// [`Error::Io`]. [`try_next`](Self::try_next) returns them; the [`Iterator`] impl stops
/// on them and keeps them for [`status`](Self::status) /
/// [`take_error`](Self::take_error): a caller iterating MUST check it afterwards, or a
/// truncated file looks like a short one.
pub struct RecordReader {
    scanner: Scanner<Box<dyn BufRead + Send>>,
    format: InputFormat,
    name: PathBuf,
    phase: Phase,
    next_index: u64,
    buf: Vec<u8>,
    max_record_bytes: usize,
    identifier: Option<String>,
    upsert: Option<bool>,
    status: ReaderStatus,
}

impl fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl RecordReader {
    /// Opens `path` (`-` = stdin, gzip auto-detected) as `format`.
    pub fn open(path: &Path, format: InputFormat) -> Result<Self> {
        Ok(Self::from_reader(open_input(path)?, format, path))
    }

    /// Opens `path`, detects its format from a bounded prefix (see
    /// [`detect_reader`](super::detect_reader)) and reads it; works on stdin too.
    pub fn open_auto(path: &Path) -> Result<Self> {
        let (format, reader) = detect_reader(open_input(path)?, path)?;
        Ok(Self::from_reader(reader, format, path))
    }

    /// Reads already opened input; `display_name` names it in errors.
    pub fn from_reader(
        reader: Box<dyn BufRead + Send>,
        format: InputFormat,
        display_name: impl Into<PathBuf>,
    ) -> Self {
        Self {
            scanner: Scanner::new(reader),
            format,
            name: display_name.into(),
            phase: Phase::Start,
            next_index: 0,
            buf: Vec::new(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            identifier: None,
            upsert: None,
            status: ReaderStatus::default(),
        }
    }

    /// Sets the size above which a record is reported unreadable instead of held
    /// (default [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max.max(1);
        self
    }

    /// The format being read.
    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// The name used in messages (the path, or `-`).
    pub fn display_name(&self) -> &Path {
        &self.name
    }

    /// Authgear body: the top-level `identifier`, if it appeared before `records`
    /// (available once the first record has been read).
    pub fn authgear_identifier(&self) -> Option<&str> {
        self.identifier.as_deref()
    }

    /// Authgear body: the top-level `upsert`, if it appeared before `records`
    /// (available once the first record has been read).
    pub fn authgear_upsert(&self) -> Option<bool> {
        self.upsert
    }

    /// A handle on the fatal error that stopped iteration, usable after the reader has
    /// been moved away.
    pub fn status(&self) -> ReaderStatus {
        self.status.clone()
    }

    /// Takes the fatal error that stopped iteration, if any.
    pub fn take_error(&mut self) -> Option<Error> {
        self.status.take_error()
    }

    /// The next record, `Ok(None)` at the end of input, or a fatal error (after which
    /// the reader yields nothing more).
    pub fn try_next(&mut self) -> Result<Option<RawRecord>> {
        let result = self.step();
        if result.is_err() {
            self.phase = Phase::Done;
        }
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        result
    }

    fn step(&mut self) -> Result<Option<RawRecord>> {
        if self.phase == Phase::Start {
            self.start()?;
        }
        match self.phase {
            Phase::Done | Phase::Start => Ok(None),
            Phase::Lines => self.next_line(),
            Phase::ElementOrEnd | Phase::Element => self.next_element(),
        }
    }

    fn start(&mut self) -> Result<()> {
        self.scanner.skip_bom().map_err(|e| self.io_error(e))?;
        if self.format.is_ndjson() {
            self.phase = Phase::Lines;
            return Ok(());
        }
        let first = self.peek()?;
        match (self.format, first) {
            (_, None) => Err(self.fatal(format!(
                "the file is empty: expected {}",
                if self.format == InputFormat::Auth0Bulk {
                    "a JSON array"
                } else {
                    "a JSON object with a `records` array"
                }
            ))),
            (InputFormat::Auth0Bulk, Some(b'[')) => {
                self.scanner.bump();
                self.phase = Phase::ElementOrEnd;
                Ok(())
            }
            (InputFormat::Auth0Bulk, Some(b)) => Err(self.fatal(format!(
                "expected a JSON array starting with `[`, found {}",
                show_byte(b)
            ))),
            (_, Some(b'{')) => {
                self.scanner.bump();
                self.read_body_header()
            }
            (_, Some(b)) => Err(self.fatal(format!(
                "expected a JSON object with a `records` array, found {}",
                show_byte(b)
            ))),
        }
    }

    /// Authgear body: the members before `records`.
    fn read_body_header(&mut self) -> Result<()> {
        let mut identifier = None;
        let mut upsert = None;
        let mut scratch = std::mem::take(&mut self.buf);
        let walked = self
            .scanner
            .walk_members(&mut scratch, self.max_record_bytes, |key, raw| {
                let value: Value = serde_json::from_slice(raw).map_err(|e| {
                    ScanError::Syntax(format!("invalid value of `{key}`: {}", json_message(&e)))
                })?;
                match key {
                    "identifier" => match value {
                        Value::String(s) => identifier = Some(s),
                        _ => return Err(ScanError::Syntax("`identifier` must be a string".into())),
                    },
                    "upsert" => match value {
                        Value::Bool(b) => upsert = Some(b),
                        _ => return Err(ScanError::Syntax("`upsert` must be a boolean".into())),
                    },
                    _ => {}
                }
                Ok(())
            });
        scratch.clear();
        self.buf = scratch;
        self.identifier = identifier;
        self.upsert = upsert;
        match walked {
            Ok(Header::Records) => {
                self.phase = Phase::ElementOrEnd;
                Ok(())
            }
            Ok(Header::Closed) => {
                Err(self.fatal("the top-level object has no `records` array".to_owned()))
            }
            Err(e) => Err(self.scan_error(e)),
        }
    }

    fn next_element(&mut self) -> Result<Option<RawRecord>> {
        let Some(b) = self.peek()? else {
            return Err(self.fatal(
                "unexpected end of input inside the array (is the file truncated?)".to_owned(),
            ));
        };
        match (b, self.phase) {
            (b']', Phase::ElementOrEnd) => {
                self.scanner.bump();
                self.phase = Phase::Done;
                if self.format == InputFormat::Auth0Bulk {
                    if let Some(extra) = self.peek()? {
                        return Err(self.fatal(format!(
                            "unexpected {} after the end of the array",
                            show_byte(extra)
                        )));
                    }
                }
                return Ok(None);
            }
            (b']', _) => return Err(self.fatal("trailing comma before `]`".to_owned())),
            (b',', _) => return Err(self.fatal("expected a value before `,`".to_owned())),
            _ => {}
        }
        let line = self.scanner.line;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let cut = self
            .scanner
            .cut_value(&mut buf, b",]", self.max_record_bytes);
        let cut = match cut {
            Ok(cut) => cut,
            Err(e) => {
                self.buf = buf;
                return Err(self.scan_error(e));
            }
        };
        let value = if cut.overflow {
            Err(self.too_long())
        } else {
            parse_object(&buf, false)
        };
        self.buf = buf;
        match cut.term {
            Some(b',') => {
                self.scanner.bump();
                self.phase = Phase::Element;
            }
            Some(_) => self.phase = Phase::ElementOrEnd,
            None => {
                return Err(self.fatal(
                    "unexpected end of input inside the array (is the file truncated?)".to_owned(),
                ));
            }
        }
        Ok(Some(self.record(line, value)))
    }

    fn next_line(&mut self) -> Result<Option<RawRecord>> {
        loop {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let read = read_line(&mut self.scanner.src, &mut buf, self.max_record_bytes);
            let (got, overflow) = match read {
                Ok(r) => r,
                Err(e) => {
                    self.buf = buf;
                    return Err(self.io_error(e));
                }
            };
            if !got {
                self.buf = buf;
                self.phase = Phase::Done;
                return Ok(None);
            }
            let line = self.scanner.line;
            self.scanner.line += 1;
            let blank = !overflow && buf.iter().all(u8::is_ascii_whitespace);
            if blank {
                self.buf = buf;
                continue;
            }
            let value = if overflow {
                Err(self.too_long())
            } else {
                parse_object(&buf, true)
            };
            self.buf = buf;
            return Ok(Some(self.record(line, value)));
        }
    }

    fn record(&mut self, line: u64, value: Result<Map<String, Value>, String>) -> RawRecord {
        let index = self.next_index;
        self.next_index += 1;
        RawRecord {
            index,
            line: Some(line),
            value,
        }
    }

    fn too_long(&self) -> String {
        format!("the record is larger than {} bytes", self.max_record_bytes)
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        self.scanner.peek_non_ws().map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        Error::io("read", &self.name, e)
    }

    /// A fatal framing error at the record being read.
    fn fatal(&self, reason: String) -> Error {
        Error::Input {
            location: Location {
                file: Some(self.name.clone()),
                line: Some(self.scanner.line),
                index: Some(self.next_index),
                field: None,
            },
            reason,
        }
    }

    fn scan_error(&self, e: ScanError) -> Error {
        match e {
            ScanError::Io(e) => self.io_error(e),
            ScanError::Eof(m) => self.fatal(format!("{m} (is the file truncated?)")),
            ScanError::Syntax(m) => self.fatal(m),
        }
    }
}

impl Iterator for RecordReader {
    type Item = RawRecord;

    /// The next record; on a fatal error iteration ends and the error is kept for
    /// [`RecordReader::status`].
    fn next(&mut self) -> Option<RawRecord> {
        match self.try_next() {
            Ok(record) => record,
            Err(e) => {
                self.status.set(e);
                None
            }
        }
    }
}

/// Reads one line (without its `\n`, and without a trailing `\r`) into `out`.
/// Returns (whether anything was read, whether the line exceeded `limit` and was skipped).
fn read_line<R: BufRead + ?Sized>(
    src: &mut R,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<(bool, bool)> {
    let mut got = false;
    let mut overflow = false;
    loop {
        let buf = match src.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        got = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let take = newline.unwrap_or(buf.len());
        if !overflow {
            if out.len() + take > limit {
                overflow = true;
                out.clear();
                out.shrink_to(KEEP_CAPACITY);
            } else {
                out.extend_from_slice(&buf[..take]);
            }
        }
        src.consume(newline.map_or(take, |i| i + 1));
        if newline.is_some() {
            break;
        }
    }
    if out.last() == Some(&b'\r') {
        out.pop();
    }
    Ok((got, overflow))
}

/// Parses one record's bytes; the error never contains the record's content.
fn parse_object(bytes: &[u8], with_column: bool) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        )),
        Err(e) if with_column && e.line() == 1 => Err(format!(
            "invalid JSON at column {}: {}",
            e.column(),
            json_message(&e)
        )),
        Err(e) => Err(format!("invalid JSON: {}", json_message(&e))),
    }
}

/// serde_json's message without its ` at line L column C` suffix.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

#[cfg(test)]
mod tests;
