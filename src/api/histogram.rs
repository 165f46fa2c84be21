//! `GetHistogram` and `GET /v1/histogram`: entries counted by level over
//! time buckets, for the volume chart above the viewer's list.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, histogram_request};
use super::query;
use crate::access::Grant;
use crate::model::{level, time};
use crate::proto::{GetHistogramRequest, GetHistogramResponse, HistogramBucket};
use crate::storage::histogram::{self, DEFAULT_BUCKETS, HistogramQuery, MAX_BUCKETS};

/// Counts what `req` asks for, within what `grant` may read.
pub async fn get_histogram(
    state: &ApiState,
    grant: &Grant,
    req: GetHistogramRequest,
) -> Result<GetHistogramResponse, ApiError> {
    let buckets = match req.buckets {
        0 => DEFAULT_BUCKETS,
        n if n > MAX_BUCKETS => {
            return Err(ApiError::invalid(
                "buckets",
                format!("{n} exceeds the limit of {MAX_BUCKETS}"),
            ));
        }
        n => n,
    };
    let start_us = req.start_time.as_ref().map(time::to_micros);
    let end_us = req.end_time.as_ref().map(time::to_micros);
    if let (Some(s), Some(e)) = (start_us, end_us)
        && s > e
    {
        return Err(ApiError::invalid("end_time", "is before start_time"));
    }
    let q = HistogramQuery {
        filter: query::filter(grant, req.filter)?,
        start_us,
        end_us,
        buckets,
    };
    let h = histogram::histogram(state.store.as_ref(), q).await?;
    let buckets = h.buckets.into_iter().map(|b| HistogramBucket {
        start: Some(time::from_micros(b.start_us)),
        end: Some(time::from_micros(b.end_us)),
        counts: (b.counts.into_iter())
            .map(|(l, n)| (level::name(l).to_string(), n))
            .collect(),
    });
    Ok(GetHistogramResponse {
        buckets: buckets.collect(),
    })
}

/// `GET /v1/histogram` with the filter and range parameters of
/// `GET /v1/logs`, and `buckets`.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    Extension(grant): Extension<Grant>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let req = histogram_request(&Params::parse(raw))?;
    let resp = get_histogram(&state, &grant, req).await?;
    let rfc3339 = |t: Option<&prost_types::Timestamp>| t.map(|t| time::rfc3339(time::to_micros(t)));
    let buckets: Vec<Value> = (resp.buckets.iter())
        .map(|b| {
            json!({
                "start": rfc3339(b.start.as_ref()),
                "end": rfc3339(b.end.as_ref()),
                "counts": b.counts,
            })
        })
        .collect();
    Ok(Json(json!({ "buckets": buckets })))
}
