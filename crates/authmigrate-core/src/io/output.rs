//! Buffered, streaming writers.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

use super::is_std;
use crate::error::{Error, Result};

const WRITE_BUFFER: usize = 64 * 1024;

enum Sink {
    Stdout(BufWriter<Stdout>),
    File(BufWriter<WriteBehind>),
    Gzip(GzEncoder<BufWriter<WriteBehind>>),
}

/// Bytes written between two requests to start writing the file back to disk.
#[cfg(not(test))]
const WRITE_BEHIND_STEP: u64 = 16 << 20;
#[cfg(test)]
const WRITE_BEHIND_STEP: u64 = 64 << 10;

/// A file that asks the kernel to start writing back what was written, every
/// [`WRITE_BEHIND_STEP`] bytes, without waiting for it. The final `fsync` then finds
/// little left to write, instead of the whole output (0.25 s for 400 MB here, with
/// the CPU idle), and the output does not crowd the page cache.
struct WriteBehind {
    file: File,
    written: u64,
    /// Everything before this offset was handed to writeback.
    started: u64,
}

impl WriteBehind {
    fn new(file: File) -> Self {
        Self {
            file,
            written: 0,
            started: 0,
        }
    }

    /// Starts the writeback of `started..written`. Advisory: a failure is ignored (the
    /// final `fsync` still writes everything and reports errors).
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            let len = std::num::NonZeroU64::new(self.written - self.started);
            // DONTNEED starts the writeback of dirty pages (WB_SYNC_NONE) and drops
            // the clean ones, e.g. those written back after the previous call.
            let _ =
                rustix::fs::fadvise(&self.file, self.started, len, rustix::fs::Advice::DontNeed);
        }
        self.started = self.written;
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_BEHIND_STEP {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(w) => w,
            Sink::Gzip(w) => w,
        }
    }

    /// Flushes everything, ends the gzip stream, and syncs files to disk.
    fn finish(self) -> io::Result<()> {
        let file = match self {
            Sink::Stdout(mut w) => return w.flush(),
            Sink::File(w) => w.into_inner().map_err(io::IntoInnerError::into_error)?,
            Sink::Gzip(w) => w
                .finish()?
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?,
        };
        file.file.sync_all()
    }
}

/// A buffered output file (or stdout), gzipped when its name ends in `.gz`.
///
/// Call [`finish`](Self::finish): it flushes, ends the gzip stream and reports errors.
/// Dropping an unfinished writer finishes it on a best-effort basis and only logs a
/// failure, so a forgotten `finish` may lose an error, never silently the data.
#[must_use = "call `finish()` to flush the output and see write errors"]
pub struct OutputWriter {
    path: PathBuf,
    sink: Option<Sink>,
}

impl fmt::Debug for OutputWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputWriter")
            .field("path", &self.path)
            .field("finished", &self.sink.is_none())
            .finish_non_exhaustive()
    }
}

/// Creates (or truncates) the output at `path` for streaming writes.
///
/// - `-` is standard output (never compressed);
/// - a name ending in `.gz` is gzip-compressed;
/// - `private` (for files holding password hashes or secrets): on Unix the file is
///   created with mode 0600, and an existing file is set to 0600, before any byte is
///   written.
pub fn create_output(path: &Path, private: bool) -> Result<OutputWriter> {
    if is_std(path) {
        return Ok(OutputWriter {
            path: path.to_path_buf(),
            sink: Some(Sink::Stdout(BufWriter::with_capacity(
                WRITE_BUFFER,
                io::stdout(),
            ))),
        });
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    #[cfg(unix)]
    if private {
        // `mode` applies only to new files: tighten an existing one too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("set permissions on", path, e))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    let buffered = BufWriter::with_capacity(WRITE_BUFFER, WriteBehind::new(file));
    let gzip = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"));
    let sink = if gzip {
        Sink::Gzip(GzEncoder::new(buffered, Compression::default()))
    } else {
        Sink::File(buffered)
    };
    Ok(OutputWriter {
        path: path.to_path_buf(),
        sink: Some(sink),
    })
}

impl OutputWriter {
    /// The path written (or `-`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, ends the gzip stream, and syncs a file to disk.
    pub fn finish(mut self) -> Result<()> {
        match self.sink.take() {
            Some(sink) => sink.finish().map_err(|e| Error::io("write", &self.path, e)),
            None => Ok(()),
        }
    }
}

fn finished() -> io::Error {
    io::Error::other("the output was already finished")
}

impl Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.as_mut().ok_or_else(finished)?.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.sink
            .as_mut()
            .ok_or_else(finished)?
            .writer()
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.as_mut().ok_or_else(finished)?.writer().flush()
    }
}

impl Drop for OutputWriter {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            match sink.finish() {
                Ok(()) => tracing::debug!(path = %self.path.display(), "output finished on drop"),
                Err(e) => tracing::warn!(
                    path = %self.path.display(),
                    error = %e,
                    "output dropped without finish() and could not be completed"
                ),
            }
        }
    }
}

