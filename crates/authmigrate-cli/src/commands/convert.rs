//! `authmigrate convert --to neutral|auth0|authgear IN --out OUT`: any supported input to
//! any target, offline, streaming in bounded memory (the optional password-hash join
//! spills to disk), with every field the target cannot hold reported per record and
//! counted in the summary.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use std::ops::ControlFlow;

use authmigrate_core::UserRecord;
use authmigrate_core::backend::{Encoded, RecordFailure};
use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::{
    InputFormat, JsonArrayWriter, NdjsonWriter, OutputWriter, ReaderStatus, create_output,
};
use authmigrate_core::join::{JoinStats, PasswordIndex, PasswordJoin};
use serde_json::json;

use super::map::Mapper;
use crate::Status;
use crate::cli::{ConvertArgs, ConvertTarget};
use crate::input::{Inputs, PAR_BLOCK, Records};
use crate::output::Output;
use crate::pipeline::{BufferPool, CHUNK_BYTES, TextChunk, TextChunks};
use crate::transcode::{Transcoder, Warning};

/// How `OUT` is written, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One record a line, any size.
    Lines,
    /// One upload-ready document, capped at the provider's limit.
    Document { limit: u64 },
}

fn layout(target: ConvertTarget, out: &Path) -> anyhow::Result<Layout> {
    let name = out.to_string_lossy();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name == "-" || name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        return Ok(Layout::Lines);
    }
    if name.ends_with(".json") {
        return match target {
            ConvertTarget::Auth0 => Ok(Layout::Document {
                limit: authmigrate_auth0::validate::MAX_FILE_BYTES as u64,
            }),
            ConvertTarget::Authgear => Ok(Layout::Document {
                limit: authmigrate_authgear::validate::MAX_BODY_BYTES as u64,
            }),
            ConvertTarget::Neutral => anyhow::bail!(
                "`{}`: the neutral format is NDJSON; name the output `.ndjson` or `.jsonl`",
                out.display()
            ),
        };
    }
    anyhow::bail!(
        "`{}`: cannot tell the output layout from the name; use `.ndjson`/`.jsonl` (one record a line) \
         or `.json` (one upload-ready document), optionally followed by `.gz`",
        out.display()
    )
}

enum Writer {
    Lines(NdjsonWriter<OutputWriter>),
    Array(JsonArrayWriter<OutputWriter>),
}

/// Tallies what a conversion did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) total: u64,
    pub(crate) converted: u64,
    pub(crate) failed: u64,
    /// Each distinct warning (e.g. "`identities` cannot be imported into Auth0: left out")
    /// and how many records it applies to.
    pub(crate) left_out: BTreeMap<String, u64>,
}

impl Tally {
    fn summary(&self) -> serde_json::Value {
        json!({ "total": self.total, "converted": self.converted, "failed": self.failed, "left_out": self.left_out })
    }
}

/// Distinct warning texts tallied one by one; the rest are counted together, so a
/// file whose users all carry different metadata keys cannot grow the tally.
const MAX_DISTINCT_WARNINGS: usize = 256;

impl Tally {
    /// Counts `n` records with `warning`.
    fn count(&mut self, warning: &str, n: u64) {
        if let Some(c) = self.left_out.get_mut(warning) {
            *c += n;
        } else if self.left_out.len() < MAX_DISTINCT_WARNINGS {
            self.left_out.insert(warning.to_owned(), n);
        } else {
            *self
                .left_out
                .entry("other warnings (see the report)".to_owned())
                .or_default() += n;
        }
    }

    /// Adds the warnings one job counted.
    fn merge(&mut self, mut job: JobTally) {
        job.end_run();
        for (warning, n) in &job.counts {
            self.count(warning, *n);
        }
    }
}

/// The warnings of one job. The records of an input tend to carry the same warnings in
/// the same order, so each warning is first looked for right after the last one found:
/// one string comparison in the common case. Transcoded records go further: a run of
/// records with the same [`Warning`]s is counted as one, and spelt out once.
#[derive(Default)]
struct JobTally {
    counts: Vec<(String, u64)>,
    positions: HashMap<String, usize>,
    next: usize,
    /// The warnings of the current run of transcoded records, and its length.
    run: Vec<Warning<'static>>,
    run_len: u64,
}

impl JobTally {
    fn count(&mut self, warning: &str) {
        self.count_n(warning, 1);
    }

