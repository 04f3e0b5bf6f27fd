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
mod tests {
    use super::*;
    use std::io::Cursor;

    fn reader(content: &str, format: InputFormat) -> RecordReader {
        RecordReader::from_reader(
            Box::new(Cursor::new(content.as_bytes().to_vec())),
            format,
            "users.json",
        )
    }

    fn emails(records: &[RawRecord]) -> Vec<Option<String>> {
        records
            .iter()
            .map(|r| {
                r.value
                    .as_ref()
                    .ok()
                    .and_then(|m| m.get("email"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    #[test]
    fn ndjson_bad_line_in_the_middle_loses_nothing() {
        let input = "{\"email\":\"a@x.com\"}\n\n{\"email\":\"b@x.com\"}\r\n{\"email\": oops}\n\"just a string\"\n  \n{\"email\":\"c@x.com\"}";
        let mut r = reader(input, InputFormat::Neutral);
        let records: Vec<_> = r.by_ref().collect();
        assert!(r.take_error().is_none());
        assert_eq!(records.len(), 5);
        assert_eq!(
            records
                .iter()
                .map(|r| (r.index, r.line))
                .collect::<Vec<_>>(),
            vec![
                (0, Some(1)),
                (1, Some(3)),
                (2, Some(4)),
                (3, Some(5)),
                (4, Some(7))
            ]
        );
        assert_eq!(
            emails(&records),
            vec![
                Some("a@x.com".into()),
                Some("b@x.com".into()),
                None,
                None,
                Some("c@x.com".into())
            ]
        );
        assert_eq!(
            records[2].value.as_ref().unwrap_err(),
            "invalid JSON at column 11: expected value"
        );
        assert_eq!(
            records[3].value.as_ref().unwrap_err(),
            "expected a JSON object, found a string"
        );
        let message = format!(
            "{}: {}",
            records[3].location(Path::new("users.json")),
            records[3].value.as_ref().unwrap_err()
        );
        assert_eq!(
            message,
            "`users.json`, line 5, record 3: expected a JSON object, found a string"
        );
    }

    #[test]
    fn array_with_nested_objects_and_tricky_strings() {
        let input = r#"[
  {"email":"a@x.com","app_metadata":{"tags":["]","}"],"deep":{"x":[1,{"y":2}]}}},
  {"email":"b@x.com","name":"quote \" and ] and } and \\"},
  "a string",
  {"email":"\u00e9@x.com","nickname":"\ud83d\ude00 [{"},
  42
]
"#;
        let mut r = reader(input, InputFormat::Auth0Bulk);
        let records: Vec<_> = r.by_ref().collect();
        assert!(r.take_error().is_none(), "no fatal error");
        assert_eq!(records.len(), 5);
        assert_eq!(
            records.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            records.iter().map(|r| r.line.unwrap()).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
        let first = records[0].value.as_ref().unwrap();
        assert_eq!(
            first["app_metadata"]["deep"]["x"][1]["y"],
            serde_json::json!(2)
        );
        assert_eq!(first["app_metadata"]["tags"], serde_json::json!(["]", "}"]));
        let second = records[1].value.as_ref().unwrap();
        assert_eq!(second["name"], "quote \" and ] and } and \\");
        assert_eq!(
            records[2].value.as_ref().unwrap_err(),
            "expected a JSON object, found a string"
        );
        let fourth = records[3].value.as_ref().unwrap();
        assert_eq!(fourth["email"], "é@x.com");
        assert_eq!(fourth["nickname"], "😀 [{");
        assert_eq!(
            records[4].value.as_ref().unwrap_err(),
            "expected a JSON object, found a number"
        );
    }

    #[test]
    fn empty_array_yields_nothing() {
        let mut r = reader(" [ ] \n", InputFormat::Auth0Bulk);
        assert!(r.try_next().unwrap().is_none());
        assert!(r.try_next().unwrap().is_none());
    }

    #[test]
    fn truncated_array_is_fatal_and_names_file_and_index() {
        let mut r = reader(
            "[{\"email\":\"a@x.com\"},{\"email\":\"b@x.com\"},{\"email\":\"c@x",
            InputFormat::Auth0Bulk,
        );
        let status = r.status();
        let records: Vec<_> = r.by_ref().collect();
        assert_eq!(records.len(), 2, "the complete records are delivered");
        let err = status.take_error().expect("a fatal error");
        assert!(matches!(err, Error::Input { .. }));
        assert_eq!(
            err.to_string(),
            "`users.json`, line 1, record 2: unexpected end of input inside a string (is the file truncated?)"
        );
        // And nothing more afterwards.
        assert!(r.next().is_none());
    }

    #[test]
    fn array_missing_its_close_is_fatal() {
        let mut r = reader("[{\"email\":\"a@x.com\"},\n", InputFormat::Auth0Bulk);
        assert!(r.try_next().unwrap().is_some());
        let err = r.try_next().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`users.json`, line 2, record 1: unexpected end of input inside the array (is the file truncated?)"
        );
    }

    #[test]
    fn framing_errors_are_fatal() {
        let cases = [
            ("[{},]", "record 1: trailing comma before `]`"),
            ("[{},,{}]", "record 1: expected a value before `,`"),
            (
                "[{}] x",
                "record 1: unexpected `x` after the end of the array",
            ),
            (
                "{\"a\":1}",
                "record 0: expected a JSON array starting with `[`, found `{`",
            ),
            ("", "record 0: the file is empty: expected a JSON array"),
        ];
        for (input, want) in cases {
            let mut r = reader(input, InputFormat::Auth0Bulk);
            let err = loop {
                match r.try_next() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("no error for {input}"),
                    Err(e) => break e,
                }
            };
            assert!(err.to_string().ends_with(want), "{input}: got {err}");
        }
    }

    #[test]
    fn invalid_element_json_is_a_record_error_not_fatal() {
        let mut r = reader("[{\"a\":},{\"email\":\"b@x.com\"}]", InputFormat::Auth0Bulk);
        let records: Vec<_> = r.by_ref().collect();
        assert!(r.take_error().is_none());
        assert_eq!(records.len(), 2);
        assert!(
            records[0]
                .value
                .as_ref()
                .unwrap_err()
                .starts_with("invalid JSON: expected value")
        );
        assert_eq!(emails(&records)[1].as_deref(), Some("b@x.com"));
    }

    #[test]
    fn authgear_body_streams_records_and_keeps_header_values() {
        let input = r#"{
  "identifier": "phone_number",
  "upsert": true,
  "note": {"records": [1, 2]},
  "records": [
    {"phone_number": "+12125550001"},
    {"phone_number": "+12125550002"}
  ],
  "ignored_after": "anything [ { \" even broken"
"#;
        let mut r = reader(input, InputFormat::AuthgearBody);
        let first = r.try_next().unwrap().unwrap();
        assert_eq!(r.authgear_identifier(), Some("phone_number"));
        assert_eq!(r.authgear_upsert(), Some(true));
        assert_eq!(first.index, 0);
        assert_eq!(first.value.unwrap()["phone_number"], "+12125550001");
        let second = r.try_next().unwrap().unwrap();
        assert_eq!(second.index, 1);
        assert!(r.try_next().unwrap().is_none());
    }

    #[test]
    fn authgear_body_without_records_is_fatal() {
        let mut r = reader("{\"identifier\":\"email\"}", InputFormat::AuthgearBody);
        let err = r.try_next().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`users.json`, line 1, record 0: the top-level object has no `records` array"
        );
        let mut r = reader(
            "{\"identifier\":3,\"records\":[]}",
            InputFormat::AuthgearBody,
        );
        assert!(
            r.try_next()
                .unwrap_err()
                .to_string()
                .ends_with("`identifier` must be a string")
        );
    }

    #[test]
    fn oversized_records_are_skipped_not_held() {
        let big = "x".repeat(1000);
        let ndjson = format!(
            "{{\"email\":\"a@x.com\"}}\n{{\"name\":\"{big}\"}}\n{{\"email\":\"c@x.com\"}}\n"
        );
        let mut r = reader(&ndjson, InputFormat::Neutral).with_max_record_bytes(100);
        let records: Vec<_> = r.by_ref().collect();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1].value.as_ref().unwrap_err(),
            "the record is larger than 100 bytes"
        );
        assert_eq!(emails(&records)[2].as_deref(), Some("c@x.com"));

        let array =
            format!("[{{\"email\":\"a@x.com\"}},{{\"name\":\"{big}\"}},{{\"email\":\"c@x.com\"}}]");
        let mut r = reader(&array, InputFormat::Auth0Bulk).with_max_record_bytes(100);
        let records: Vec<_> = r.by_ref().collect();
        assert!(r.take_error().is_none());
        assert_eq!(records.len(), 3);
        assert!(records[1].value.is_err());
        assert_eq!(emails(&records)[2].as_deref(), Some("c@x.com"));
    }

