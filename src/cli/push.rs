//! `taillight push`: send lines from stdin (or the arguments) as entries, so
//! `some_app | taillight push --service x` works.

use std::collections::HashMap;

use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ClientArgs;
use super::{CliError, connect, parse_level};
use crate::proto::{LogEntry, PushLogsRequest};

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Service the entries belong to.
    #[arg(long, short = 's', env = "TAILLIGHT_SERVICE")]
    pub service: String,
    /// Level of every entry.
    #[arg(long, short = 'l', env = "TAILLIGHT_LEVEL", default_value = "info", value_parser = parse_level)]
    pub level: i32,
    /// Tags for every entry (repeat or comma-separate).
    #[arg(long, short = 't', env = "TAILLIGHT_TAGS", value_delimiter = ',')]
    pub tag: Vec<String>,
    /// Attributes for every entry, as KEY=VALUE (repeatable).
    #[arg(long = "attr", short = 'a', value_parser = parse_attr)]
    pub attrs: Vec<(String, String)>,
    /// Entries per message sent to the server.
    #[arg(long, env = "TAILLIGHT_PUSH_BATCH", default_value_t = 500)]
    pub batch: usize,
    /// Messages to push; without them, each stdin line is one entry.
    pub messages: Vec<String>,
}

fn parse_attr(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

pub async fn run(args: PushArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let attributes: HashMap<String, String> = args.attrs.iter().cloned().collect();
    let make = move |message: String| LogEntry {
        service: args.service.clone(),
        level: args.level,
        message,
        tags: args.tag.clone(),
        attributes: attributes.clone(),
        time: Some(crate::model::time::from_micros(
            crate::model::time::now_micros(),
        )),
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel::<PushLogsRequest>(8);
    let batch = args.batch.max(1);
    let messages = args.messages;
    // Read while the previous batch is in flight; flush whenever stdin pauses,
    // so a slow producer's lines still arrive promptly.
    let reader = tokio::spawn(async move {
        let mut pending = Vec::with_capacity(batch);
        if !messages.is_empty() {
            pending.extend(messages.into_iter().map(&make));
            let _ = tx.send(PushLogsRequest { entries: pending }).await;
            return Ok::<(), std::io::Error>(());
        }
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            let next = if pending.is_empty() {
                lines.next_line().await?
            } else {
                match tokio::time::timeout(std::time::Duration::from_millis(200), lines.next_line())
                    .await
                {
                    Ok(line) => line?,
                    Err(_) => {
                        let _ = tx
                            .send(PushLogsRequest {
                                entries: std::mem::take(&mut pending),
                            })
                            .await;
                        continue;
                    }
                }
            };
            let Some(line) = next else { break };
            if line.trim().is_empty() {
                continue;
            }
            pending.push(make(line));
            if pending.len() >= batch
                && tx
                    .send(PushLogsRequest {
                        entries: std::mem::take(&mut pending),
                    })
                    .await
                    .is_err()
            {
                break;
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(PushLogsRequest { entries: pending }).await;
        }
        Ok(())
    });
    let resp = client.push_logs(ReceiverStream::new(rx)).await?;
    reader
        .await
        .map_err(|e| CliError::Usage(format!("stdin reader failed: {e}")))??;
    eprintln!("accepted {} entries", resp.into_inner().accepted);
    Ok(())
}
