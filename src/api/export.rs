//! `GET /v1/logs/export`: every record a `GET /v1/logs` filter chooses, as
//! one NDJSON or CSV download, oldest first unless `order=newest`.
//!
//! The body is written while the client reads it, one store page at a time
//! by id cursor, so the server holds one page whatever the export's size.
//! The export ends at the newest record stored when it began. A store error
//! after the answer started aborts the body, so a client never takes a cut
//! export for a whole one.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, TryStreamExt};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::params::{Params, scope_request};
use super::{ApiState, query};
use crate::access::Grant;
use crate::model::export::ExportFormat;
use crate::proto::{self, LogRecord};
use crate::storage::{Order, Query, Store, StoreError};

/// Records read from the store at a time: what the export holds in memory.
const PAGE: u32 = query::MAX_PAGE_SIZE;
/// Encoded bytes gathered before they go to the connection: few writes,
/// little held.
const CHUNK_BYTES: usize = 64 * 1024;

/// Why an export ended early; the client sees the body aborted.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the server is shutting down")]
    ShuttingDown,
}

pub async fn export(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(raw);
    let format = format(&p)?;
    let mut q = query::scope(&grant, &scope_request(&p, proto::Order::OldestFirst)?)?;
    q.before_id = snapshot_end(state.store.as_ref(), q.before_id).await?;
    let body = stream(state.store.clone(), state.stop.clone(), q, format).await?;
    Ok(response(format, body))
}

fn format(p: &Params) -> Result<ExportFormat, ApiError> {
    match p.one("format").filter(|f| !f.is_empty()) {
        None => Ok(ExportFormat::Ndjson),
        Some(f) => ExportFormat::parse(f)
            .ok_or_else(|| ApiError::invalid("format", format!("{f:?} is neither ndjson nor csv"))),
    }
}

/// The id the export stops before: the one after the newest stored now, or
/// the caller's `before_id` if smaller. Without it an oldest-first export
/// of a store written faster than it is read would never end.
async fn snapshot_end(
    store: &dyn Store,
    before_id: Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let newest = store
        .query(Query {
            order: Order::NewestFirst,
            limit: 1,
            ..Default::default()
        })
        .await?;
    let end = newest.records.first().map_or(1, |r| r.id.saturating_add(1));
    Ok(Some(before_id.map_or(end, |b| b.min(end))))
}

/// Reads the first page before the answer starts, so a store that is down
/// gets its proper status instead of a 200 cut short; then streams it and
/// every page after it.
pub async fn stream(
    store: Arc<dyn Store>,
    stop: CancellationToken,
    mut q: Query,
    format: ExportFormat,
) -> Result<impl Stream<Item = Result<Bytes, ExportError>> + Send + 'static, StoreError> {
    q.limit = PAGE;
    q.cursor = None;
    let first = store.query(q.clone()).await?.records;
    Ok(pages(store, stop, q, first, format))
}

fn pages(
    store: Arc<dyn Store>,
    stop: CancellationToken,
    mut q: Query,
    first: Vec<LogRecord>,
    format: ExportFormat,
) -> impl Stream<Item = Result<Bytes, ExportError>> + Send + 'static {
    async_stream::try_stream! {
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        format.header(&mut buf);
        let mut page = first;
        loop {
            for r in &page {
                format.write(r, &mut buf)?;
                if buf.len() >= CHUNK_BYTES {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES));
                    yield Bytes::from(full);
                }
            }
            // A short page is the last; a full one may have more behind it.
            let last = match page.last() {
                Some(r) if page.len() >= PAGE as usize => r.id,
                _ => break,
            };
            if stop.is_cancelled() {
                Err(ExportError::ShuttingDown)?;
            }
            q.cursor = Some(last);
            page = store.query(q.clone()).await?.records;
        }
        if !buf.is_empty() {
            yield Bytes::from(buf);
        }
    }
}

fn disposition(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Ndjson => "attachment; filename=\"taillight-export.ndjson\"",
        ExportFormat::Csv => "attachment; filename=\"taillight-export.csv\"",
    }
}

pub fn response(
    format: ExportFormat,
    body: impl Stream<Item = Result<Bytes, ExportError>> + Send + 'static,
) -> Response {
    // The client only sees the connection drop; the reason goes to the log.
    let body = body.inspect_err(|e| tracing::warn!(error = %e, "export aborted"));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        ),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static(disposition(format)),
        ),
        // Log text must never be sniffed into something a browser runs.
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, Body::from_stream(body)).into_response()
}
