//! How `taillight query` prints records: as text for people, or in the
//! export formats of `GET /v1/logs/export`, one page at a time to stdout.

use std::io::Write;

use clap::ValueEnum;

use super::{CliError, Printer};
use crate::model::export::ExportFormat;
use crate::proto::LogRecord;

/// How `query` prints entries (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per entry, coloured on a terminal.
    Text,
    /// The HTTP gateway's record JSON, one per line.
    Ndjson,
    /// A header row, then one RFC 4180 row per entry.
    Csv,
}

/// How each record is written: for people, or in an export format.
pub enum Output {
    Text(Printer),
    Export(ExportFormat),
}

impl Output {
    /// `--json` is `--format ndjson`.
    pub fn new(format: OutputFormat, json: bool, no_color: bool) -> Self {
        match (json, format) {
            (true, _) | (false, OutputFormat::Ndjson) => Output::Export(ExportFormat::Ndjson),
            (false, OutputFormat::Csv) => Output::Export(ExportFormat::Csv),
            (false, OutputFormat::Text) => Output::Text(Printer::new(false, no_color)),
        }
    }

    pub fn header(&self, out: &mut Vec<u8>) {
        if let Output::Export(f) = self {
            f.header(out);
        }
    }

    pub fn page(&self, records: &[LogRecord], out: &mut Vec<u8>) -> Result<(), CliError> {
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

/// Writes one page to stdout. A reader that went away (`| head`) ends the
/// command quietly: it has what it wanted.
pub fn emit(buf: &mut Vec<u8>) -> Result<bool, CliError> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(buf).and_then(|()| stdout.flush());
    buf.clear();
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}
