//! `taillight query`: search stored logs, as text for people or as the
//! export formats of `GET /v1/logs/export` for files (`--format ndjson|csv`,
//! `--limit 0` for every match). Printed page by page, so memory stays one
//! page however much is printed.

use std::io::Write;

use clap::{Args, ValueEnum};
use tonic::transport::Channel;

use super::ClientArgs;
use super::{CliError, FilterArgs, Printer, connect};
use crate::model::export::ExportFormat;
use crate::model::time;
use crate::model::time::parse_duration;
use crate::proto::log_service_client::LogServiceClient;
use crate::proto::{LogRecord, Order, QueryLogsRequest};

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
    /// text (one line per entry), ndjson (the HTTP gateway's JSON, one
    /// object per line) or csv (a header row, then one RFC 4180 row each).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// The same as `--format ndjson`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// No ANSI colours.
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Ndjson,
    Csv,
}

/// How each record is written: for people, or in an export format.
enum Output {
    Text(Printer),
    Export(ExportFormat),
}

impl Output {
    fn new(args: &QueryArgs) -> Self {
        match (args.json, args.format) {
            (true, _) | (false, OutputFormat::Ndjson) => Output::Export(ExportFormat::Ndjson),
            (false, OutputFormat::Csv) => Output::Export(ExportFormat::Csv),
            (false, OutputFormat::Text) => Output::Text(Printer::new(false, args.no_color)),
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        if let Output::Export(f) = self {
            f.header(out);
        }
    }

    fn page(&self, records: &[LogRecord], out: &mut Vec<u8>) -> Result<(), CliError> {
        for r in records {
            match self {
                Output::Text(p) => {
                    out.extend_from_slice(p.line(r).as_bytes());
                    out.push(b'\n');
                }
                Output::Export(f) => f.write(r, out).map_err(std::io::Error::from)?,
            }
        }
        Ok(())
    }
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
async fn snapshot_end(
    client: &mut LogServiceClient<Channel>,
    req: &mut QueryLogsRequest,
) -> Result<(), CliError> {
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

/// Writes one page to stdout. A reader that went away (`| head`) ends the
/// command quietly: it has what it wanted.
fn emit(buf: &mut Vec<u8>) -> Result<bool, CliError> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(buf).and_then(|()| stdout.flush());
    buf.clear();
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(args: QueryArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let mut req = request(&args)?;
    snapshot_end(&mut client, &mut req).await?;
    let output = Output::new(&args);
    let mut remaining = (args.limit > 0).then_some(args.limit);
    let mut buf = Vec::new();
    output.header(&mut buf);
    loop {
        req.page_size = remaining.map_or(PAGE, |r| r.min(PAGE));
        let resp = client.query_logs(req.clone()).await?.into_inner();
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
