//! The two shapes records are exported in, shared by `GET /v1/logs/export`
//! and `taillight query --format`, so a file is the same whichever way it
//! was made: NDJSON, each line exactly the gateway's record JSON
//! ([`RecordOut`]), and CSV (RFC 4180: a header row, CRLF line ends, cells
//! quoted only where they must be) with tags and attributes as JSON text.

use std::collections::BTreeMap;

use super::json::RecordOut;
use crate::proto::LogRecord;

/// A file format of exported records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// The CSV header, in column order.
pub const CSV_COLUMNS: [&str; 10] = [
    "id",
    "time",
    "received_time",
    "service",
    "level",
    "message",
    "tags",
    "attributes",
    "trace_id",
    "span_id",
];

impl ExportFormat {
    /// `ndjson` or `csv`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ndjson" => Some(ExportFormat::Ndjson),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }

    /// What precedes the first record (CSV's header row), written even when
    /// no record follows, so an empty export still names its columns.
    pub fn header(self, out: &mut Vec<u8>) {
        if self == ExportFormat::Csv {
            out.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends one record as one line (NDJSON) or one row (CSV).
    pub fn write(self, r: &LogRecord, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let rec = RecordOut::from(r);
        match self {
            ExportFormat::Ndjson => {
                serde_json::to_writer(&mut *out, &rec)?;
                out.push(b'\n');
            }
            ExportFormat::Csv => csv_row(&rec, out)?,
        }
        Ok(())
    }
}

fn csv_row(rec: &RecordOut<'_>, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    // Sorted keys: the same record always gives the same bytes, so exports
    // can be diffed.
    let attributes: BTreeMap<&str, &str> = rec
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let cells = [
        rec.id.to_string(),
        rec.time.clone(),
        rec.received_time.clone(),
        rec.service.to_string(),
        rec.level.to_string(),
        rec.message.to_string(),
        serde_json::to_string(rec.tags)?,
        serde_json::to_string(&attributes)?,
        rec.trace_id.to_string(),
        rec.span_id.to_string(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(cell, out);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// RFC 4180: a cell holding a comma, quote or line break is quoted, its
/// quotes doubled; any other cell is written as it is.
fn csv_cell(text: &str, out: &mut Vec<u8>) {
    if !text.contains([',', '"', '\r', '\n']) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time;

    fn record() -> LogRecord {
        LogRecord {
            id: 7,
            service: "api".into(),
            level: crate::proto::Level::Warn as i32,
            message: "a, \"b\"\nc\r\nd é".into(),
            tags: vec!["x,y".into(), "z".into()],
            attributes: [("k".to_string(), "v\"".to_string())].into(),
            time: Some(time::from_micros(1_700_000_000_000_000)),
            received_time: Some(time::from_micros(1_700_000_000_000_001)),
            ..Default::default()
        }
    }

    fn written(f: ExportFormat) -> String {
        let mut out = Vec::new();
        f.header(&mut out);
        f.write(&record(), &mut out).expect("encodes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn ndjson_is_the_gateway_record_on_one_line() {
        let line = written(ExportFormat::Ndjson);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let want = serde_json::to_string(&RecordOut::from(&record())).expect("json");
        assert_eq!(line.trim_end(), want);
    }

    #[test]
    fn csv_quotes_only_what_needs_it_and_doubles_quotes() {
        let text = written(ExportFormat::Csv);
        let (header, row) = text.split_once("\r\n").expect("header line");
        assert_eq!(
            header,
            "id,time,received_time,service,level,message,tags,attributes,trace_id,span_id"
        );
        assert_eq!(
            row,
            "7,2023-11-14T22:13:20.000000Z,2023-11-14T22:13:20.000001Z,api,WARN,\
             \"a, \"\"b\"\"\nc\r\nd é\",\"[\"\"x,y\"\",\"\"z\"\"]\",\"{\"\"k\"\":\"\"v\\\"\"\"\"}\",,\r\n"
        );
    }

    #[test]
    fn formats_are_named_in_any_case() {
        assert_eq!(ExportFormat::parse("CSV"), Some(ExportFormat::Csv));
        assert_eq!(ExportFormat::parse("ndjson"), Some(ExportFormat::Ndjson));
        assert_eq!(ExportFormat::parse("xml"), None);
    }
}