    fn count_n(&mut self, warning: &str, n: u64) {
        let at = match self.counts.get(self.next) {
            Some((w, _)) if w == warning => self.next,
            _ => match self.positions.get(warning) {
                Some(&i) => i,
                None => {
                    self.positions.insert(warning.to_owned(), self.counts.len());
                    self.counts.push((warning.to_owned(), 0));
                    self.counts.len() - 1
                }
            },
        };
        self.counts[at].1 += n;
        self.next = at + 1;
    }

    /// Counts the warnings of one transcoded record.
    fn count_record(&mut self, warnings: &[Warning<'_>]) {
        if self.run_len > 0 && self.run.as_slice() == warnings {
            self.run_len += 1;
            return;
        }
        self.end_run();
        self.run.extend(warnings.iter().map(Warning::to_static));
        self.run_len = 1;
    }

    /// Counts the current run's warnings, spelt out.
    fn end_run(&mut self) {
        let (run, n) = (
            std::mem::take(&mut self.run),
            std::mem::take(&mut self.run_len),
        );
        let mut text = String::new();
        for w in &run {
            text.clear();
            w.write_text(&mut text);
            self.count_n(&text, n);
        }
        self.run = run;
        self.run.clear();
    }
}

/// One unit of work: a chunk of NDJSON text, or a block of records already read.
enum Job {
    Text(TextChunk),
    Records(Vec<InputRecord>),
}

/// Where the records come from.
enum Feed {
    /// NDJSON, read in chunks and parsed on every core.
    Text(TextChunks),
    /// Any other layout (or standard input), read record by record.
    Records(Records),
    /// Records through the spilling password join.
    Joined(Box<PasswordJoin<Records>>),
}

impl Feed {
    fn next_job(&mut self) -> anyhow::Result<Option<Job>> {
        let block: Vec<InputRecord> = match self {
            Self::Text(chunks) => return Ok(chunks.next_chunk()?.map(Job::Text)),
            Self::Records(r) => r.by_ref().take(PAR_BLOCK).collect(),
            Self::Joined(j) => j.by_ref().take(PAR_BLOCK).collect(),
        };
        Ok((!block.is_empty()).then_some(Job::Records(block)))
    }
}

/// What a worker needs to convert records.
struct Ctx<'a> {
    format: InputFormat,
    /// The target's own format, checked as written.
    native: crate::input::Native,
    mapper: &'a Mapper,
    index: Option<&'a PasswordIndex>,
    /// Auth0 export lines to Authgear without a `UserRecord`, when it applies.
    transcoder: Option<Transcoder<'a>>,
    /// Keep each record's e-mail and warnings (for `--report` and `--json`).
    detail: bool,
    /// Output buffers, back from the writer.
    buffers: BufferPool,
}

/// One record's outcome; `index` is relative to the job unless the job said otherwise.
struct Done {
    index: u64,
    email: Option<String>,
    /// The end of its JSON in the job's buffer (a `\n` follows), and its warnings.
    outcome: Result<(usize, Vec<String>), RecordFailure>,
}

/// A converted job: the records' JSON back to back, one a line, and their outcomes.
#[derive(Default)]
struct JobOut {
    buf: Vec<u8>,
    done: Vec<Done>,
    /// `Done::index` is the record's own index (record blocks), not relative.
    absolute: bool,
    tally: JobTally,
    join: JoinStats,
}

