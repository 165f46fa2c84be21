//! QueryLogs and Tail requests, checked and turned into store queries. The
//! HTTP gateway builds the same proto requests, so both speak through here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ApiState;
use super::error::ApiError;
use crate::access::Grant;
use crate::model::{Filter, time};
use crate::proto::{self, Level, QueryLogsRequest, QueryLogsResponse};
use crate::storage::{Order, Query};

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;
const MAX_FILTER_VALUES: usize = 100;
const MAX_TEXT_LEN: usize = 1024;

/// The request's filter, checked, and limited to the services `grant` may
/// read (asking for another service by name is refused).
pub fn filter(grant: &Grant, f: Option<proto::LogFilter>) -> Result<Filter, ApiError> {
    if let Some(f) = &f {
        for (name, n) in [
            ("filter.services", f.services.len()),
            ("filter.levels", f.levels.len()),
            ("filter.tags", f.tags.len()),
        ] {
            if n > MAX_FILTER_VALUES {
                return Err(ApiError::invalid(
                    name,
                    format!("has {n} values, the limit is {MAX_FILTER_VALUES}"),
                ));
            }
        }
        for (i, l) in f.levels.iter().enumerate() {
            if Level::try_from(*l).is_err() {
                return Err(ApiError::invalid(
                    format!("filter.levels[{i}]"),
                    format!("{l} is not a level"),
                ));
            }
        }
        if Level::try_from(f.min_level).is_err() {
            return Err(ApiError::invalid(
                "filter.min_level",
                format!("{} is not a level", f.min_level),
            ));
        }
        if f.text.len() > MAX_TEXT_LEN {
            return Err(ApiError::invalid(
                "filter.text",
                format!("is {} bytes, the limit is {MAX_TEXT_LEN}", f.text.len()),
            ));
        }
    }
    let mut filter = Filter::from_proto(f);
    if let Some(patterns) = grant.services() {
        for s in &filter.services {
            grant.check_read(s)?;
        }
        filter.within = Some(patterns.clone());
    }
    Ok(filter)
}

/// A page token: the order it was made for and the last id of its page.
fn encode_token(order: Order, last_id: u64) -> String {
    let o = match order {
        Order::NewestFirst => 'n',
        Order::OldestFirst => 'o',
    };
    URL_SAFE_NO_PAD.encode(format!("v1:{o}:{last_id}"))
}

fn decode_token(token: &str, order: Order) -> Result<u64, ApiError> {
    let bad = || ApiError::invalid("page_token", "is not a token this server issued");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ':');
    let (Some("v1"), Some(o), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let expected = match order {
        Order::NewestFirst => "n",
        Order::OldestFirst => "o",
    };
    if o != expected {
        return Err(ApiError::invalid(
            "page_token",
            "was issued for the other order",
        ));
    }
    id.parse().map_err(|_| bad())
}

/// The records a request chooses, checked: its filter, time range, id
/// bounds and order, with no paging yet (limit 0, no cursor).
pub fn scope(grant: &Grant, req: &QueryLogsRequest) -> Result<Query, ApiError> {
    let order = match proto::Order::try_from(req.order) {
        Ok(proto::Order::Unspecified | proto::Order::NewestFirst) => Order::NewestFirst,
        Ok(proto::Order::OldestFirst) => Order::OldestFirst,
        Err(_) => {
            return Err(ApiError::invalid(
                "order",
                format!("{} is not an order", req.order),
            ));
        }
    };
    let start_us = req.start_time.as_ref().map(time::to_micros);
    let end_us = req.end_time.as_ref().map(time::to_micros);
    if let (Some(s), Some(e)) = (start_us, end_us)
        && s > e
    {
        return Err(ApiError::invalid("end_time", "is before start_time"));
    }
    Ok(Query {
        filter: filter(grant, req.filter.clone())?,
        start_us,
        end_us,
        after_id: req.after_id,
        before_id: req.before_id,
        order,
        ..Default::default()
    })
}

fn page_size(requested: u32) -> Result<u32, ApiError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n > MAX_PAGE_SIZE => Err(ApiError::invalid(
            "page_size",
            format!("{n} exceeds the limit of {MAX_PAGE_SIZE}"),
        )),
        n => Ok(n),
    }
}

pub async fn query_logs(
    state: &ApiState,
    grant: &Grant,
    req: QueryLogsRequest,
) -> Result<QueryLogsResponse, ApiError> {
    let mut q = scope(grant, &req)?;
    let limit = page_size(req.page_size)?;
    if req.page > 0 && !req.page_token.is_empty() {
        return Err(ApiError::invalid(
            "page",
            "cannot be combined with page_token",
        ));
    }
    if !req.page_token.is_empty() {
        q.cursor = Some(decode_token(&req.page_token, q.order)?);
    }
    let page_mode = req.page > 0;
    // One more than asked tells whether another page exists.
    q.limit = limit + 1;
    if page_mode {
        q.offset = u64::from(req.page - 1) * u64::from(limit);
    }
    q.count_total = page_mode || req.include_total;
    let order = q.order;
    let mut result = state.store.query(q).await?;
    let more = result.records.len() > limit as usize;
    result.records.truncate(limit as usize);
    let next_page_token = match result.records.last() {
        Some(last) if more && !page_mode => encode_token(order, last.id),
        _ => String::new(),
    };
    Ok(QueryLogsResponse {
        records: result.records,
        next_page_token,
        total_count: result.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = encode_token(Order::OldestFirst, 77);
        assert_eq!(decode_token(&t, Order::OldestFirst).unwrap(), 77);
        assert!(decode_token(&t, Order::NewestFirst).is_err());
        assert!(decode_token("nonsense!", Order::NewestFirst).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_token_decodes_to_its_id_or_names_page_token(id: u64, junk: String) {
            let t = encode_token(Order::NewestFirst, id);
            proptest::prop_assert_eq!(decode_token(&t, Order::NewestFirst).ok(), Some(id));
            if let Err(ApiError::Invalid { violations, .. }) = decode_token(&junk, Order::OldestFirst) {
                proptest::prop_assert_eq!(violations[0].field.as_str(), "page_token");
            }
        }

        #[test]
        fn any_query_string_gives_a_request_or_names_a_field(raw in "[a-z_=&%0-9A-Z.:,-]{0,80}") {
            let p = crate::api::params::Params::parse(Some(raw));
            for r in [
                crate::api::params::query_request(&p).map(|_| ()),
                crate::api::params::tail_request(&p, None).map(|_| ()),
            ] {
                match r {
                    Ok(()) => {}
                    Err(ApiError::Invalid { violations, .. }) => {
                        proptest::prop_assert!(!violations[0].field.is_empty());
                    }
                    Err(other) => proptest::prop_assert!(false, "{other}"),
                }
            }
        }
    }
}
