//! Ordered parallel processing of big inputs: one thread reads jobs (chunks of whole
//! lines, or blocks of records), every core works on them, and the results come back
//! to the calling thread in input order.
//!
//! Memory is bounded: at most one job per worker plus [`SPARE_JOBS`] exist at once, from being read to
//! their result being consumed, so a slow sink (disk) stalls the reader instead of
//! piling up results.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;

/// Bytes of input per text chunk (whole lines; a chunk grows to hold a longer line).
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Jobs alive at once beyond one per worker: one being read, one being consumed.
const SPARE_JOBS: usize = 2;
/// A line longer than this is reported and skipped, never held.
pub(crate) const MAX_LINE_BYTES: usize = authmigrate_core::io::DEFAULT_MAX_RECORD_BYTES;

/// Runs `produce` on a thread of its own, `work` on every core, and `sink` on the
/// calling thread in the order `produce` made the jobs. Stops early when `sink`
/// breaks or fails, or when `produce` fails (its error is returned after the results
/// of the jobs it made).
pub(crate) fn ordered<J, T, P, W, S>(mut produce: P, work: W, mut sink: S) -> anyhow::Result<()>
where
    J: Send,
    T: Send,
    P: FnMut() -> anyhow::Result<Option<J>> + Send,
    W: Fn(J) -> T + Sync,
    S: FnMut(T) -> anyhow::Result<ControlFlow<()>>,
{
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let in_flight = workers + SPARE_JOBS;
    let stop = AtomicBool::new(false);
    let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = token_tx.send(());
    }
    let (job_tx, job_rx) = mpsc::sync_channel::<(u64, J)>(in_flight);
    let job_rx = Mutex::new(job_rx);
    // `None`: the worker panicked on that job (its message is already on stderr).
    let (result_tx, result_rx) = mpsc::channel::<(u64, Option<T>)>();
    std::thread::scope(|s| {
        let (stop, work) = (&stop, &work);

        let reader = s.spawn(move || -> anyhow::Result<()> {
            let mut seq = 0u64;
            while token_rx.recv().is_ok() && !stop.load(Ordering::Relaxed) {
                let Some(job) = produce()? else { break };
                if job_tx.send((seq, job)).is_err() {
                    break;
                }
                seq += 1;
            }
            Ok(())
        });
        let job_rx = &job_rx;
        for _ in 0..workers {
            let result_tx = result_tx.clone();
            s.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, job)) = job else { return };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    // A panic must end the run, not leave a hole in the order that
                    // the writer would wait on forever.
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(job))).ok();
                    let panicked = result.is_none();
                    if result_tx.send((seq, result)).is_err() || panicked {
                        return;
                    }
                }
            });
        }
        drop(result_tx);

        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let consumed = (|| -> anyhow::Result<()> {
            for (seq, result) in &result_rx {
                pending.insert(seq, result);
                while let Some(result) = pending.remove(&next) {
                    next += 1;
                    let _ = token_tx.send(());
                    let Some(result) = result else {
                        anyhow::bail!("internal error: a worker thread panicked (see above)");
                    };
                    if sink(result)?.is_break() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        drop(token_tx);
        drop(result_rx);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the input reader panicked")));
        consumed.and(read)
    })
}

/// A run of whole lines of a file.
pub(crate) struct TextChunk {
    /// The 1-based line number of the first line.
    pub(crate) first_line: u64,
    /// The lines, each ending with `\n` (the last one may not, at the end of the file).
    /// Empty for an over-long line, which is skipped.
    pub(crate) text: Vec<u8>,
    /// The chunk stands for one line longer than [`MAX_LINE_BYTES`], skipped unread.
    pub(crate) too_long: bool,
    /// Where `text` goes back when the chunk is dropped.
    pool: Option<Arc<BufferPool>>,
}

impl Drop for TextChunk {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.put(std::mem::take(&mut self.text));
        }
    }
}

/// Buffers handed back once used, so that the next job fills memory that is already
/// mapped instead of a fresh megabyte (page faults and cold cache) each time: the
/// reader's chunk buffers, which the workers give back, and `convert`'s output
/// buffers, which the writer gives back.
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    /// Only buffers of a capacity in this range are kept: one grown for a long line
    /// is let go.
    capacity: std::ops::RangeInclusive<usize>,
}

impl BufferPool {
    /// Buffers kept: enough for every job in flight.
    const KEEP: usize = 16;