/// Writes one compact JSON value a line (NDJSON).
pub struct NdjsonWriter<W> {
    inner: W,
    scratch: Vec<u8>,
    records: u64,
    bytes: u64,
}

impl<W> fmt::Debug for NdjsonWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NdjsonWriter")
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<W: Write> NdjsonWriter<W> {
    /// Writes to `inner` (give it a buffered writer such as [`OutputWriter`]).
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            scratch: Vec::new(),
            records: 0,
            bytes: 0,
        }
    }

    /// Writes `value` as one line. A value that fails to serialize writes nothing.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, value)?;
        self.scratch.push(b'\n');
        self.inner.write_all(&self.scratch)?;
        self.records += 1;
        self.bytes += self.scratch.len() as u64;
        if self.scratch.capacity() > WRITE_BUFFER {
            self.scratch = Vec::new();
        }
        Ok(())
    }

    /// Lines written.
    pub fn records_written(&self) -> u64 {
        self.records
    }

    /// Bytes written, newlines included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Flushes and returns the underlying writer (call its own `finish` if it has one).
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Streams one JSON array, `[` element `,` element … `]`, optionally inside an
/// envelope: with prefix `{"identifier":"email","records":` and suffix `}` it writes an
/// Authgear import body. Byte counts let callers keep under upload limits.
#[must_use = "call `finish()` to close the array"]
pub struct JsonArrayWriter<W> {
    inner: W,
    prefix: String,
    suffix: String,
    started: bool,
    elements: u64,
    bytes: u64,
    scratch: Vec<u8>,
}

