//! `POST /_api/admin/users/import` and `GET /_api/admin/users/import/{id}` (§1, §2).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::api::{
    IMPORT_BODY_LIMIT, api_error, check_json_content_type, dropped, error_response, new_id,
    parse_json, read_body, result_response, rfc3339, unexpected_error,
};
use super::schema::validate_request;
use super::store::{Detail, Outcome, Project, import_record};
use super::{AuthgearState, ImportFault, object};

/// How long a job can be read (`JobTTL = 24*time.Hour`, from creation).
const JOB_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// One task of a job (up to `records_per_task` records).
#[derive(Debug)]
struct Task {
    offset: usize,
    records: Vec<Value>,
    completed_at: Option<jiff::Timestamp>,
    error: Option<Value>,
    details: Vec<Detail>,
}

/// An import job.
#[derive(Debug)]
pub(super) struct ImportJob {
    id: String,
    created_at: jiff::Timestamp,
    identifier: String,
    upsert: bool,
    fails: bool,
    tasks: Vec<Task>,
}

impl ImportJob {
    /// `AggregateTaskResult` rendered as the `result` object.
    fn to_json(&self) -> Value {
        let mut r = Map::new();
        r.insert("id".to_owned(), json!(self.id));
        r.insert("created_at".to_owned(), rfc3339(self.created_at));
        let pending = self.tasks.iter().any(|t| t.completed_at.is_none());
        if pending {
            r.insert("status".to_owned(), json!("pending"));
            return Value::Object(r);
        }
        if let Some(done) = self.tasks.iter().filter_map(|t| t.completed_at).max() {
            r.insert("completed_at".to_owned(), rfc3339(done));
        }
        r.insert("status".to_owned(), json!("completed"));
        if let Some(err) = self.tasks.iter().rev().find_map(|t| t.error.clone()) {
            r.insert("error".to_owned(), err);
        }
        let mut counts = [0usize; 4];
        let mut total = 0;
        let mut details = Vec::new();
        for task in &self.tasks {
            for d in &task.details {
                total += 1;
                let slot = match d.outcome {
                    Outcome::Inserted => 0,
                    Outcome::Updated => 1,
                    Outcome::Skipped => 2,
                    Outcome::Failed => 3,
                };
                counts[slot] += 1;
                details.push(d.to_json());
            }
        }
        r.insert(
            "summary".to_owned(),
            object([
                ("total", json!(total)),
                ("inserted", json!(counts[0])),
                ("updated", json!(counts[1])),
                ("skipped", json!(counts[2])),
                ("failed", json!(counts[3])),
            ]),
        );
        if !details.is_empty() {
            r.insert("details".to_owned(), Value::Array(details));
        }
        Value::Object(r)
    }
}

/// `POST /_api/admin/users/import`.
pub(super) async fn create(
    State(state): State<Arc<AuthgearState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(err) = check_json_content_type(&headers) {
        return error_response(err);
    }
    let bytes = match read_body(body, IMPORT_BODY_LIMIT).await {
        Ok(b) => b,
        Err(err) => return error_response(err),
    };
    let request = match parse_json(&bytes) {
        Ok(v) => v,
        Err(err) => return error_response(err),
    };
    let causes = validate_request(&request);
    if !causes.is_empty() {
        return error_response(causes.into_error("invalid request body"));
    }
    let identifier = request["identifier"].as_str().unwrap_or("email").to_owned();
    let upsert = request
        .get("upsert")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records = match request.get("records") {
        Some(Value::Array(r)) => r.clone(),
        _ => return error_response(unexpected_error()),
    };
    let n = records.len() as u64;
    let per_task = state.config.records_per_task;
    let now = state.now();
    let (id, response, task_count, fault) = {
        let mut inner = state.lock();
        let reserved = inner.usage.reserve(
            now,
            state.config.import_daily_limit,
            state.config.import_usage_limit,
            n,
        );
        if let Err(period) = reserved {
            return error_response(super::quota::refusal(period));
        }
        let creation_number = inner.imports_created;
        inner.imports_created += 1;
        let tasks: Vec<Task> = records
            .chunks(per_task)
            .enumerate()
            .map(|(i, chunk)| Task {
                offset: i * per_task,
                records: chunk.to_vec(),
                completed_at: None,
                error: None,
                details: Vec::new(),
            })
            .collect();
        let job = ImportJob {
            id: new_id("userimport_"),
            created_at: now,
            identifier,
            upsert,
            fails: state.faults.job_fails(creation_number),
            tasks,
        };
        let response = job.to_json();
        let id = job.id.clone();
        let task_count = job.tasks.len();
        inner.imports.insert(id.clone(), job);
        let fault = inner.import_faults.get(&creation_number).copied();
        (id, response, task_count, fault)
    };
    let st = state.clone();
    tokio::spawn(async move { run(st, id, task_count).await });
    match fault {
        None => result_response(response),
        Some(ImportFault::Error500) => error_response(unexpected_error()),
        Some(ImportFault::Drop) => dropped(),
    }
}

/// Processes the job's tasks: task `i` of `n` is due `latency × (i + 1) / n` after now.
async fn run(state: Arc<AuthgearState>, id: String, task_count: usize) {
    let start = tokio::time::Instant::now();
    let latency = state.faults.job_latency();
    for i in 0..task_count {
        let factor = (i + 1) as f64 / task_count as f64;
        tokio::time::sleep_until(start + latency.mul_f64(factor)).await;
        state.wait_unpaused().await;
        let _turn = state.queue.lock().await;
        let now = state.now();
        let mut guard = state.lock();
        let inner = &mut *guard;
        let Some(job) = inner.imports.get_mut(&id) else {
            return;
        };
        let (identifier, upsert, fails) = (job.identifier.clone(), job.upsert, job.fails);
        let Some(task) = job.tasks.get_mut(i) else {
            return;
        };
        if fails {
            task.error = Some(unexpected_error());
        } else {
            let records = std::mem::take(&mut task.records);
            let project = Project {
                config: &state.config,
                directory: &inner.directory,
                now,
            };
            for (j, record) in records.iter().enumerate() {
                let detail = import_record(
                    &mut inner.store,
                    &project,
                    &identifier,
                    upsert,
                    task.offset + j,
                    record,
                );
                task.details.push(detail);
            }
        }
        task.completed_at = Some(now);
    }
}

/// `GET /_api/admin/users/import/{id}`.
pub(super) async fn get(
    State(state): State<Arc<AuthgearState>>,
    Path(id): Path<String>,
) -> Response {
    let now = state.now();
    let mut inner = state.lock();
    // The job record lives 24 h from its creation (`JobTTL`), then 404 `TaskNotFound`.
    let expired = inner
        .imports
        .get(&id)
        .is_some_and(|job| now >= job.created_at + JOB_TTL);
    if expired {
        inner.imports.remove(&id);
    }
    match inner.imports.get(&id) {
        Some(job) => result_response(job.to_json()),
        None => error_response(api_error(
            "NotFound",
            "TaskNotFound",
            "task not found",
            None,
        )),
    }
}