    #[test]
    fn bom_is_skipped() {
        let mut r = reader("\u{feff}{\"email\":\"a@x.com\"}\n", InputFormat::Neutral);
        assert!(r.next().unwrap().value.is_ok());
        let mut r = reader("\u{feff}[{\"email\":\"a@x.com\"}]", InputFormat::Auth0Bulk);
        assert!(r.next().unwrap().value.is_ok());
    }

    #[test]
    fn corrupt_gzip_is_an_io_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.ndjson.gz");
        std::fs::write(
            &path,
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
        )
        .unwrap();
        let mut r = RecordReader::open(&path, InputFormat::Neutral).unwrap();
        let err = r.try_next().unwrap_err();
        assert!(matches!(err, Error::Io { action: "read", .. }), "{err}");
        assert!(err.to_string().contains("users.ndjson.gz"));
    }

    #[test]
    fn hundred_thousand_ndjson_records_stream_in_small_memory() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.ndjson.gz");
        let mut w = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
            flate2::Compression::fast(),
        );
        for i in 0..100_000 {
            writeln!(
                w,
                "{{\"email\":\"user_{i:06}@example.com\",\"email_verified\":true}}"
            )
            .unwrap();
        }
        w.finish().unwrap().flush().unwrap();

        let mut r = RecordReader::open_auto(&path).unwrap();
        assert_eq!(r.format(), InputFormat::Neutral);
        let mut count = 0u64;
        let mut max_capacity = 0;
        while let Some(rec) = r.try_next().unwrap() {
            assert_eq!(rec.index, count);
            let obj = rec.value.unwrap();
            assert_eq!(obj["email"], format!("user_{count:06}@example.com"));
            max_capacity = max_capacity.max(r.buf.capacity());
            count += 1;
        }
        assert_eq!(count, 100_000);
        assert!(max_capacity <= 1024, "line buffer grew to {max_capacity}");
    }

    #[test]
    fn big_array_streams_with_a_small_buffer() {
        let mut input = String::from("[");
        for i in 0..20_000 {
            if i > 0 {
                input.push(',');
            }
            input.push_str(&format!("{{\"email\":\"u{i}@x.com\"}}"));
        }
        input.push(']');
        let mut r = reader(&input, InputFormat::Auth0Bulk);
        let mut count = 0;
        while let Some(rec) = r.try_next().unwrap() {
            assert!(rec.value.is_ok());
            assert!(r.buf.capacity() <= 1024);
            count += 1;
        }
        assert_eq!(count, 20_000);
    }
}