    /// A pool that keeps buffers of a capacity in `capacity`.
    pub(crate) fn new(capacity: std::ops::RangeInclusive<usize>) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            capacity,
        }
    }

    /// A buffer given back earlier (empty), or a new one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Keeps `buf` for a later [`BufferPool::take`], if it has an ordinary capacity.
    pub(crate) fn put(&self, mut buf: Vec<u8>) {
        if !self.capacity.contains(&buf.capacity()) {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < Self::KEEP
        {
            free.push(buf);
        }
    }
}

impl TextChunk {
    /// The lines with their 1-based numbers, without the line end (`\n` or `\r\n`).
    pub(crate) fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let text = &self.text[..];
        let mut ends = memchr::memchr_iter(b'\n', text);
        let (mut start, mut number, mut done) = (0usize, self.first_line, false);
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let line = match ends.next() {
                Some(end) => {
                    let line = &text[start..end];
                    start = end + 1;
                    line
                }
                None => {
                    done = true;
                    text.get(start..).filter(|rest| !rest.is_empty())?
                }
            };
            number += 1;
            Some((number - 1, line.strip_suffix(b"\r").unwrap_or(line)))
        })
    }
}

/// Reads a file (gzip detected by content) as chunks of whole lines.
pub(crate) struct TextChunks {
    reader: Box<dyn std::io::BufRead + Send>,
    pool: Arc<BufferPool>,
    path: PathBuf,
    /// The start of an unfinished line, carried into the next chunk.
    carry: Vec<u8>,
    next_line: u64,
    eof: bool,
}

