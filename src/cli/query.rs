//! `taillight query`: search stored logs.

use clap::Args;

use super::ClientArgs;
use super::{CliError, FilterArgs, Printer, connect};
use crate::model::time;
use crate::model::time::parse_duration;
use crate::proto::{Order, QueryLogsRequest};

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
    /// How many entries to print.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub limit: u32,
    /// Print oldest first (default: newest first).
    #[arg(long)]
    pub oldest_first: bool,
    /// One JSON object per line.
    #[arg(long)]
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

pub async fn run(args: QueryArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let start_time = match (&args.since, &args.start) {
        (Some(s), _) => {
            let d = parse_duration(s).map_err(CliError::Usage)?;
            Some(time::from_micros(time::now_micros() - d.as_micros() as i64))
        }
        (None, Some(s)) => Some(time_arg("start", s)?),
        (None, None) => None,
    };
    let printer = Printer::new(args.json, args.no_color);
    let mut remaining = args.limit;
    let mut page_token = String::new();
    while remaining > 0 {
        let req = QueryLogsRequest {
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
            page_size: remaining.min(1000),
            page_token: page_token.clone(),
            after_id: args.after_id,
            before_id: args.before_id,
            ..Default::default()
        };
        let resp = client.query_logs(req).await?.into_inner();
        for r in &resp.records {
            println!("{}", printer.line(r));
        }
        remaining = remaining.saturating_sub(resp.records.len() as u32);
        if resp.next_page_token.is_empty() {
            break;
        }
        page_token = resp.next_page_token;
    }
    Ok(())
}
