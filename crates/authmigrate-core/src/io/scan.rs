//! A small byte-level JSON framing scanner.
//!
//! It never builds a document: it only finds where one value (an array element, an
//! object member's value, a key string) starts and ends, tracking string, escape and
//! bracket-depth state, so each piece can be handed to serde_json on its own. Memory
//! is the size of the piece being cut, never the size of the input.

use std::io::{self, BufRead};

/// Why scanning stopped.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The underlying reader failed (includes corrupt gzip data).
    Io(io::Error),
    /// The input ended where more JSON was required.
    Eof(String),
    /// The bytes are not JSON where framing needs them to be.
    Syntax(String),
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// How a cut value ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The terminator found at depth 0 (not consumed), or `None` at end of input.
    pub(crate) term: Option<u8>,
    /// The value was longer than the limit: its bytes were skipped, not stored.
    pub(crate) overflow: bool,
}

/// A framing scanner over a buffered reader, counting lines.
pub(crate) struct Scanner<R> {
    pub(crate) src: R,
    /// 1-based line of the next unread byte.
    pub(crate) line: u64,
}

/// `fill_buf` that retries on `Interrupted`.
fn fill<R: BufRead + ?Sized>(src: &mut R) -> io::Result<&[u8]> {
    loop {
        match src.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    src.fill_buf()
}

/// Shows one byte in a message without echoing more of the input.
pub(crate) fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

impl<R: BufRead> Scanner<R> {
    pub(crate) fn new(src: R) -> Self {
        Self { src, line: 1 }
    }

    /// Skips a UTF-8 byte order mark at the current position.
    pub(crate) fn skip_bom(&mut self) -> io::Result<()> {
        let buf = fill(&mut self.src)?;
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.src.consume(3);
        }
        Ok(())
    }

    /// Consumes JSON whitespace and returns the next byte without consuming it
    /// (`None` at end of input).
    pub(crate) fn peek_non_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = fill(&mut self.src)?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut newlines = 0;
            let mut found = None;
            for (i, &b) in buf.iter().enumerate() {
                match b {
                    b' ' | b'\t' | b'\r' => {}
                    b'\n' => newlines += 1,
                    _ => {
                        found = Some((i, b));
                        break;
                    }
                }
            }
            let used = found.map_or(buf.len(), |(i, _)| i);
            self.src.consume(used);
            self.line += newlines;
            if let Some((_, b)) = found {
                return Ok(Some(b));
            }
        }
    }

    /// Consumes one byte that [`peek_non_ws`](Self::peek_non_ws) returned.
    pub(crate) fn bump(&mut self) {
        self.src.consume(1);
    }

    /// Cuts one JSON value starting at the current (non-whitespace) byte, appending its
    /// bytes to `out` until a byte of `terminators` appears at depth 0 outside strings.
    /// The terminator is not consumed. Past `limit` bytes the value is skipped instead of
    /// stored (`overflow`).
    pub(crate) fn cut_value(
        &mut self,
        out: &mut Vec<u8>,
        terminators: &[u8],
        limit: usize,
    ) -> Result<Cut, ScanError> {
        let mut depth: u32 = 0;
        let mut in_str = false;
        let mut esc = false;
        let mut overflow = false;
        loop {
            let buf = fill(&mut self.src)?;
            if buf.is_empty() {
                if in_str {
                    return Err(ScanError::Eof(
                        "unexpected end of input inside a string".into(),
                    ));
                }
                if depth > 0 {
                    return Err(ScanError::Eof(
                        "unexpected end of input inside an object or array".into(),
                    ));
                }
                return Ok(Cut {
                    term: None,
                    overflow,
                });
            }
            let mut newlines = 0;
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if b == b'\n' {
                    newlines += 1;
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => depth -= 1,
                    _ if depth == 0 && terminators.contains(&b) => {
                        end = Some((i, b));
                        break;
                    }
                    _ => {}
                }
            }
            let used = end.map_or(buf.len(), |(i, _)| i);
            if !overflow {
                if out.len() + used > limit {
                    overflow = true;
                    out.clear();
                    out.shrink_to(64 * 1024);
                } else {
                    out.extend_from_slice(&buf[..used]);
                }
            }
            self.src.consume(used);
            self.line += newlines;
            if let Some((_, b)) = end {
                return Ok(Cut {
                    term: Some(b),
                    overflow,
                });
            }
        }
    }

    /// Cuts one JSON string (the current byte must be `"`), quotes included, into `out`.
    pub(crate) fn cut_string(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ScanError> {
        let mut first = true;
        let mut esc = false;
        loop {
            let buf = fill(&mut self.src)?;
            if buf.is_empty() {
                return Err(ScanError::Eof(
                    "unexpected end of input inside a string".into(),
                ));
            }
            let mut end = None;
            let mut newlines = 0;
            for (i, &b) in buf.iter().enumerate() {
                if first {
                    first = false;
                    continue;
                }
                if b == b'\n' {
                    newlines += 1;
                }
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    end = Some(i + 1);
                    break;
                }
            }
            let used = end.unwrap_or(buf.len());
            if out.len() + used > limit {
                return Err(ScanError::Syntax(format!(
                    "a key is longer than {limit} bytes"
                )));
            }
            out.extend_from_slice(&buf[..used]);
            self.src.consume(used);
            self.line += newlines;
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Walks the members of an object whose `{` was just consumed, calling `visit` with
    /// each key and the raw bytes of its value, until the object closes
    /// ([`Header::Closed`]) or a `records` key with an array value is reached
    /// ([`Header::Records`], positioned just after its `[`).
    pub(crate) fn walk_members(
        &mut self,
        scratch: &mut Vec<u8>,
        limit: usize,
        mut visit: impl FnMut(&str, &[u8]) -> Result<(), ScanError>,
    ) -> Result<Header, ScanError> {
        let eof = || ScanError::Eof("unexpected end of input inside the top-level object".into());
        loop {
            match self.peek_non_ws()? {
                None => return Err(eof()),
                Some(b'}') => {
                    self.bump();
                    return Ok(Header::Closed);
                }
                Some(b'"') => {}
                Some(b) => {
                    return Err(ScanError::Syntax(format!(
                        "expected a key string in the top-level object, found {}",
                        show_byte(b)
                    )));
                }
            }
            scratch.clear();
            self.cut_string(scratch, limit)?;
            let key: String = serde_json::from_slice(scratch).map_err(|e| {
                ScanError::Syntax(format!("invalid key in the top-level object: {e}"))
            })?;
            match self.peek_non_ws()? {
                Some(b':') => self.bump(),
                None => return Err(eof()),
                Some(b) => {
                    return Err(ScanError::Syntax(format!(
                        "expected `:` after key `{key}`, found {}",
                        show_byte(b)
                    )));
                }
            }
            match self.peek_non_ws()? {
                None => return Err(eof()),
                Some(b'[') if key == "records" => {
                    self.bump();
                    return Ok(Header::Records);
                }
                Some(_) => {}
            }
            scratch.clear();
            let cut = self.cut_value(scratch, b",}", limit)?;
            if cut.overflow {
                return Err(ScanError::Syntax(format!(
                    "the value of `{key}` is longer than {limit} bytes"
                )));
            }
            visit(&key, scratch)?;
            match cut.term {
                Some(b',') => self.bump(),
                Some(_) => {
                    self.bump();
                    return Ok(Header::Closed);
                }
                None => return Err(eof()),
            }
        }
    }
}

/// Where [`Scanner::walk_members`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// At the first element of the `records` array.
    Records,
    /// The object closed without a `records` array.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(input: &str) -> Vec<String> {
        let mut s = Scanner::new(input.as_bytes());
        assert_eq!(s.peek_non_ws().unwrap(), Some(b'['));
        s.bump();
        let mut out = Vec::new();
        loop {
            match s.peek_non_ws().unwrap() {
                Some(b']') => break,
                Some(b',') => s.bump(),
                Some(_) => {
                    let mut v = Vec::new();
                    let cut = s.cut_value(&mut v, b",]", 1 << 20).unwrap();
                    assert!(!cut.overflow);
                    out.push(String::from_utf8(v).unwrap());
                }
                None => panic!("eof"),
            }
        }
        out
    }

    #[test]
    fn cuts_elements_with_tricky_strings() {
        let got = cut_all(r#"[ {"a":"]},\"{["} , [1,[2]], "x,]" ,3 ,{"b":{"c":[]}}]"#);
        assert_eq!(
            got,
            vec![
                r#"{"a":"]},\"{["} "#,
                "[1,[2]]",
                r#""x,]" "#,
                "3 ",
                r#"{"b":{"c":[]}}"#
            ]
        );
    }

    #[test]
    fn overflow_skips_but_keeps_framing() {
        let mut s = Scanner::new(&b"{\"a\":\"0123456789\"},{}"[..]);
        let mut v = Vec::new();
        let cut = s.cut_value(&mut v, b",]", 5).unwrap();
        assert_eq!(
            cut,
            Cut {
                term: Some(b','),
                overflow: true
            }
        );
        assert!(v.is_empty());
    }

    #[test]
    fn eof_inside_string_is_reported() {
        let mut s = Scanner::new(&b"{\"a\":\"abc"[..]);
        let mut v = Vec::new();
        let err = s.cut_value(&mut v, b",]", 1 << 20).unwrap_err();
        assert!(matches!(err, ScanError::Eof(m) if m.contains("inside a string")));
    }

    #[test]
    fn counts_lines() {
        let mut s = Scanner::new(&b"\n\n  [\n{\"a\":\n1}\n,"[..]);
        assert_eq!(s.peek_non_ws().unwrap(), Some(b'['));
        assert_eq!(s.line, 3);
        s.bump();
        assert_eq!(s.peek_non_ws().unwrap(), Some(b'{'));
        assert_eq!(s.line, 4);
        let mut v = Vec::new();
        s.cut_value(&mut v, b",]", 100).unwrap();
        assert_eq!(s.line, 6);
    }
}
