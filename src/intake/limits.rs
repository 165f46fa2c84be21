//! Entry validation. Every limit has a flag; a violation names the field and
//! the limit so the sender can fix it without reading our code.

use crate::model::{FieldViolation, time};
use crate::proto::{Level, LogEntry};

/// Limits on what one entry and one request may carry.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Longest service name, in bytes. Names use letters, digits and `._-:/`.
    #[arg(long, env = "TAILLIGHT_MAX_SERVICE_LEN", default_value_t = 128)]
    pub max_service_len: usize,
    /// Largest message, in bytes.
    #[arg(long, env = "TAILLIGHT_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,
    /// Most tags on one entry.
    #[arg(long, env = "TAILLIGHT_MAX_TAGS", default_value_t = 32)]
    pub max_tags: usize,
    /// Longest tag, in bytes.
    #[arg(long, env = "TAILLIGHT_MAX_TAG_LEN", default_value_t = 128)]
    pub max_tag_len: usize,
    /// Most attributes on one entry.
    #[arg(long, env = "TAILLIGHT_MAX_ATTRIBUTES", default_value_t = 64)]
    pub max_attributes: usize,
    /// Longest attribute key, in bytes.
    #[arg(long, env = "TAILLIGHT_MAX_ATTRIBUTE_KEY_LEN", default_value_t = 128)]
    pub max_attribute_key_len: usize,
    /// Longest attribute value, in bytes.
    #[arg(
        long,
        env = "TAILLIGHT_MAX_ATTRIBUTE_VALUE_BYTES",
        default_value_t = 4096
    )]
    pub max_attribute_value_bytes: usize,
    /// Largest request body or gRPC message, in bytes.
    #[arg(long, env = "TAILLIGHT_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_service_len: 128,
            max_message_bytes: 64 * 1024,
            max_tags: 32,
            max_tag_len: 128,
            max_attributes: 64,
            max_attribute_key_len: 128,
            max_attribute_value_bytes: 4096,
            max_request_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Earliest and latest entry time accepted: years 1970 to 9999.
const MAX_TIME_US: i64 = 253_402_300_799_999_999;

fn valid_service_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/')
}

impl Limits {
    pub fn check_service(&self, service: &str) -> Result<(), FieldViolation> {
        if service.is_empty() {
            return Err(FieldViolation::new("service", "is required"));
        }
        if service.len() > self.max_service_len {
            return Err(FieldViolation::new(
                "service",
                format!(
                    "is {} bytes, the limit is {}",
                    service.len(),
                    self.max_service_len
                ),
            ));
        }
        if let Some(c) = service.chars().find(|c| !valid_service_char(*c)) {
            return Err(FieldViolation::new(
                "service",
                format!("contains {c:?}; only letters, digits and . _ - : / are allowed"),
            ));
        }
        Ok(())
    }

