//! `authmigrate validate --for auth0|authgear FILE`: every documented rule, offline.
//!
//! A provider's native file (an Auth0 bulk-import array, an Authgear import body) is
//! checked as it is. Any other supported format is first mapped the way `import`
//! would map it, and the mapped records are checked, so the answer is "would this
//! file import?". Problems are listed as record index, field and reason; exit 0 when
//! there is no error (warnings allowed), 1 otherwise.

use std::str::FromStr;

use anyhow::Context;
use authmigrate_auth0::validate as a0;
use authmigrate_authgear::format::{AuthgearMapOptions, Identifier};
use authmigrate_authgear::validate as ag;
use authmigrate_core::io::{InputFormat, RecordReader};
use serde_json::{Map, Value, json};

use crate::Status;
use crate::cli::{Provider, ValidateArgs};
use crate::input::to_user_record;
use crate::output::Output;

/// One problem: `index` None = the file as a whole.
struct Found {
    index: Option<u64>,
    field: String,
    reason: String,
    error: bool,
}

#[derive(Default)]
struct Tally {
    records: u64,
    errors: u64,
    warnings: u64,
    bad_records: u64,
}

pub(crate) fn run(args: ValidateArgs, out: &Output) -> anyhow::Result<Status> {
    let path = args.file.clone();
    let mut reader = RecordReader::open_auto(&path)?;
    let format = reader.format();
    crate::input::refuse_password_export(format, &path)?;
    let mut tally = Tally::default();
    let shown = path.display().to_string();
    let emit = |f: Found, tally: &mut Tally| {
        if f.error {
            tally.errors += 1;
        } else {
            tally.warnings += 1;
        }
        out.event(
            "problem",
            json!({ "index": f.index, "field": f.field, "reason": f.reason,
                    "severity": if f.error { "error" } else { "warning" } }),
        );
        if !out.json() {
            let level = if f.error { "" } else { "warning: " };
            let at = f.index.map(|i| format!(", record {i}")).unwrap_or_default();
            let field = if f.field.is_empty() {
                String::new()
            } else {
                format!(": field `{}`", f.field)
            };
            println!("{shown}{at}{field}: {level}{}", f.reason);
        }
    };

    // File-level checks for native files (size limits apply to one upload).
    let native = matches!(
        (args.target, format),
        (Provider::Auth0, InputFormat::Auth0Bulk) | (Provider::Authgear, InputFormat::AuthgearBody)
    );
    if native && path.as_os_str() != "-" && !path.to_string_lossy().ends_with(".gz") {
        let size = std::fs::metadata(&path)
            .with_context(|| format!("cannot read `{shown}`"))?
            .len();
        let problem = match args.target {
            Provider::Auth0 => a0::check_file_size(size).map(|p| (p.field, p.reason)),
            Provider::Authgear => ag::check_body_size(size).map(|p| (p.field, p.reason)),
        };
        if let Some((field, reason)) = problem {
            emit(
                Found {
                    index: None,
                    field,
                    reason,
                    error: true,
                },
                &mut tally,
            );
        }
    }

    // The reader learns an Authgear body's top-level keys when it reaches `records`.
    let mut pending = reader.try_next()?;
    // Authgear: the identifier comes from the body, else `--identifier`, else email.
    let identifier = match (args.target, format) {
        (Provider::Authgear, InputFormat::AuthgearBody) => {
            let id_value = reader
                .authgear_identifier()
                .map(|s| Value::String(s.to_owned()));
            let upsert_value = reader.authgear_upsert().map(Value::Bool);
            let (id, problems) =
                ag::check_body_top(id_value.as_ref(), upsert_value.as_ref(), ["records"]);
            for p in problems {
                let error = p.is_error();
                emit(
                    Found {
                        index: None,
                        field: p.field,
                        reason: p.reason,
                        error,
                    },
                    &mut tally,
                );
            }
            id.unwrap_or_default()
        }
        _ => match &args.identifier {
            Some(s) => {
                Identifier::from_str(s).map_err(|e| anyhow::anyhow!("`--identifier`: {e}"))?
            }
            None => Identifier::Email,
        },
    };
    let map_auth0 = authmigrate_auth0::format::Auth0MapOptions::default();
    // The same parsing as `import`/`convert` (one definition of `--custom-attribute`).
    let map_authgear = AuthgearMapOptions {
        identifier,
        ..crate::commands::map::authgear_options(&crate::cli::MapArgs {
            custom_attributes: args.custom_attributes.clone(),
            reserved_usernames: args.reserved_usernames.clone(),
            ..crate::cli::MapArgs::default()
        })?
    };
    let mut duplicates = a0::Duplicates::new();

    while let Some(raw) = match pending.take() {
        Some(raw) => Some(raw),
        None => reader.try_next()?,
    } {
        tally.records += 1;
        let index = raw.index;
        let before = tally.errors;
        let obj = match raw.value {
            Ok(obj) => obj,
            Err(reason) => {
                emit(
                    Found {
                        index: Some(index),
                        field: String::new(),
                        reason,
                        error: true,
                    },
                    &mut tally,
                );
                tally.bad_records += 1;
                continue;
            }
        };
        // What the provider would receive: the object itself for native files,
        // else the mapped record.
        let (target_obj, mapping_warnings): (Map<String, Value>, Vec<String>) = if native {
            (obj, Vec::new())
        } else {
            let mapped = to_user_record(format, obj).and_then(|user| match args.target {
                Provider::Auth0 => authmigrate_auth0::format::to_bulk_user(&user, &map_auth0)
                    .map(|m| (m.json, m.warnings)),
                Provider::Authgear => {
                    authmigrate_authgear::format::to_import_record(&user, &map_authgear)
                        .map(|m| (m.json, m.warnings))
                }
            });
            match mapped {
                Ok((Value::Object(o), w)) => (o, w),
                Ok(_) => unreachable!("mappers always produce objects"),
                Err(failure) => {
                    // A username the rules refuse is a problem of its field.
                    let (field, reason) = match failure.code.as_str() {
                        "INVALID_USERNAME" => (
                            "preferred_username".to_owned(),
                            failure
                                .message
                                .strip_prefix("`preferred_username` ")
                                .unwrap_or(&failure.message)
                                .to_owned(),
                        ),
                        _ => (String::new(), failure.to_string()),
                    };
                    emit(
                        Found {
                            index: Some(index),
                            field,
                            reason,
                            error: true,
                        },
                        &mut tally,
                    );
                    tally.bad_records += 1;
                    continue;
                }
            }
        };
        for w in mapping_warnings {
            emit(
                Found {
                    index: Some(index),
                    field: String::new(),
                    reason: w,
                    error: false,
                },
                &mut tally,
            );
        }
        let problems: Vec<(String, String, bool)> = match args.target {
            Provider::Auth0 => {
                let mut ps: Vec<_> = a0::check_user(&target_obj)
                    .into_iter()
                    .map(|p| (p.field.clone(), p.reason.clone(), p.is_error()))
                    .collect();
                ps.extend(
                    duplicates
                        .check(index as usize, &target_obj)
                        .into_iter()
                        .map(|p| (p.field.clone(), p.reason.clone(), p.is_error())),
                );
                ps
            }
            Provider::Authgear => {
                let mut ps: Vec<_> = ag::check_record_with(
                    &target_obj,
                    identifier,
                    &map_authgear.reserved_usernames,
                )
                .into_iter()
                .map(|p| (p.field.clone(), p.reason.clone(), p.is_error()))
                .collect();
                // A native body's typed attributes are checked as written: the server
                // fails the whole record on a value of the wrong type.
                if native {
                    ps.extend(typed_attribute_problems(&target_obj, &map_authgear));
                }
                ps
            }
        };
        for (field, reason, error) in problems {
            emit(
                Found {
                    index: Some(index),
                    field,
                    reason,
                    error,
                },
                &mut tally,
            );
        }
        if tally.errors > before {
            tally.bad_records += 1;
        }
    }
    if tally.records == 0 {
        emit(
            Found {
                index: None,
                field: String::new(),
                reason: "holds no users".into(),
                error: true,
            },
            &mut tally,
        );
    }
    let valid = tally.errors == 0;
    out.event(
        "summary",
        json!({ "file": shown, "format": format.name(), "for": match args.target { Provider::Auth0 => "auth0", Provider::Authgear => "authgear" },
                "records": tally.records, "invalid_records": tally.bad_records,
                "errors": tally.errors, "warnings": tally.warnings, "valid": valid }),
    );
    out.say(format!(
        "{shown} ({}): {} records, {} with errors; {} errors, {} warnings",
        format.name(),
        tally.records,
        tally.bad_records,
        tally.errors,
        tally.warnings
    ));
    Ok(if valid {
        Status::Ok
    } else {
        Status::SomeFailed
    })
}

/// `custom_attributes.DST` values of an Authgear record that do not fit their declared
/// `--custom-attribute ...:TYPE` exactly, as errors.
fn typed_attribute_problems(
    record: &Map<String, Value>,
    options: &AuthgearMapOptions,
) -> Vec<(String, String, bool)> {
    let Some(Value::Object(attrs)) = record.get("custom_attributes") else {
        return Vec::new();
    };
    options
        .custom_attribute_types
        .iter()
        .filter_map(|(dst, ty)| {
            let v = attrs.get(dst)?;
            let problem = match ty.convert(v) {
                Ok(converted) if &converted == v => return None,
                Ok(_) => format!(
                    "the value does not fit `{ty}` as written (a native body is not converted)"
                ),
                Err(reason) => reason,
            };
            Some((format!("custom_attributes.{dst}"), problem, true))
        })
        .collect()
}
