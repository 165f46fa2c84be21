//! `taillight tail`: follow logs live, reconnecting from the last id seen.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::ClientArgs;
use super::{CliError, FilterArgs, Printer, connect};
use crate::proto::{TailRequest, stream_status::State, tail_response::Event};

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Start with the last N matching entries.
    #[arg(long, short = 'n', env = "TAILLIGHT_TAIL_LAST", default_value_t = 10)]
    pub last: u32,
    /// Start after this id instead (resume).
    #[arg(long, env = "TAILLIGHT_AFTER_ID")]
    pub after_id: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// No ANSI colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
}

pub async fn run(args: TailArgs) -> Result<(), CliError> {
    let printer = Printer::new(args.json, args.no_color);
    let mut after_id = args.after_id;
    let mut backoff = Duration::from_millis(250);
    loop {
        match follow(&args, &printer, &mut after_id).await {
            Ok(()) => return Ok(()),
            Err(CliError::Rpc(s)) if s.code() == tonic::Code::InvalidArgument => {
                return Err(CliError::Rpc(s));
            }
            Err(e) => {
                eprintln!("taillight: {e}; reconnecting in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One connection; records `after_id` as it goes so a reconnect resumes
/// without gap or duplicate.
async fn follow(
    args: &TailArgs,
    printer: &Printer,
    after_id: &mut Option<u64>,
) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let req = TailRequest {
        filter: Some(args.filter.to_proto()),
        after_id: *after_id,
        last: if after_id.is_some() { 0 } else { args.last },
        heartbeat_interval: None,
    };
    let mut stream = client.tail(req).await?.into_inner();
    let mut out = std::io::stdout().lock();
    while let Some(msg) = stream.message().await? {
        match msg.event {
            Some(Event::Records(rs)) => {
                for r in &rs.records {
                    writeln!(out, "{}", printer.line(r))?;
                    *after_id = Some(r.id);
                }
                out.flush()?;
            }
            Some(Event::Heartbeat(h)) if h.last_id > 0 => {
                *after_id = Some(after_id.unwrap_or(0).max(h.last_id));
            }
            Some(Event::Skipped(s)) => {
                eprintln!(
                    "taillight: skipped {} entries (ids {}..={}); fetch them with `taillight query --after-id {} --before-id {}`",
                    s.count,
                    s.first_id,
                    s.last_id,
                    s.first_id - 1,
                    s.last_id + 1
                );
                *after_id = Some(after_id.unwrap_or(0).max(s.last_id));
            }
            Some(Event::Status(s)) if s.state == State::Degraded as i32 => {
                eprintln!("taillight: live feed degraded: {}", s.message);
            }
            // Until a record or heartbeat names an id, a reconnect asks for
            // the last N again, as the first connection did.
            _ => {}
        }
    }
    Ok(())
}