    /// Checks an entry and fills in its defaults (level INFO, time = receipt).
    /// The field path in the violation is relative to the entry.
    pub fn check_entry(&self, e: &mut LogEntry, received_us: i64) -> Result<(), FieldViolation> {
        self.check_service(&e.service)?;
        match Level::try_from(e.level) {
            Ok(Level::Unspecified) => e.level = Level::Info as i32,
            Ok(_) => {}
            Err(_) => {
                return Err(FieldViolation::new(
                    "level",
                    format!("{} is not a level (1 TRACE .. 6 FATAL)", e.level),
                ));
            }
        }
        if e.message.len() > self.max_message_bytes {
            return Err(FieldViolation::new(
                "message",
                format!(
                    "is {} bytes, the limit is {}",
                    e.message.len(),
                    self.max_message_bytes
                ),
            ));
        }
        if e.tags.len() > self.max_tags {
            return Err(FieldViolation::new(
                "tags",
                format!("has {} tags, the limit is {}", e.tags.len(), self.max_tags),
            ));
        }
        for (i, tag) in e.tags.iter().enumerate() {
            let field = format!("tags[{i}]");
            if tag.is_empty() {
                return Err(FieldViolation::new(field, "is empty"));
            }
            if tag.len() > self.max_tag_len {
                return Err(FieldViolation::new(
                    field,
                    format!("is {} bytes, the limit is {}", tag.len(), self.max_tag_len),
                ));
            }
            if tag.chars().any(char::is_control) {
                return Err(FieldViolation::new(field, "contains a control character"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        e.tags.retain(|t| seen.insert(t.clone()));
        if e.attributes.len() > self.max_attributes {
            return Err(FieldViolation::new(
                "attributes",
                format!(
                    "has {} keys, the limit is {}",
                    e.attributes.len(),
                    self.max_attributes
                ),
            ));
        }
        for (k, v) in &e.attributes {
            let field = format!("attributes.{k}");
            if k.is_empty() {
                return Err(FieldViolation::new("attributes", "has an empty key"));
            }
            if k.len() > self.max_attribute_key_len {
                return Err(FieldViolation::new(
                    field,
                    format!(
                        "key is {} bytes, the limit is {}",
                        k.len(),
                        self.max_attribute_key_len
                    ),
                ));
            }
            if v.len() > self.max_attribute_value_bytes {
                return Err(FieldViolation::new(
                    field,
                    format!(
                        "value is {} bytes, the limit is {}",
                        v.len(),
                        self.max_attribute_value_bytes
                    ),
                ));
            }
        }
        check_id(&mut e.trace_id, "trace_id", 32)?;
        check_id(&mut e.span_id, "span_id", 16)?;
        match &e.time {
            None => e.time = Some(time::from_micros(received_us)),
            Some(t) => {
                let us = time::to_micros(t);
                if !(0..1_000_000_000).contains(&t.nanos) || !(0..=MAX_TIME_US).contains(&us) {
                    return Err(FieldViolation::new(
                        "time",
                        "must lie between 1970-01-01 and 9999-12-31 with nanos in 0..1e9",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A trace or span id: empty, or `digits` hex digits, kept in lower case;
/// all zeros (W3C's "no id") is kept as empty.
fn check_id(id: &mut String, field: &str, digits: usize) -> Result<(), FieldViolation> {
    if id.is_empty() {
        return Ok(());
    }
    if id.len() != digits || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldViolation::new(
            field,
            format!("{id:?} is not {digits} hex digits"),
        ));
    }
    id.make_ascii_lowercase();
    if id.bytes().all(|b| b == b'0') {
        id.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever an entry holds, checking it ends in a clean entry or
        /// a violation naming a field; never a panic.
        #[test]
        fn any_entry_is_made_clean_or_refused_by_field(
            service in ".{0,40}",
            level in -2i32..10,
            message in ".{0,100}",
            tags in proptest::collection::vec(".{0,10}", 0..40),
            attrs in proptest::collection::hash_map(".{0,8}", ".{0,8}", 0..5),
            trace in "[0-9a-fA-FxZ]{0,34}",
            seconds in -10i64..400_000_000_000,
            nanos in -5i32..1_100_000_000,
        ) {
            let mut e = LogEntry {
                service, level, message, tags, attributes: attrs, trace_id: trace,
                time: Some(prost_types::Timestamp { seconds, nanos }),
                ..Default::default()
            };
            match Limits::default().check_entry(&mut e, 0) {
                Ok(()) => {
                    proptest::prop_assert!(Limits::default().check_service(&e.service).is_ok());
                    proptest::prop_assert!((1..=6).contains(&e.level));
                    let unique: std::collections::HashSet<_> = e.tags.iter().collect();
                    proptest::prop_assert_eq!(unique.len(), e.tags.len());
                    proptest::prop_assert!(e.trace_id.is_empty() || e.trace_id.len() == 32);
                }
                Err(v) => proptest::prop_assert!(!v.field.is_empty()),
            }
        }
    }

    fn entry(service: &str) -> LogEntry {
        LogEntry {
            service: service.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_violations() {
        let l = Limits::default();
        let mut e = entry("api-1");
        e.tags = vec!["a".into(), "a".into(), "b".into()];
        l.check_entry(&mut e, 42).unwrap();
        assert_eq!(e.level, Level::Info as i32);
        assert_eq!(e.tags, ["a", "b"]);
        assert_eq!(e.time, Some(time::from_micros(42)));

        let err = l.check_entry(&mut entry(""), 0).unwrap_err();
        assert_eq!(err.field, "service");
        let err = l.check_entry(&mut entry("bad name"), 0).unwrap_err();
        assert!(err.description.contains("' '"), "{err:?}");
        let mut e = entry("x");
        e.message = "m".repeat(l.max_message_bytes + 1);
        let err = l.check_entry(&mut e, 0).unwrap_err();
        assert_eq!(err.field, "message");
        assert!(err.description.contains("65536"), "{err:?}");
        let mut e = entry("x");
        e.level = 42;
        assert_eq!(l.check_entry(&mut e, 0).unwrap_err().field, "level");

        let mut e = entry("x");
        e.trace_id = "4BF92F3577B34DA6A3CE929D0E0E4736".into();
        e.span_id = "0000000000000000".into();
        l.check_entry(&mut e, 0).unwrap();
        assert_eq!(
            (e.trace_id.as_str(), e.span_id.as_str()),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "")
        );
        let mut e = entry("x");
        e.span_id = "xyz".into();
        assert_eq!(l.check_entry(&mut e, 0).unwrap_err().field, "span_id");
    }
}
