//! List paging as the Management API does it (auth0-rbac-orgs-mfa.md §7):
//! offset paging (`page`, `per_page` 1..=100, `include_totals`) and, where an endpoint
//! has it, checkpoint paging (`from`, `take` 1..=100; `{<key>: […], next?}`).
//! The `next` token is opaque: base64 of the next position (real tenants encode a
//! timestamp and the last id; clients must not read it).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::api_error;
use super::handlers::query_get;

/// What the caller asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PageReq {
    Offset {
        page: usize,
        per_page: usize,
        totals: bool,
    },
    Checkpoint {
        from: usize,
        take: usize,
    },
}

/// How an endpoint pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// `per_page` when not given.
    pub(crate) default_per_page: usize,
    /// Checkpoint paging (`from`/`take`) is available.
    pub(crate) checkpoint: bool,
    /// Offset paging stops at 1000 records (400 `invalid_paging`).
    pub(crate) offset_cap: bool,
    /// A non-empty checkpoint page always carries `next`; the end is an empty page
    /// (organization members, as recorded).
    pub(crate) next_until_empty: bool,
}

pub(crate) const PLAIN: Rules = Rules {
    default_per_page: 50,
    checkpoint: false,
    offset_cap: false,
    next_until_empty: false,
};

pub(crate) const CHECKPOINT: Rules = Rules {
    default_per_page: 50,
    checkpoint: true,
    offset_cap: true,
    next_until_empty: false,
};

fn invalid(message: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, message, "invalid_paging")
}

#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
fn number(
    pairs: &[(String, String)],
    key: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, Response> {
    match query_get(pairs, key) {
        None => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(api_error(
                StatusCode::BAD_REQUEST,
                &format!("Query validation error: 'Invalid value' on property {key}."),
                "invalid_query_string",
            )),
        },
    }
}

/// Reads the paging parameters.
#[allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP answer"
)]
pub(crate) fn request(pairs: &[(String, String)], rules: Rules) -> Result<PageReq, Response> {
    let take = number(pairs, "take", 1..=100)?;
    let from = query_get(pairs, "from");
    if rules.checkpoint && (take.is_some() || from.is_some()) {
        let from = match from {
            None | Some("") => 0,
            Some(token) => decode(token).ok_or_else(|| {
                invalid("Invalid query string paging options. The 'from' parameter is not valid.")
            })?,
        };
        return Ok(PageReq::Checkpoint {
            from,
            take: take.unwrap_or(50),
        });
    }
    let per_page = number(pairs, "per_page", 1..=100)?.unwrap_or(rules.default_per_page);
    let page = number(pairs, "page", 0..=usize::MAX)?.unwrap_or(0);
    if rules.offset_cap && (page + 1) * per_page > 1000 {
        // DOCS retrieve-organizations.mdx; "To retrieve more than 1000 results, you must
        // use the checkpoint pagination method."
        return Err(invalid(
            "Requesting page exceeds the allowed maximum of 1000 records.",
        ));
    }
    Ok(PageReq::Offset {
        page,
        per_page,
        totals: query_get(pairs, "include_totals") == Some("true"),
    })
}

fn encode(pos: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("sandbox-checkpoint,{pos}"))
}

fn decode(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sandbox-checkpoint,")?
        .parse()
        .ok()
}

/// The answer for `all` (the whole list, in order) under `req`.
pub(crate) fn respond(all: Vec<Value>, key: &str, req: PageReq, rules: Rules) -> Response {
    let total = all.len();
    respond_lazy(
        total,
        |r| all.into_iter().skip(r.start).take(r.len()).collect(),
        key,
        req,
        rules,
    )
}

/// The answer for a list of `total` items of which only the requested range is
/// rendered (`render` gets a range within `0..total`).
pub(crate) fn respond_lazy(
    total: usize,
    render: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
    key: &str,
    req: PageReq,
    rules: Rules,
) -> Response {
    let clamp = |start: usize, len: usize| {
        let start = start.min(total);
        start..(start.saturating_add(len)).min(total)
    };
    match req {
        PageReq::Offset {
            page,
            per_page,
            totals,
        } => {
            let items = render(clamp(page.saturating_mul(per_page), per_page));
            if totals {
                Json(json!({"start": page * per_page, "limit": per_page, "total": total, key: items}))
                    .into_response()
            } else {
                Json(Value::Array(items)).into_response()
            }
        }
        PageReq::Checkpoint { from, take } => {
            let items = render(clamp(from, take));
            let end = from.min(total) + items.len();
            let more = if rules.next_until_empty {
                !items.is_empty()
            } else {
                end < total
            };
            let mut body = json!({ key: items });
            if more {
                body["next"] = json!(encode(end));
            }
            Json(body).into_response()
        }
    }
}