impl Ctx<'_> {
    fn run(&self, job: Job) -> anyhow::Result<JobOut> {
        let mut out = JobOut::default();
        match job {
            Job::Records(block) => {
                out.absolute = true;
                for InputRecord { index, record } in block {
                    self.one(index, record, &mut out)?;
                }
            }
            Job::Text(chunk) => {
                // Sized up front: grown by doubling, these buffers were copied over
                // about twice their final size per chunk. The writer gives them back.
                out.buf = self.buffers.take();
                out.buf.reserve(chunk.text.len() * 5 / 8);
                out.done = Vec::with_capacity(chunk.text.len() / 256);
                let mut index = 0u64;
                if chunk.too_long {
                    let reason = format!(
                        "line {}: longer than {} bytes: skipped",
                        chunk.first_line,
                        crate::pipeline::MAX_LINE_BYTES
                    );
                    self.one(
                        index,
                        Err(RecordFailure::new("INVALID_RECORD", reason)),
                        &mut out,
                    )?;
                    index += 1;
                }
                // Reused from line to line.
                let mut warnings = Vec::new();
                for (line, bytes) in chunk.lines() {
                    let record = match std::str::from_utf8(bytes) {
                        Ok(text) if text.trim().is_empty() => continue,
                        Ok(text) if self.transcoded(index, text, &mut warnings, &mut out)? => {
                            index += 1;
                            continue;
                        }
                        Ok(text) => crate::input::parse_line(self.format, &self.native, line, text),
                        Err(_) => Err(RecordFailure::new(
                            "INVALID_RECORD",
                            format!("line {line}: not valid UTF-8"),
                        )),
                    };
                    self.one(index, record, &mut out)?;
                    index += 1;
                }
            }
        }
        Ok(out)
    }

    /// Converts one line through the [`Transcoder`], if there is one and the line has
    /// the shape it handles; false: use the general path.
    fn transcoded<'t>(
        &self,
        index: u64,
        text: &'t str,
        warnings: &mut Vec<Warning<'t>>,
        out: &mut JobOut,
    ) -> anyhow::Result<bool> {
        let Some(t) = &self.transcoder else {
            return Ok(false);
        };
        warnings.clear();
        let Some(done) = t.transcode(text, self.index, &mut out.join, &mut out.buf, warnings)?
        else {
            return Ok(false);
        };
        out.tally.count_record(warnings);
        let warnings = if self.detail {
            warnings.iter().map(Warning::text).collect()
        } else {
            Vec::new()
        };
        let end = out.buf.len();
        out.buf.push(b'\n');
        out.done.push(Done {
            index,
            email: done.email.filter(|_| self.detail).map(Cow::into_owned),
            outcome: Ok((end, warnings)),
        });
        Ok(true)
    }

    fn one(
        &self,
        index: u64,
        record: Result<UserRecord, RecordFailure>,
        out: &mut JobOut,
    ) -> anyhow::Result<()> {
        let (email, encoded) = match record {
            Err(failure) => (None, Err(failure)),
            Ok(mut user) => {
                if let Some(ix) = self.index {
                    ix.attach(&mut user, &mut out.join)?;
                }
                let encoded = self.mapper.encode(&user);
                let email = if self.detail || encoded.is_err() {
                    user.email.take()
                } else {
                    None
                };
                (email, encoded)
            }
        };
        let outcome = encoded.map(|Encoded { json, warnings }| {
            out.buf.extend_from_slice(&json);
            let end = out.buf.len();
            out.buf.push(b'\n');
            for w in &warnings {
                out.tally.count(w);
            }
            (end, if self.detail { warnings } else { Vec::new() })
        });
        out.done.push(Done {
            index,
            email,
            outcome,
        });
        Ok(())
    }
}

