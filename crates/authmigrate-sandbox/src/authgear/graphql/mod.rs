//! `POST /_api/admin/graphql` (authgear-admin-graphql.md §1–3): the Admin GraphQL API's
//! user look-ups, `deleteUser`, roles and groups.
//!
//! Transport as §1 describes it: the admin JWT and content-type rules of the other admin
//! routes (`application/json` `{query, variables, operationName}` or
//! `application/graphql`), the 1 MiB body limit, at most 5 mutation fields per request
//! (fragments counted; 400 `BadRequest` outside the GraphQL envelope), a syntax error as
//! 500 `UnexpectedError`, and otherwise HTTP 200 with `{"data": …, "errors"?: […]}`.
//! A request runs as one transaction: any error in a mutation request rolls every
//! mutation of it back and answers `data: null` with that one error. Errors carry
//! `extensions {errorName, reason, info?}`; unknown fields are validation errors
//! (`data: null`, no extensions).
//!
//! Not emulated: GET (GraphiQL), subscriptions, the type-system introspection fields
//! other than `__typename`, directives (`@skip`/`@include` are parsed and ignored).

mod parser;
mod render;
mod resolve;

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AuthgearState;
use super::api::{
    ADMIN_BODY_LIMIT, api_error, error_response, parse_json, read_body, unexpected_error,
};
use parser::{Document, Field, OpKind, Pos, Selection, Val};

/// `maxMutationFieldsPerRequest`.
const MAX_MUTATION_FIELDS: usize = 5;

/// Why a field failed.
#[derive(Debug, Clone)]
enum GqlError {
    /// An Authgear APIError raised by a resolver.
    Api(Value),
    /// A schema validation error (unknown field or argument): the whole request fails.
    Validation(String, Pos),
    /// A non-API error (a Go panic): `"unexpected error"`.
    Unexpected,
}

fn located(message: &str, pos: Pos) -> Value {
    json!({ "message": message, "locations": [ { "line": pos.line, "column": pos.column } ] })
}

/// The formatted error of `err` raised at `field` (`path` = its response key).
fn format_error(err: &GqlError, field: &Field) -> Value {
    match err {
        GqlError::Api(api) => {
            let mut e = located(api["message"].as_str().unwrap_or(""), field.pos);
            let mut ext = Map::new();
            ext.insert("errorName".to_owned(), api["name"].clone());
            ext.insert("reason".to_owned(), api["reason"].clone());
            if let Some(info) = api
                .get("info")
                .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
            {
                ext.insert("info".to_owned(), info.clone());
            }
            e["path"] = json!([field.key()]);
            e["extensions"] = Value::Object(ext);
            e
        }
        GqlError::Validation(message, pos) => located(message, *pos),
        GqlError::Unexpected => json!({ "message": "unexpected error", "locations": [] }),
    }
}

fn envelope(data: Value, errors: Vec<Value>) -> Response {
    let mut body = json!({ "data": data });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Top-level fields of a selection, fragments expanded; a cycle is an error.
fn flatten<'a>(
    doc: &'a Document,
    selection: &'a [Selection],
    stack: &mut Vec<&'a str>,
    out: &mut Vec<&'a Field>,
) -> Result<(), String> {
    for s in selection {
        match s {
            Selection::Field(f) => out.push(f),
            Selection::Inline(_, inner) => flatten(doc, inner, stack, out)?,
            Selection::Spread(name) => {
                if stack.contains(&name.as_str()) {
                    return Err(format!("graphql fragment cycle detected at \"{name}\""));
                }
                let Some(frag) = doc.fragments.get(name) else {
                    return Err(format!("Unknown fragment \"{name}\"."));
                };
                stack.push(name);
                flatten(doc, &frag.selection, stack, out)?;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// A request's `(query, variables, operationName)`.
type GqlRequest = (String, Map<String, Value>, Option<String>);

/// Reads the request body as JSON or as `application/graphql`.
fn read_request(headers: &HeaderMap, bytes: &[u8]) -> Result<GqlRequest, Value> {
    let graphql = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/graphql")
        });
    if graphql {
        return Ok((
            String::from_utf8_lossy(bytes).into_owned(),
            Map::new(),
            None,
        ));
    }
    let v = parse_json(bytes)?;
    let query = v
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let variables = match v.get("variables") {
        Some(Value::Object(m)) => m.clone(),
        // `variables` given as a JSON string is decoded again.
        Some(Value::String(s)) => serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default(),
        _ => Map::new(),
    };
    let op = v
        .get("operationName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok((query, variables, op))
}

/// Substitutes variables into an argument value.
fn eval(v: &Val, vars: &Map<String, Value>) -> Value {
    match v {
        Val::Var(n) => vars.get(n).cloned().unwrap_or(Value::Null),
        Val::Int(n) => json!(n),
        Val::Float(f) => json!(f),
        Val::Str(s) | Val::Enum(s) => json!(s),
        Val::Bool(b) => json!(b),
        Val::Null => Value::Null,
        Val::List(items) => Value::Array(items.iter().map(|i| eval(i, vars)).collect()),
        Val::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), eval(v, vars)))
                .collect(),
        ),
    }
}

