//! `taillight query`: search stored logs, as text for people or as the
//! export formats of `GET /v1/logs/export` for files (`--format ndjson|csv`,
//! `--limit 0` for every match). Printed page by page, so memory stays one
//! page however much is printed.

use clap::Args;

use super::output::{Output, OutputFormat, emit};
use super::{CliError, Client, ClientArgs, FilterArgs, connect};
use crate::model::time;
use crate::model::time::parse_duration;
use crate::proto::{Order, QueryLogsRequest, QueryLogsResponse};

/// The most records one QueryLogs page may hold (the server's limit).
const PAGE: u32 = 1000;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only entries newer than this long ago (e.g. 15m, 1h, 2d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries at or after this RFC 3339 time.
    #[arg(long, conflicts_with = "since")]
    pub start: Option<String>,
    /// Only entries before this RFC 3339 time.
    #[arg(long)]
    pub end: Option<String>,
    /// Only ids greater than this.
    #[arg(long)]
    pub after_id: Option<u64>,
    /// Only ids smaller than this.
    #[arg(long)]
    pub before_id: Option<u64>,
    /// How many entries to print; 0 prints every match.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub limit: u32,
    /// Print oldest first (default: newest first).
    #[arg(long)]
    pub oldest_first: bool,
    /// How entries are printed; ndjson and csv are what
    /// `GET /v1/logs/export` answers.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// The same as `--format ndjson`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// No ANSI colours.
    #[arg(long)]
    pub no_color: bool,
}

fn time_arg(name: &str, text: &str) -> Result<prost_types::Timestamp, CliError> {
    time::parse(text)
        .map(time::from_micros)
        .ok_or_else(|| CliError::Usage(format!("--{name} {text:?} is not an RFC 3339 time")))
}

/// The request every page repeats; only the page token changes.
fn request(args: &QueryArgs) -> Result<QueryLogsRequest, CliError> {
    let start_time = match (&args.since, &args.start) {
        (Some(s), _) => {
            let d = parse_duration(s).map_err(CliError::Usage)?;
            Some(time::from_micros(time::now_micros() - d.as_micros() as i64))
        }
        (None, Some(s)) => Some(time_arg("start", s)?),
        (None, None) => None,
    };
    Ok(QueryLogsRequest {
        filter: Some(args.filter.to_proto()),
        start_time,
        end_time: args
            .end
            .as_deref()
            .map(|e| time_arg("end", e))
            .transpose()?,
        order: if args.oldest_first {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        } as i32,
        after_id: args.after_id,
        before_id: args.before_id,
        ..Default::default()
    })
}

/// An oldest-first walk stops at the newest entry stored when it began, as
/// the export does: entries stored faster than they are printed would
/// otherwise keep it going for ever.
async fn snapshot_end(client: &mut Client, req: &mut QueryLogsRequest) -> Result<(), CliError> {
    if req.order != Order::OldestFirst as i32 {
        return Ok(());
    }
    let newest = client
        .query_logs(QueryLogsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let end = newest.records.first().map_or(1, |r| r.id.saturating_add(1));
    req.before_id = Some(req.before_id.map_or(end, |b| b.min(end)));
    Ok(())
}

/// One page of at most `want` records. Large entries can make a page larger
/// than the server's response limit (4 MiB by default), which it refuses
/// naming both sizes: the page shrinks to fit, and `fits` keeps that size
/// for the pages after it.
async fn page(
    client: &mut Client,
    req: &mut QueryLogsRequest,
    fits: &mut u32,
    want: u32,
) -> Result<QueryLogsResponse, CliError> {
    loop {
        req.page_size = want.min(*fits);
        match client.query_logs(req.clone()).await {
            Ok(resp) => return Ok(resp.into_inner()),
            Err(s) if s.code() == tonic::Code::OutOfRange && req.page_size > 1 => {
                *fits = smaller(req.page_size, s.message());
            }
            Err(s) => return Err(s.into()),
        }
    }
}

/// A page size under `n` that should fit, scaled by the refusal's "found N
/// bytes, the limit is: M bytes" with a margin, or half of `n`.
fn smaller(n: u32, refusal: &str) -> u32 {
    let number_after = |marker: &str| -> Option<u64> {
        let rest = &refusal[refusal.find(marker)? + marker.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let scaled = match (number_after("found "), number_after("limit is: ")) {
        (Some(found), Some(limit)) if found > 0 => {
            u64::from(n).saturating_mul(limit).saturating_mul(9) / 10 / found
        }
        _ => u64::from(n / 2),
    };
    scaled.clamp(1, u64::from(n - 1)) as u32
}

pub async fn run(args: QueryArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let mut req = request(&args)?;
    snapshot_end(&mut client, &mut req).await?;
    let output = Output::new(args.format, args.json, args.no_color);
    let mut remaining = (args.limit > 0).then_some(args.limit);
    let mut fits = PAGE;
    let mut buf = Vec::new();
    output.header(&mut buf);
    loop {
        let want = remaining.map_or(PAGE, |r| r.min(PAGE));
        let resp = page(&mut client, &mut req, &mut fits, want).await?;
        output.page(&resp.records, &mut buf)?;
        if !emit(&mut buf)? {
            return Ok(());
        }
        remaining = remaining.map(|r| r.saturating_sub(resp.records.len() as u32));
        if resp.next_page_token.is_empty() || remaining == Some(0) {
            return Ok(());
        }
        req.page_token = resp.next_page_token;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_page_shrinks_to_fit() {
        let refusal = "Error, encoded message length too large: \
                       found 8388608 bytes, the limit is: 4194304 bytes";
        assert_eq!(smaller(1000, refusal), 450);
        assert_eq!(smaller(1000, "no sizes"), 500);
        assert_eq!(smaller(2, refusal), 1);
        assert_eq!(
            smaller(1000, "found 4194305 bytes, the limit is: 4194304 bytes"),
            899
        );
    }
}
