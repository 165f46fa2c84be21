//! Query-string parameters of the HTTP gateway, and the history requests
//! built from them. `GET /v1/logs` and its export read the same names here,
//! so a filter that works on one works on the other.

use std::collections::HashMap;
use std::str::FromStr;

use super::error::ApiError;
use crate::model::json::{level_from_json, time_from_json};
use crate::proto::{self, GetHistogramRequest, LogFilter, QueryLogsRequest, TailRequest};

/// Query parameters: repeated keys and comma-separated values both work.
pub struct Params(HashMap<String, Vec<String>>);

impl Params {
    pub fn parse(raw: Option<String>) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Params(map)
    }

    pub fn one(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value of any of `keys`, split at commas.
    pub fn list(&self, keys: &[&str]) -> Vec<String> {
        keys.iter()
            .filter_map(|k| self.0.get(*k))
            .flatten()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn num<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.one(key)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::invalid(key, format!("{s:?} is not a valid number")))
            })
            .transpose()
    }

    pub fn filter(&self) -> Result<LogFilter, ApiError> {
        let mut levels = Vec::new();
        for (i, l) in self.list(&["level", "levels"]).iter().enumerate() {
            let v = level_from_json(&serde_json::Value::String(l.clone())).map_err(|mut v| {
                v.field = format!("level[{i}]");
                ApiError::from_violation(v)
            })?;
            levels.push(v);
        }
        let min_level = match self.one("min_level").or(self.one("minLevel")) {
            Some(l) => level_from_json(&serde_json::Value::String(l.into())).map_err(|mut v| {
                v.field = "min_level".into();
                ApiError::from_violation(v)
            })?,
            None => 0,
        };
        Ok(LogFilter {
            services: self.list(&["service", "services"]),
            levels,
            min_level,
            tags: self.list(&["tag", "tags"]),
            text: self
                .one("text")
                .or(self.one("q"))
                .unwrap_or_default()
                .to_string(),
        })
    }

    fn time(&self, keys: &[&str]) -> Result<Option<prost_types::Timestamp>, ApiError> {
        for k in keys {
            if let Some(t) = self.one(k).filter(|t| !t.is_empty()) {
                return time_from_json(t, k)
                    .map(Some)
                    .map_err(ApiError::from_violation);
            }
        }
        Ok(None)
    }
}

/// What chooses the records, without paging: the filter, the time range,
/// the id bounds and the order (`default_order` when none is given).
pub fn scope_request(
    p: &Params,
    default_order: proto::Order,
) -> Result<QueryLogsRequest, ApiError> {
    let order = match p.one("order") {
        None => default_order,
        Some("newest" | "newest_first" | "desc" | "ORDER_NEWEST_FIRST") => {
            proto::Order::NewestFirst
        }
        Some("oldest" | "oldest_first" | "asc" | "ORDER_OLDEST_FIRST") => proto::Order::OldestFirst,
        Some(o) => {
            return Err(ApiError::invalid(
                "order",
                format!("{o:?} is neither newest nor oldest"),
            ));
        }
    };
    Ok(QueryLogsRequest {
        filter: Some(p.filter()?),
        start_time: p.time(&["start", "start_time", "startTime"])?,
        end_time: p.time(&["end", "end_time", "endTime"])?,
        order: order as i32,
        after_id: p.num("after_id")?.or(p.num("afterId")?),
        before_id: p.num("before_id")?.or(p.num("beforeId")?),
        ..Default::default()
    })
}

/// `GET /v1/logs`: the scope, newest first unless asked, and one page of it.
pub fn query_request(p: &Params) -> Result<QueryLogsRequest, ApiError> {
    Ok(QueryLogsRequest {
        page_size: p.num("page_size")?.or(p.num("pageSize")?).unwrap_or(0),
        page_token: p
            .one("page_token")
            .or(p.one("pageToken"))
            .unwrap_or_default()
            .to_string(),
        page: p.num("page")?.unwrap_or(0),
        include_total: matches!(
            p.one("include_total").or(p.one("includeTotal")),
            Some("true" | "1")
        ),
        ..scope_request(p, proto::Order::NewestFirst)?
    })
}

/// `GET /v1/histogram`: the filter and range of `GET /v1/logs`, and `buckets`.
pub fn histogram_request(p: &Params) -> Result<GetHistogramRequest, ApiError> {
    let scope = scope_request(p, proto::Order::NewestFirst)?;
    Ok(GetHistogramRequest {
        filter: scope.filter,
        start_time: scope.start_time,
        end_time: scope.end_time,
        buckets: p.num("buckets")?.unwrap_or(0),
    })
}

/// A live tail's request (SSE, the WebSocket): the filter, where to start
/// (`resume_at` — a `Last-Event-ID` — before `after_id`), `last`, and the
/// heartbeat in seconds.
pub fn tail_request(p: &Params, resume_at: Option<u64>) -> Result<TailRequest, ApiError> {
    Ok(TailRequest {
        filter: Some(p.filter()?),
        after_id: resume_at.or(p.num("after_id")?),
        last: p.num("last")?.unwrap_or(0),
        heartbeat_interval: p.num::<u64>("heartbeat")?.map(|s| prost_types::Duration {
            seconds: s.min(3600) as i64,
            nanos: 0,
        }),
    })
}