impl TextChunks {
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            reader: authmigrate_core::io::open_input(path)?,
            pool: Arc::new(BufferPool::new(CHUNK_BYTES..=4 * CHUNK_BYTES)),
            path: path.to_owned(),
            carry: Vec::new(),
            next_line: 1,
            eof: false,
        })
    }

    /// Fills `buf` from the reader up to `len` bytes; false at the end of the input.
    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) -> anyhow::Result<bool> {
        let start = buf.len();
        let got = (&mut self.reader)
            .take((len - start.min(len)) as u64)
            .read_to_end(buf)
            .with_context(|| format!("cannot read `{}`", self.path.display()))?;
        Ok(got > 0)
    }

    /// The next chunk, `None` at the end of the input.
    pub(crate) fn next_chunk(&mut self) -> anyhow::Result<Option<TextChunk>> {
        let mut buf = self.pool.take();
        // Room for a chunk and the usual carried line, so a reused buffer is not moved.
        buf.reserve(self.carry.len().max(CHUNK_BYTES / 8) + CHUNK_BYTES);
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let mut want = CHUNK_BYTES;
        loop {
            if !self.eof && buf.len() < want && !self.fill(&mut buf, want)? {
                self.eof = true;
            }
            match memchr::memchr(b'\n', &buf) {
                Some(first) if first > MAX_LINE_BYTES => {
                    self.carry.extend_from_slice(&buf[first + 1..]);
                    return Ok(Some(self.too_long()));
                }
                Some(_) => {
                    let last = memchr::memrchr(b'\n', &buf).unwrap_or(buf.len() - 1);
                    self.carry.extend_from_slice(&buf[last + 1..]);
                    buf.truncate(last + 1);
                    break;
                }
                None if buf.len() > MAX_LINE_BYTES => {
                    self.skip_long_line()?;
                    return Ok(Some(self.too_long()));
                }
                None if self.eof => break,
                None => want = buf.len() + CHUNK_BYTES,
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &buf).count() as u64;
        if !buf.ends_with(b"\n") {
            self.next_line += 1;
        }
        Ok(Some(TextChunk {
            first_line,
            text: buf,
            too_long: false,
            pool: Some(Arc::clone(&self.pool)),
        }))
    }

    /// A chunk that stands for the (skipped) line at `next_line`.
    fn too_long(&mut self) -> TextChunk {
        self.next_line += 1;
        TextChunk {
            first_line: self.next_line - 1,
            text: Vec::new(),
            too_long: true,
            pool: None,
        }
    }

    /// Drops the rest of a line that outgrew [`MAX_LINE_BYTES`], up to its `\n`.
    fn skip_long_line(&mut self) -> anyhow::Result<()> {
        loop {
            let buf = self
                .reader
                .fill_buf()
                .with_context(|| format!("cannot read `{}`", self.path.display()))?;
            if buf.is_empty() {
                self.eof = true;
                return Ok(());
            }
            if let Some(i) = memchr::memchr(b'\n', buf) {
                self.carry = buf[i + 1..].to_vec();
                let n = buf.len();
                self.reader.consume(n);
                return Ok(());
            }
            let n = buf.len();
            self.reader.consume(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(text: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, text).unwrap();
        let mut c = TextChunks::open(&path).unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            for (n, l) in chunk.lines() {
                out.push((n, l.to_vec()));
            }
        }
        out
    }

    #[test]
    fn lines_keep_their_numbers_across_chunks() {
        let mut text = Vec::new();
        for i in 0..300_000u64 {
            text.extend_from_slice(format!("{{\"i\":{i}}}\r\n").as_bytes());
        }
        text.extend_from_slice(b"last-without-newline");
        let lines = chunks_of(&text);
        assert_eq!(lines.len(), 300_001);
        assert_eq!(lines[0], (1, b"{\"i\":0}".to_vec()));
        assert_eq!(lines[123_456], (123_457, b"{\"i\":123456}".to_vec()));
        assert_eq!(lines[300_000], (300_001, b"last-without-newline".to_vec()));
        assert!(chunks_of(b"").is_empty());
        assert_eq!(
            chunks_of(b"\n\nx\n"),
            vec![(1, vec![]), (2, vec![]), (3, b"x".to_vec())]
        );
    }

    #[test]
    fn chunk_buffers_are_reused_and_carry_nothing_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        // Lines of different lengths, so each chunk ends elsewhere in its buffer.
        let text: String = (0..200_000)
            .map(|i| format!("{}\n", "x".repeat(i % 23)))
            .collect();
        std::fs::write(&path, &text).unwrap();
        let mut c = TextChunks::open(&path).unwrap();
        let mut seen = Vec::new();
        let mut reused = 0;
        let mut last: Option<*const u8> = None;
        while let Some(chunk) = c.next_chunk().unwrap() {
            reused += usize::from(last == Some(chunk.text.as_ptr()));
            last = Some(chunk.text.as_ptr());
            seen.extend(chunk.lines().map(|(n, l)| (n, l.len())));
            drop(chunk);
            assert_eq!(c.pool.free.lock().unwrap().len(), 1, "the buffer went back");
        }
        assert!(reused >= 2, "buffers were reused {reused} times");
        let expected: Vec<(u64, usize)> = (0..200_000).map(|i| (i as u64 + 1, i % 23)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn an_overlong_line_is_skipped_and_counted() {
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        text.extend_from_slice(b"\nb\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, &text).unwrap();
        let mut c = TextChunks::open(&path).unwrap();
        let mut seen = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            if chunk.too_long {
                seen.push((chunk.first_line, "too long".to_owned()));
            }
            for (n, l) in chunk.lines() {
                // Never print a 16 MiB line in a failure message.
                seen.push((n, format!("{} bytes", l.len())));
            }
        }
        assert_eq!(
            seen,
            vec![
                (1, "1 bytes".to_owned()),
                (2, "too long".to_owned()),
                (3, "1 bytes".to_owned())
            ]
        );
    }

    #[test]
    fn results_come_back_in_order_and_a_break_stops_early() {
        let mut n = 0u64;
        let mut got = Vec::new();
        ordered(
            || {
                n += 1;
                Ok((n <= 1000).then_some(n))
            },
            |j| j * 2,
            |r| {
                got.push(r);
                Ok(ControlFlow::Continue(()))
            },
        )
        .unwrap();
        assert_eq!(got, (1..=1000).map(|j| j * 2).collect::<Vec<_>>());

        let mut produced = 0u64;
        let mut seen = 0;
        ordered(
            || {
                produced += 1;
                Ok(Some(produced))
            },
            |j| j,
            |_| {
                seen += 1;
                Ok(if seen == 5 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )
        .unwrap();
        assert_eq!(seen, 5);
    }

    #[test]
    fn a_panicking_worker_ends_the_run_with_an_error_instead_of_hanging() {
        let mut n = 0u64;
        let mut got = Vec::new();
        let err = ordered(
            || {
                n += 1;
                Ok((n <= 100).then_some(n))
            },
            |j| {
                assert!(j != 7, "job 7 is poison");
                j
            },
            |r| {
                got.push(r);
                Ok(ControlFlow::Continue(()))
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        assert_eq!(
            got,
            (1..7).collect::<Vec<_>>(),
            "everything before the poison, in order"
        );
    }

    #[test]
    fn a_producer_error_comes_back_after_the_results_before_it() {
        let mut n = 0u64;
        let mut got = Vec::new();
        let err = ordered(
            || {
                n += 1;
                if n == 4 {
                    anyhow::bail!("disk on fire");
                }
                Ok(Some(n))
            },
            |j| j,
            |r| {
                got.push(r);
                Ok(ControlFlow::Continue(()))
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(got, vec![1, 2, 3]);
    }
}