pub(crate) fn run(args: ConvertArgs, out: &Output) -> anyhow::Result<Status> {
    let mapper = Mapper::new(args.to, &args.map)?;
    let layout = layout(args.to, &args.out)?;
    // Checked and read before the password hashes: a wrong input is refused at once.
    let mut mfa = match &args.mfa_secrets {
        Some(path) => {
            super::mfa_join::check_inputs(std::slice::from_ref(&args.input))?;
            Some(super::mfa_join::load(path, out)?)
        }
        None => None,
    };
    let index = match &args.password_hashes {
        Some(path) => super::hashes::index(path, out)?,
        None => None,
    };
    let spill_join = args.password_hashes.is_some() && index.is_none();
    let stdin = args.input.as_os_str() == "-";
    let format = if stdin {
        None
    } else {
        Some(authmigrate_core::io::detect_format(&args.input)?)
    };
    if let Some(format) = format {
        crate::input::refuse_password_export(format, &args.input)?;
    }
    // NDJSON is read in chunks and parsed on every core; other layouts stream through
    // the record reader. The spilling join needs the records in order, as an iterator,
    // and so does the MFA join (its secrets are looked up by source id in a store that
    // one thread reads): with `--mfa-secrets`, every record takes the record path, never
    // the chunked text path nor the transcoder, which write records without a
    // `UserRecord` to join to.
    let mut readers: Vec<ReaderStatus> = Vec::new();
    let mut mfa_tap = None;
    let mut feed = match format {
        Some(format) if format.is_ndjson() && !spill_join && mfa.is_none() => {
            Feed::Text(TextChunks::open(&args.input)?)
        }
        _ => {
            let records: Records =
                match crate::input::parallel_ndjson(&args.input, mapper.native())? {
                    Some((records, status)) => {
                        readers.push(status);
                        records
                    }
                    None => {
                        let inputs = Inputs::new(vec![args.input.clone()]).native(mapper.native());
                        readers = inputs.error_handles();
                        Box::new(inputs)
                    }
                };
            let records = match mfa.take() {
                Some(secrets) => {
                    let (records, tap) = super::mfa_join::join(records, secrets, false);
                    mfa_tap = Some(tap);
                    records
                }
                None => records,
            };
            match &args.password_hashes {
                Some(path) if spill_join => {
                    Feed::Joined(Box::new(super::hashes::join(records, path, out)?))
                }
                _ => Feed::Records(records),
            }
        }
    };
    let ctx = Ctx {
        format: format.unwrap_or(InputFormat::Neutral),
        native: mapper.native(),
        mapper: &mapper,
        index: index.as_ref(),
        transcoder: match (&mapper, format) {
            (Mapper::Authgear(o), Some(InputFormat::Auth0Export)) if mfa_tap.is_none() => {
                Transcoder::new(o)
            }
            _ => None,
        },
        detail: args.report.is_some() || out.json(),
        buffers: BufferPool::new(CHUNK_BYTES / 8..=4 * CHUNK_BYTES),
    };

    // Written next to OUT and renamed when complete: a failed run leaves no half file.
    let partial = partial_path(&args.out);
    let result = (|| -> anyhow::Result<(Tally, JoinStats)> {
        let sink = create_output(&partial, true)?;
        let mut writer = match (layout, &mapper) {
            (Layout::Lines, _) => Writer::Lines(NdjsonWriter::new(sink)),
            (Layout::Document { .. }, Mapper::Authgear(o)) => {
                let (prefix, suffix) =
                    authmigrate_authgear::format::body_envelope(o.identifier, false);
                Writer::Array(JsonArrayWriter::with_envelope(sink, prefix, suffix))
            }
            (Layout::Document { .. }, _) => Writer::Array(JsonArrayWriter::new(sink)),
        };
        let mut report = match &args.report {
            Some(path) => Some(ConvertReport::create(path)?),
            None => None,
        };
        let bar = out.counter("converting");
        let mut tally = Tally::default();
        let mut join = JoinStats::default();
        let write_err = || format!("cannot write `{}`", args.out.display());
        crate::pipeline::ordered(
            || feed.next_job(),
            |job| ctx.run(job),
            |job| {
                let mut job = job?;
                let base = tally.total;
                match &mut writer {
                    Writer::Lines(w) => w.get_mut().write_all(&job.buf).with_context(write_err)?,
                    Writer::Array(w) => {
                        let mut start = 0;
                        for d in &job.done {
                            let Ok((end, _)) = &d.outcome else { continue };
                            let bytes = &job.buf[start..*end];
                            start = end + 1;
                            if let Layout::Document { limit } = layout
                                && w.len_with(bytes.len()) > limit
                            {
                                let index = if job.absolute {
                                    d.index
                                } else {
                                    base + d.index
                                };
                                return Err(crate::Hinted {
                                    message: format!(
                                        "`{}` would exceed the provider's upload limit of {limit} bytes at record {index}",
                                        args.out.display()
                                    ),
                                    hint: "write `.ndjson` instead (any size), or import directly: \
                                           `authmigrate import` splits uploads automatically"
                                        .into(),
                                }
                                .into());
                            }
                            w.write_encoded(bytes).with_context(write_err)?;
                        }
                    }
                }
                ctx.buffers.put(std::mem::take(&mut job.buf));
                tally.total += job.done.len() as u64;
                bar.inc(job.done.len() as u64);
                tally.merge(job.tally);
                join.add(&job.join);
                for d in job.done {
                    let index = if job.absolute {
                        d.index
                    } else {
                        base + d.index
                    };
                    let line = match d.outcome {
                        Ok((_, warnings)) => {
                            tally.converted += 1;
                            if warnings.is_empty() {
                                continue;
                            }
                            json!({ "index": index, "email": d.email, "outcome": "converted", "warnings": warnings })
                        }
                        Err(failure) => {
                            tally.failed += 1;
                            bar.suspend(|| out.say(format!("record {index}: failed: {failure}")));
                            json!({ "index": index, "email": d.email, "outcome": "failed", "code": failure.code, "message": failure.message })
                        }
                    };
                    if let Some(r) = &mut report {
                        r.record(&line)?;
                    }
                    out.event("record", line);
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        bar.finish_and_clear();
        if let Some(e) = readers.iter().find_map(|r| r.take_error()) {
            return Err(anyhow::Error::new(e).context("the input could not be read to its end"));
        }
        match std::mem::replace(&mut feed, Feed::Records(Box::new(std::iter::empty()))) {
            Feed::Joined(j) => join = j.finish()?,
            _ => {
                if let Some(ix) = &index {
                    ix.finish_stats(&mut join);
                }
            }
        }
        match writer {
            Writer::Lines(w) => w.finish(),
            Writer::Array(w) => w.finish(),
        }
        .with_context(write_err)?
        .finish()?;
        let mfa_joined = mfa_tap.as_ref().map(super::mfa_join::MfaTap::count);
        let summary = summary(
            &tally,
            args.password_hashes.is_some().then_some(&join),
            mfa_joined,
        );
        if let Some(r) = report {
            r.finish(&summary)?;
        }
        Ok((tally, join))
    })();
    let (tally, join) = match result {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
    let joined = args.password_hashes.is_some().then_some(&join);
    if let Some(tap) = &mfa_tap {
        tap.events(out);
    }
    out.event(
        "summary",
        summary(&tally, joined, mfa_tap.as_ref().map(|t| t.count())),
    );
    say_tally(out, &tally, &args.out);
    if let Some(j) = joined {
        super::hashes::say_stats(out, j);
    }
    if let Some(tap) = &mfa_tap {
        tap.say(out);
    }
    Ok(if tally.failed > 0 {
        Status::SomeFailed
    } else {
        Status::Ok
    })
}

/// The `summary` of a conversion, with the password join's counts and the number of
/// users given their TOTP secret when there were such joins.
fn summary(tally: &Tally, join: Option<&JoinStats>, mfa_joined: Option<u64>) -> serde_json::Value {
    let mut s = tally.summary();
    if let Some(o) = s.as_object_mut() {
        if let Some(j) = join {
            o.insert("passwords".into(), super::hashes::stats_json(j));
        }
        if let Some(n) = mfa_joined {
            o.insert("mfa_joined".into(), n.into());
        }
    }
    s
}

/// `users.json.gz` → `users.partial.json.gz` (the layout and gzip still follow the name).
fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = match name.find('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name.as_str(), ""),
    };
    out.with_file_name(format!(".{stem}.partial{ext}"))
}

fn say_tally(out: &Output, tally: &Tally, path: &Path) {
    out.say(format!(
        "converted {} of {} records into `{}`; {} failed",
        tally.converted,
        tally.total,
        path.display(),
        tally.failed
    ));
    for (what, n) in &tally.left_out {
        out.say(format!("  {n} records: {what}"));
    }
}

/// The `--report` of `convert`: `{"records":[...],"summary":{...}}`, streamed in input
/// order (records with a failure or a warning only), summary last.
struct ConvertReport {
    path: PathBuf,
    tmp: PathBuf,
    writer: std::io::BufWriter<std::fs::File>,
    first: bool,
}

impl ConvertReport {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let tmp = path.with_extension("json.partial");
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create `{}`", tmp.display()))?;
        let mut writer = std::io::BufWriter::new(file);
        writer.write_all(b"{\"records\":[")?;
        Ok(Self {
            path: path.to_owned(),
            tmp,
            writer,
            first: true,
        })
    }

    fn record(&mut self, value: &serde_json::Value) -> anyhow::Result<()> {
        if !self.first {
            self.writer.write_all(b",")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.writer, value)?;
        Ok(())
    }

    fn finish(mut self, summary: &serde_json::Value) -> anyhow::Result<()> {
        self.writer.write_all(b"],\"summary\":")?;
        serde_json::to_writer(&mut self.writer, summary)?;
        self.writer.write_all(b"}\n")?;
        self.writer.flush()?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot write `{}`", self.path.display()))?;
        Ok(())
    }
}
