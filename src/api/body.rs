//! Request bodies of the push endpoints that other tools speak (OTLP/HTTP,
//! Loki push, and taillight's own JSON): their media type, and their content
//! encoding undone within the request size limit, so a small compressed body
//! can never grow into an unbounded one in memory.

use std::io::Read;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::model::FieldViolation;

/// The media type of a request, without parameters, lower-cased; empty when
/// the request names none.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether a media type is JSON (`application/json`, `...+json`).
pub fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// The body with its `Content-Encoding` undone (`gzip`, or none). What it
/// decodes to may not exceed `max` bytes.
pub fn decode(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => gunzip(&body, max),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported; send gzip or no encoding"
        ))),
    }
}

fn gunzip(body: &[u8], max: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::invalid("body", format!("is not valid gzip: {e}")))?;
    if out.len() > max {
        return Err(too_large(max));
    }
    Ok(out.into())
}

/// A snappy block (what Loki's protobuf push sends), decoded within `max`.
pub fn unsnappy(body: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let bad = |e: snap::Error| ApiError::invalid("body", format!("is not valid snappy: {e}"));
    let len = snap::raw::decompress_len(body).map_err(bad)?;
    if len > max {
        return Err(too_large(max));
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(bad)
}

/// A JSON body of shape `T`; where it is not, the violation names the
/// place (`streams[0].values[2]`, or `body` when it is not JSON at all) and
/// says what it should have been (`what`).
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, FieldViolation> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|e| {
        let path = e.path().to_string();
        let field = match path.as_str() {
            "." | "?" => "body".to_string(),
            _ => path,
        };
        FieldViolation::new(field, format!("is not {what}: {}", e.inner()))
    })
}

/// The error of a body that decodes to more than `max` bytes.
pub fn too_large(max: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "the decoded body is over the limit of {max} bytes (--max-request-bytes)"
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip").into()
    }

    fn headers(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, encoding.parse().expect("header"));
        h
    }

    #[test]
    fn gzip_is_undone_within_the_limit() {
        let body = gzip(b"hello");
        assert_eq!(
            &decode(&headers("gzip"), body, 5).expect("fits")[..],
            b"hello"
        );
        // A bomb: a megabyte of zeros is a few hundred bytes compressed.
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096);
        assert!(matches!(
            decode(&headers("gzip"), bomb, 1000),
            Err(ApiError::TooLarge(_))
        ));
        assert!(matches!(
            decode(&headers("gzip"), Bytes::from_static(b"nope"), 1000),
            Err(ApiError::Invalid { .. })
        ));
        assert!(matches!(
            decode(&headers("br"), Bytes::new(), 1000),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn snappy_length_is_checked_before_decoding() {
        let packed = snap::raw::Encoder::new()
            .compress_vec(&vec![7u8; 10_000])
            .expect("snappy");
        assert_eq!(unsnappy(&packed, 10_000).expect("fits").len(), 10_000);
        assert!(matches!(
            unsnappy(&packed, 9_999),
            Err(ApiError::TooLarge(_))
        ));
        assert!(matches!(
            unsnappy(b"\xff\xff\xff", 100),
            Err(ApiError::Invalid { .. })
        ));
    }
}