/// The handler.
pub(super) async fn handle(
    State(state): State<Arc<AuthgearState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(body, ADMIN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(err) => return error_response(err),
    };
    let (query, raw_vars, op_name) = match read_request(&headers, &bytes) {
        Ok(r) => r,
        Err(err) => return error_response(err),
    };
    // The mutation pre-check parses first, so a syntax error is a non-API error: 500.
    let Ok(doc) = parser::parse(&query) else {
        return error_response(unexpected_error());
    };
    let op = match &op_name {
        Some(name) => doc
            .operations
            .iter()
            .find(|o| o.name.as_deref() == Some(name)),
        None if doc.operations.len() == 1 => doc.operations.first(),
        None => {
            return envelope(
                Value::Null,
                vec![
                    json!({"message": "Must provide operation name if query contains multiple operations.", "locations": []}),
                ],
            );
        }
    };
    let Some(op) = op else {
        let name = op_name.unwrap_or_default();
        return envelope(
            Value::Null,
            vec![
                json!({"message": format!("Unknown operation named \"{name}\"."), "locations": []}),
            ],
        );
    };
    let mut fields = Vec::new();
    if let Err(message) = flatten(&doc, &op.selection, &mut Vec::new(), &mut fields) {
        return error_response(api_error("BadRequest", "BadRequest", &message, None));
    }
    if op.kind == OpKind::Mutation && fields.len() > MAX_MUTATION_FIELDS {
        return error_response(api_error(
            "BadRequest",
            "BadRequest",
            &format!(
                "too many mutation fields in one request: got {}, limit is {MAX_MUTATION_FIELDS}",
                fields.len()
            ),
            None,
        ));
    }
    // Variables: defaults, then the required ones. Coercion errors surface as
    // "unexpected error" (they are raised inside Execute, §1.4).
    let mut vars = Map::new();
    for def in &op.vars {
        let given = raw_vars.get(&def.name).cloned();
        let value = match (given, &def.default) {
            (Some(v), _) => v,
            (None, Some(d)) => eval(d, &Map::new()),
            (None, None) => Value::Null,
        };
        if def.ty.ends_with('!') && value.is_null() {
            return envelope(
                Value::Null,
                vec![json!({ "message": "unexpected error", "locations": [] })],
            );
        }
        vars.insert(def.name.clone(), value);
    }
    let now = state.now();
    let mut guard = state.lock();
    let inner = &mut *guard;
    let snapshot =
        (op.kind == OpKind::Mutation).then(|| (inner.store.clone(), inner.directory.clone()));
    let outcome = {
        let mut ctx = resolve::Ctx {
            store: &mut inner.store,
            directory: &mut inner.directory,
            config: &state.config,
            now,
            vars: &vars,
            doc: &doc,
        };
        execute(&mut ctx, op.kind, &fields)
    };
    match outcome {
        Ok((data, errors)) => envelope(Value::Object(data), errors),
        Err(error) => {
            if let Some((store, directory)) = snapshot {
                inner.store = store;
                inner.directory = directory;
            }
            envelope(Value::Null, vec![error])
        }
    }
}

/// Runs the top-level fields in order; `Err` is the one error that nulls `data`.
fn execute(
    ctx: &mut resolve::Ctx<'_>,
    kind: OpKind,
    fields: &[&Field],
) -> Result<(Map<String, Value>, Vec<Value>), Value> {
    let mut data = Map::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for field in fields {
        if !seen.insert(field.key().to_owned()) {
            continue;
        }
        let result = match kind {
            OpKind::Query => resolve::query_field(ctx, field),
            OpKind::Mutation => resolve::mutation_field(ctx, field),
        };
        match result {
            Ok(v) => {
                data.insert(field.key().to_owned(), v);
            }
            Err(err) => {
                let fatal = kind == OpKind::Mutation
                    || matches!(err, GqlError::Validation(..))
                    || resolve::non_null_query_field(&field.name);
                if fatal {
                    return Err(format_error(&err, field));
                }
                data.insert(field.key().to_owned(), Value::Null);
                errors.push(format_error(&err, field));
            }
        }
    }
    Ok((data, errors))
}
