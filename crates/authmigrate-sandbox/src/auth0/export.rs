//! Bulk export jobs: `POST /api/v2/jobs/users-exports` and the NDJSON (gzip) file.

use std::io::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::import::{bad_request, is_connection_id, job_json, schedule};
use super::{Auth0State, Inner, Job, JobKind, JobOutcome};

/// Reads a dotted path such as `identities[0].connection` or `user_metadata.x`.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        let (name, idx) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

pub(crate) fn run_export(
    inner: &Inner,
    connection: Option<&str>,
    fields: Option<&[Value]>,
    limit: Option<u64>,
) -> JobOutcome {
    let mut ndjson = Vec::new();
    let users = inner
        .users
        .iter()
        .filter(|u| connection.is_none_or(|c| u.connection == c))
        .take(limit.map_or(usize::MAX, |l| l as usize));
    for u in users {
        let profile = u.to_json();
        let line = match fields {
            Some(fields) => {
                let mut m = Map::new();
                for f in fields {
                    let Some(name) = f.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    let key = f.get("export_as").and_then(Value::as_str).unwrap_or(name);
                    if let Some(v) = lookup(&profile, name) {
                        m.insert(key.to_owned(), v.clone());
                    }
                }
                Value::Object(m)
            }
            None => profile,
        };
        ndjson.extend_from_slice(line.to_string().as_bytes());
        ndjson.push(b'\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&ndjson);
    JobOutcome::Export {
        gz: gz.finish().unwrap_or_default(),
    }
}

/// `POST /api/v2/jobs/users-exports`.
pub(crate) async fn create_export(
    State(state): State<Arc<Auth0State>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = state.authorize(&headers, &["read:users"]) {
        return r;
    }
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return bad_request("Payload validation error: 'Invalid JSON body'."),
        }
    };
    let obj = body.as_object().cloned().unwrap_or_default();
    for k in obj.keys() {
        if !["connection_id", "format", "limit", "fields"].contains(&k.as_str()) {
            return bad_request(&format!(
                "Payload validation error: 'Additional properties not allowed: {k}'."
            ));
        }
    }
    let format = match obj.get("format") {
        None => "json".to_owned(),
        Some(Value::String(f)) if f == "json" => f.clone(),
        Some(Value::String(f)) if f == "csv" => {
            return bad_request("The csv export format is not supported by the sandbox.");
        }
        Some(_) => {
            return bad_request(
                "Payload validation error: 'No enum match for: format' on property format.",
            );
        }
    };
    let limit = match obj.get("limit") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                return bad_request(
                    "Payload validation error: 'Value is less than minimum 1' on property limit.",
                );
            }
        },
    };
    let fields = match obj.get("fields") {
        None => None,
        Some(Value::Array(a))
            if a.iter()
                .all(|f| f.get("name").and_then(Value::as_str).is_some()) =>
        {
            Some(a.clone())
        }
        Some(_) => {
            return bad_request(
                "Payload validation error: 'Missing required property: name' on property fields.",
            );
        }
    };
    let latency = state.faults.job_latency();
    let mut inner = state.lock();
    let (connection_id, connection) = match obj.get("connection_id") {
        None => (None, None),
        Some(Value::String(id)) => {
            if !is_connection_id(id) {
                return bad_request(
                    "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id.",
                );
            }
            match inner.connection_by_id(id) {
                Some(c) => (Some(c.id.clone()), Some(c.name.clone())),
                None => return bad_request("The connection does not exist."),
            }
        }
        Some(_) => {
            return bad_request(
                "Payload validation error: 'Expected type string' on property connection_id.",
            );
        }
    };
    let id = format!("job_{}", inner.random_alnum(16));
    let job = Job {
        id,
        kind: JobKind::Export {
            connection_id,
            connection,
            format,
            fields,
            limit,
        },
        created_at: inner.now_iso(),
        created: inner.clock.now(),
        latency,
        outcome: None,
        fail_after: None,
        failure: None,
    };
    let body = job_json(&job, None, job.created);
    inner.jobs.push(job);
    drop(inner);
    schedule(&state, latency);
    (StatusCode::OK, axum::Json(body)).into_response()
}
