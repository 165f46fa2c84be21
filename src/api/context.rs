//! `GetContext` and `GET /v1/logs/{id}/context`: the entries logged around
//! one entry, by id, in its service or across every service the caller may
//! read. Ids follow commit order, so "around" is what a reader of the
//! service's own output saw around that line.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::params::Params;
use super::query::{self, MAX_PAGE_SIZE};
use crate::access::Grant;
use crate::model::Filter;
use crate::model::json::RecordOut;
use crate::proto::{GetContextRequest, GetContextResponse, LogRecord};
use crate::storage::{Order, Query};

/// Neighbours on each side when the request does not say.
pub const DEFAULT_NEIGHBOURS: u32 = 20;

/// The entry `req.id` and its neighbours, within what `grant` may read. An
/// entry the caller may not read is not found, as one that does not exist.
pub async fn get_context(
    state: &ApiState,
    grant: &Grant,
    req: GetContextRequest,
) -> Result<GetContextResponse, ApiError> {
    let before = neighbours("before", req.before)?;
    let after = neighbours("after", req.after)?;
    let readable = query::filter(grant, None)?;
    let entry = one(state, &readable, req.id).await?;
    let around = match req.all_services {
        true => readable,
        false => Filter {
            services: vec![entry.service.clone()],
            ..readable
        },
    };
    let (mut older, more_before) =
        side(state, &around, entry.id, Order::NewestFirst, before).await?;
    older.reverse();
    let (newer, more_after) = side(state, &around, entry.id, Order::OldestFirst, after).await?;
    Ok(GetContextResponse {
        before: older,
        entry: Some(entry),
        after: newer,
        more_before,
        more_after,
    })
}

/// A side's size, 0..=[`MAX_PAGE_SIZE`], [`DEFAULT_NEIGHBOURS`] if unset.
fn neighbours(field: &str, n: Option<u32>) -> Result<u32, ApiError> {
    match n {
        None => Ok(DEFAULT_NEIGHBOURS),
        Some(n) if n > MAX_PAGE_SIZE => Err(ApiError::invalid(
            field,
            format!("{n} exceeds the limit of {MAX_PAGE_SIZE}"),
        )),
        Some(n) => Ok(n),
    }
}

/// The record with id `id`, if `readable` lets the caller see it.
async fn one(state: &ApiState, readable: &Filter, id: u64) -> Result<LogRecord, ApiError> {
    let missing = || ApiError::NotFound(format!("no entry with id {id}"));
    if id == 0 {
        return Err(ApiError::invalid("id", "must be at least 1"));
    }
    let q = Query {
        filter: readable.clone(),
        after_id: Some(id - 1),
        before_id: Some(id.saturating_add(1)),
        limit: 1,
        ..Default::default()
    };
    let found = state.store.query(q).await?.records.into_iter().next();
    found.filter(|r| r.id == id).ok_or_else(missing)
}

/// Up to `n` records of `filter` next to id `id` in `order`'s direction,
/// nearest first, and whether there are more beyond them.
async fn side(
    state: &ApiState,
    filter: &Filter,
    id: u64,
    order: Order,
    n: u32,
) -> Result<(Vec<LogRecord>, bool), ApiError> {
    if n == 0 {
        return Ok((Vec::new(), false));
    }
    let (after_id, before_id) = match order {
        Order::NewestFirst => (None, Some(id)),
        Order::OldestFirst => (Some(id), None),
    };
    let q = Query {
        filter: filter.clone(),
        after_id,
        before_id,
        order,
        // One more tells whether there is more.
        limit: n + 1,
        ..Default::default()
    };
    let mut records = state.store.query(q).await?.records;
    let more = records.len() > n as usize;
    records.truncate(n as usize);
    Ok((records, more))
}

/// `GET /v1/logs/{id}/context?before=20&after=20&all_services=true`.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(raw);
    let id = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("{id:?} is not an entry id")))?;
    let all_services = match p.one("all_services").or(p.one("allServices")) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "all_services",
                format!("{other:?} is not true or false"),
            ));
        }
    };
    let req = GetContextRequest {
        id,
        before: p.num("before")?,
        after: p.num("after")?,
        all_services,
    };
    let resp = get_context(&state, &grant, req).await?;
    Ok(Json(json!({
        "before": out(&resp.before),
        "entry": resp.entry.as_ref().map(RecordOut::from),
        "after": out(&resp.after),
        "moreBefore": resp.more_before,
        "moreAfter": resp.more_after,
    })))
}

/// Records as the gateway writes them.
fn out(records: &[LogRecord]) -> Vec<RecordOut<'_>> {
    records.iter().map(RecordOut::from).collect()
}
