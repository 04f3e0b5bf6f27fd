//! `authmigrate convert --to neutral|auth0|authgear IN --out OUT`: any supported input to
//! any target, offline, streaming in bounded memory (the optional password-hash join
//! spills to disk), with every field the target cannot hold reported per record and
//! counted in the summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use authmigrate_core::backend::RecordFailure;
use authmigrate_core::driver::InputRecord;
use authmigrate_core::io::ReaderStatus;
use authmigrate_core::io::{JsonArrayWriter, NdjsonWriter, OutputWriter, create_output};
use serde_json::json;

use super::map::Mapper;
use crate::Status;
use crate::cli::{ConvertArgs, ConvertTarget};
use crate::input::{Inputs, PAR_BLOCK, Records};
use crate::output::Output;

/// One converted record: index, e-mail, and its JSON with warnings or why it failed.
type Converted = (
    u64,
    Option<String>,
    Result<(Vec<u8>, Vec<String>), RecordFailure>,
);

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
    fn count(&mut self, warning: &str) {
        if let Some(n) = self.left_out.get_mut(warning) {
            *n += 1;
        } else if self.left_out.len() < MAX_DISTINCT_WARNINGS {
            self.left_out.insert(warning.to_owned(), 1);
        } else {
            *self
                .left_out
                .entry("other warnings (see the report)".to_owned())
                .or_default() += 1;
        }
    }
}

pub(crate) fn run(args: ConvertArgs, out: &Output) -> anyhow::Result<Status> {
    use rayon::prelude::*;

    let mapper = Mapper::new(args.to, &args.map)?;
    let layout = layout(args.to, &args.out)?;
    // NDJSON inputs are parsed on every core; other layouts stream through the reader.
    let (inputs, readers): (Records, Vec<ReaderStatus>) =
        match crate::input::parallel_ndjson(&args.input)? {
            Some((records, status)) => (records, vec![status]),
            None => {
                let inputs = Inputs::new(vec![args.input.clone()]);
                let readers = inputs.error_handles();
                (Box::new(inputs), readers)
            }
        };
    let mut records: Records = match &args.password_hashes {
        Some(path) => Box::new(super::hashes::join(inputs, path, out)?),
        None => inputs,
    };

    // Written next to OUT and renamed when complete: a failed run leaves no half file.
    let partial = partial_path(&args.out);
    let result = (|| -> anyhow::Result<Tally> {
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
        let mut block: Vec<InputRecord> = Vec::with_capacity(PAR_BLOCK);
        loop {
            block.clear();
            block.extend(records.by_ref().take(PAR_BLOCK));
            if block.is_empty() {
                break;
            }
            // Map and serialize on every core; write in input order.
            let done: Vec<Converted> = block
                .par_drain(..)
                .map(|InputRecord { index, record }| {
                    let email = record.as_ref().ok().and_then(|u| u.email.clone());
                    let mapped = record.and_then(|user| mapper.map(&user)).and_then(|m| {
                        serde_json::to_vec(&m.json)
                            .map(|bytes| (bytes, m.warnings))
                            .map_err(|e| RecordFailure::new("INVALID_RECORD", e.to_string()))
                    });
                    (index, email, mapped)
                })
                .collect();
            for (index, email, mapped) in done {
                tally.total += 1;
                bar.inc(1);
                match mapped {
                    Ok((bytes, warnings)) => {
                        match &mut writer {
                            Writer::Lines(w) => w.get_mut().write_all(&bytes).and_then(|()| w.get_mut().write_all(b"\n")),
                            Writer::Array(w) => {
                                if let Layout::Document { limit } = layout
                                    && w.len_with(bytes.len()) > limit
                                {
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
                                w.write_encoded(&bytes).map(|_| ())
                            }
                        }
                        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
                        tally.converted += 1;
                        if !warnings.is_empty() {
                            for w in &warnings {
                                tally.count(w);
                            }
                            let line = json!({ "index": index, "email": email, "outcome": "converted", "warnings": warnings });
                            if let Some(r) = &mut report {
                                r.record(&line)?;
                            }
                            out.event("record", line);
                        }
                    }
                    Err(failure) => {
                        tally.failed += 1;
                        let line = json!({ "index": index, "email": email, "outcome": "failed", "code": failure.code, "message": failure.message });
                        if let Some(r) = &mut report {
                            r.record(&line)?;
                        }
                        out.event("record", line);
                        bar.suspend(|| out.say(format!("record {index}: failed: {failure}")));
                    }
                }
            }
        }
        bar.finish_and_clear();
        if let Some(e) = readers.iter().find_map(|r| r.take_error()) {
            return Err(anyhow::Error::new(e).context("the input could not be read to its end"));
        }
        match writer {
            Writer::Lines(w) => w.finish(),
            Writer::Array(w) => w.finish(),
        }
        .with_context(|| format!("cannot write `{}`", args.out.display()))?
        .finish()?;
        let summary = tally.summary();
        if let Some(r) = report {
            r.finish(&summary)?;
        }
        Ok(tally)
    })();
    let tally = match result {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
    out.event("summary", tally.summary());
    say_tally(out, &tally, &args.out);
    Ok(if tally.failed > 0 {
        Status::SomeFailed
    } else {
        Status::Ok
    })
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