impl<W> fmt::Debug for JsonArrayWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonArrayWriter")
            .field("prefix", &self.prefix)
            .field("suffix", &self.suffix)
            .field("elements", &self.elements)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<W: Write> JsonArrayWriter<W> {
    /// A bare JSON array.
    pub fn new(inner: W) -> Self {
        Self::with_envelope(inner, "", "")
    }

    /// An array written between `prefix` and `suffix` (both raw JSON text, written as
    /// they are): the output is `prefix` `[` … `]` `suffix`.
    pub fn with_envelope(inner: W, prefix: impl Into<String>, suffix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
            suffix: suffix.into(),
            started: false,
            elements: 0,
            bytes: 0,
            scratch: Vec::new(),
        }
    }

    /// Serializes `value` compactly and appends it; returns the bytes it added
    /// (separator included). A value that fails to serialize writes nothing.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<u64> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = serde_json::to_writer(&mut scratch, value)
            .map_err(io::Error::from)
            .and_then(|()| self.write_encoded(&scratch));
        if scratch.capacity() <= WRITE_BUFFER {
            self.scratch = scratch;
        }
        result
    }

    /// Appends an element the caller already encoded as JSON (e.g. to measure it
    /// first with [`len_with`](Self::len_with)); returns the bytes it added.
    pub fn write_encoded(&mut self, json: &[u8]) -> io::Result<u64> {
        let mut added = self.start()?;
        if self.elements > 0 {
            self.inner.write_all(b",")?;
            added += 1;
        }
        self.inner.write_all(json)?;
        added += json.len() as u64;
        self.elements += 1;
        self.bytes += added;
        Ok(added)
    }

    /// Writes the prefix and `[` once; returns the bytes written (counted by the caller).
    fn start(&mut self) -> io::Result<u64> {
        if self.started {
            return Ok(0);
        }
        self.inner.write_all(self.prefix.as_bytes())?;
        self.inner.write_all(b"[")?;
        self.started = true;
        Ok(self.prefix.len() as u64 + 1)
    }

    /// Elements written.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// Bytes written so far (prefix, `[`, elements and separators; not the closing).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// The size of the whole document if it were finished now.
    pub fn len_if_finished(&self) -> u64 {
        let header = if self.started {
            0
        } else {
            self.prefix.len() as u64 + 1
        };
        self.bytes + header + 1 + self.suffix.len() as u64
    }

    /// The size of the whole document if one more element of `element_len` bytes were
    /// added and it were then finished: compare it with an upload limit before writing.
    pub fn len_with(&self, element_len: usize) -> u64 {
        let separator = u64::from(self.elements > 0);
        self.len_if_finished() + separator + element_len as u64
    }

    /// Writes the closing `]` and suffix, flushes, and returns the underlying writer
    /// (call its own `finish` if it has one).
    pub fn finish(mut self) -> io::Result<W> {
        self.start()?;
        self.inner.write_all(b"]")?;
        self.inner.write_all(self.suffix.as_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{InputFormat, RecordReader};
    use serde_json::json;

    #[test]
    fn gzip_round_trip_through_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson.gz");
        let mut out = NdjsonWriter::new(create_output(&path, false).unwrap());
        for i in 0..1000 {
            out.write(&json!({"email": format!("u{i}@x.com"), "n": i}))
                .unwrap();
        }
        assert_eq!(out.records_written(), 1000);
        out.finish().unwrap().finish().unwrap();

        let raw = std::fs::read(&path).unwrap();
        assert_eq!(&raw[..2], &[0x1f, 0x8b], "compressed on disk");
        let records: Vec<_> = RecordReader::open(&path, InputFormat::Neutral)
            .unwrap()
            .collect();
        assert_eq!(records.len(), 1000);
        assert_eq!(records[999].value.as_ref().unwrap()["email"], "u999@x.com");
    }

    #[test]
    fn write_behind_keeps_every_byte_in_order() {
        // Many writeback steps, writes of odd sizes across their boundaries.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.ndjson");
        let mut out = create_output(&path, false).unwrap();
        let mut expected = Vec::new();
        let mut i = 0u64;
        while expected.len() < 10 * WRITE_BEHIND_STEP as usize + 12_345 {
            let piece = format!(
                "{{\"n\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat((i % 997) as usize)
            );
            out.write_all(piece.as_bytes()).unwrap();
            expected.extend_from_slice(piece.as_bytes());
            i += 1;
        }
        out.finish().unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), expected.len());
        assert!(
            written == expected,
            "the file differs from what was written"
        );
    }

    #[test]
    fn dropped_writer_still_completes_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dropped.ndjson.gz");
        {
            let mut out = create_output(&path, false).unwrap();
            out.write_all(b"{\"a\":1}\n").unwrap();
        }
        let records: Vec<_> = RecordReader::open(&path, InputFormat::Neutral)
            .unwrap()
            .collect();
        assert_eq!(records.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn private_outputs_are_0600_new_or_existing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("secret.ndjson");
        let out = create_output(&new, true).unwrap();
        // Checked before anything is written.
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        out.finish().unwrap();

        let existing = dir.path().join("existing.json");
        std::fs::write(&existing, "old").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut out = create_output(&existing, true).unwrap();
        out.write_all(b"new").unwrap();
        out.finish().unwrap();
        let meta = std::fs::metadata(&existing).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "new");
    }

    #[test]
    fn create_error_names_the_path() {
        let err = create_output(Path::new("/nonexistent/dir/out.json"), true).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot create `/nonexistent/dir/out.json`: ")
        );
    }

    #[test]
    fn ndjson_lines_are_compact() {
        let mut w = NdjsonWriter::new(Vec::new());
        w.write(&json!({"a": [1, 2], "b": {"c": "d"}})).unwrap();
        w.write(&json!({"z": null})).unwrap();
        let want = "{\"a\":[1,2],\"b\":{\"c\":\"d\"}}\n{\"z\":null}\n";
        assert_eq!(w.bytes_written(), want.len() as u64);
        assert_eq!(w.records_written(), 2);
        let out = w.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn json_array_bare_and_empty() {
        let w = JsonArrayWriter::new(Vec::new());
        assert_eq!(w.len_if_finished(), 2);
        assert_eq!(w.finish().unwrap(), b"[]");

        let mut w = JsonArrayWriter::new(Vec::new());
        assert_eq!(w.len_with(7), 9);
        assert_eq!(w.write(&json!({"a": 1})).unwrap(), 8);
        assert_eq!(w.len_with(7), 9 + 8);
        assert_eq!(w.write(&json!({"b": 2})).unwrap(), 8);
        assert_eq!(w.bytes_written(), 16);
        let expected_len = w.len_if_finished();
        let out = w.finish().unwrap();
        assert_eq!(out, b"[{\"a\":1},{\"b\":2}]");
        assert_eq!(out.len() as u64, expected_len);
    }

    #[test]
    fn authgear_envelope_streams_and_reads_back() {
        let mut w = JsonArrayWriter::with_envelope(
            Vec::new(),
            "{\"identifier\":\"email\",\"records\":",
            "}",
        );
        for i in 0..3 {
            let encoded = serde_json::to_vec(&json!({"email": format!("u{i}@x.com")})).unwrap();
            let predicted = w.len_with(encoded.len());
            w.write_encoded(&encoded).unwrap();
            assert_eq!(w.len_if_finished(), predicted);
        }
        let predicted = w.len_if_finished();
        let out = w.finish().unwrap();
        assert_eq!(out.len() as u64, predicted);
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["identifier"], "email");
        assert_eq!(doc["records"][2]["email"], "u2@x.com");

        let mut r = RecordReader::from_reader(
            Box::new(std::io::Cursor::new(out)),
            InputFormat::AuthgearBody,
            "body.json",
        );
        let records: Vec<_> = r.by_ref().collect();
        assert!(r.take_error().is_none());
        assert_eq!(records.len(), 3);
        assert_eq!(r.authgear_identifier(), Some("email"));
    }
}
