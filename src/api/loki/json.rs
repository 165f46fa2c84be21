//! Loki's JSON push body: `{"streams": [{"stream": {LABELS}, "values":
//! [["<unix ns>", "<line>", {METADATA}?], ...]}]}`.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

use super::map::{Line, Stream};
use crate::api::body::parse_json;
use crate::model::FieldViolation;

#[derive(Deserialize)]
struct Push {
    streams: Vec<StreamJson>,
}

#[derive(Deserialize)]
struct StreamJson {
    #[serde(default)]
    stream: HashMap<String, String>,
    #[serde(default)]
    values: Vec<Value>,
}

#[derive(Deserialize)]
struct Value(
    #[serde(deserialize_with = "nanos")] i64,
    String,
    #[serde(default)] HashMap<String, String>,
);

/// Nanoseconds as Loki writes them (a decimal string), or as a number.
fn nanos<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Nanos {
        Text(String),
        Number(i64),
    }
    match Nanos::deserialize(d)? {
        Nanos::Number(n) => Ok(n),
        Nanos::Text(t) => t
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{t:?} is not a time in nanoseconds"))),
    }
}

/// The streams of a JSON body, or the violation naming where it is wrong.
pub fn streams(body: &[u8]) -> Result<Vec<Stream>, FieldViolation> {
    let push: Push = parse_json(body, "a Loki push")?;
    Ok(push
        .streams
        .into_iter()
        .map(|s| Stream {
            labels: Ok(s.stream.into_iter().collect()),
            lines: s
                .values
                .into_iter()
                .map(|Value(nanos, line, metadata)| Line {
                    nanos,
                    line,
                    metadata: metadata.into_iter().collect(),
                })
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::streams;

    #[test]
    fn values_with_and_without_metadata() {
        let body = br#"{"streams":[{"stream":{"job":"a"},"values":[
            ["1700000000000000000","one"],
            ["1700000000000000001","two",{"trace":"t"}]]}]}"#;
        let s = streams(body).expect("valid");
        assert_eq!(s[0].lines.len(), 2);
        assert_eq!(s[0].lines[1].nanos, 1_700_000_000_000_000_001);
        assert_eq!(s[0].lines[1].metadata, vec![("trace".into(), "t".into())]);
    }

    #[test]
    fn errors_name_the_place() {
        let bad = streams(br#"{"streams":[{"stream":{},"values":[["soon","x"]]}]}"#)
            .err()
            .expect("refused");
        assert!(
            bad.field.starts_with("streams[0].values[0]"),
            "{}",
            bad.field
        );
        let bad = streams(b"{").err().expect("refused");
        assert_eq!(bad.field, "body");
    }
}
