//! Helpers for downloading provider exports from short-lived, presigned URLs (the
//! Auth0 export `location`, the Authgear `download_url`), shared by both backends.
//! Nothing here ever puts the URL, its signature or a token in a message.

use std::fmt;
use std::io::{self, Write};

/// Passes decompressed bytes to `out`, counting lines and skipping what an earlier,
/// interrupted attempt already wrote.
pub struct LineSink<'a> {
    out: &'a mut (dyn Write + Send),
    /// Bytes written to `out`.
    pub emitted: u64,
    /// Position in the current attempt's stream.
    pos: u64,
    /// Non-empty lines ended so far.
    pub lines: u64,
    /// Whether the current line has content.
    in_line: bool,
}

impl<'a> LineSink<'a> {
    /// A sink writing to `out`.
    pub fn new(out: &'a mut (dyn Write + Send)) -> Self {
        Self {
            out,
            emitted: 0,
            pos: 0,
            lines: 0,
            in_line: false,
        }
    }

    /// A new attempt starts from the beginning of the stream.
    pub fn restart(&mut self) {
        self.pos = 0;
    }

    /// Writes the bytes not yet written by an earlier attempt.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let already = usize::try_from(self.emitted.saturating_sub(self.pos))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.pos += buf.len() as u64;
        let fresh = &buf[already..];
        if fresh.is_empty() {
            return Ok(());
        }
        self.out.write_all(fresh)?;
        self.emitted += fresh.len() as u64;
        for &b in fresh {
            if b == b'\n' {
                if self.in_line {
                    self.lines += 1;
                }
                self.in_line = false;
            } else if !b.is_ascii_whitespace() {
                self.in_line = true;
            }
        }
        Ok(())
    }

    /// Ends the last line with '\n' if it has none, and flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.in_line {
            self.out.write_all(b"\n")?;
            self.emitted += 1;
            self.lines += 1;
            self.in_line = false;
        }
        self.out.flush()
    }
}

impl fmt::Debug for LineSink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSink")
            .field("emitted", &self.emitted)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// A safe excerpt of an error body from the download host: S3's `<Message>` or a
/// short plain text, never anything that may echo a signature.
pub fn safe_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if let Some(start) = text.find("<Message>") {
        let rest = &text[start + "<Message>".len()..];
        if let Some(end) = rest.find("</Message>") {
            return format!(": {}", rest[..end].trim());
        }
    }
    let lower = text.to_ascii_lowercase();
    if text.is_empty()
        || text.len() > 200
        || text.starts_with('<')
        || lower.contains("signature")
        || lower.contains("token")
        || text.contains("://")
    {
        return String::new();
    }
    format!(": {text}")
}

/// A transport error without the URL.
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection error".to_owned()
    } else if e.is_body() || e.is_decode() {
        "error reading the response body".to_owned()
    } else if e.is_redirect() {
        "redirect error".to_owned()
    } else {
        "request error".to_owned()
    }
}
