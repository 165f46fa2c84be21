//! One syslog message to one entry: `<PRI>` first, then RFC 5424 when the
//! version `1` follows, else RFC 3164. App-name (or tag) is the service,
//! severity the level; facility, severity, hostname, procid, msgid and
//! structured data become attributes.

use std::collections::HashMap;

use super::fields::Fields;
use super::{rfc3164, rfc5424};
use crate::model::{FieldViolation, time};
use crate::proto::{Level, LogEntry};

/// Why a message (or a piece of the stream) could not become an entry;
/// `reason` labels the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Longer than `--syslog-max-message-bytes` (at least `bytes`).
    TooLarge {
        bytes: usize,
        limit: usize,
    },
    NotUtf8,
    /// Not syslog, or a broken header: what is wrong.
    Malformed(String),
    /// An octet count that is not one: TCP framing was lost.
    BadFrame,
    /// A connection ended or stalled in the middle of a message.
    Incomplete {
        bytes: usize,
    },
    /// An entry that breaks a limit (found by the intake).
    Invalid(FieldViolation),
}

impl Reject {
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::TooLarge { .. } => "too_large",
            Reject::NotUtf8 => "not_utf8",
            Reject::Malformed(_) => "malformed",
            Reject::BadFrame => "bad_frame",
            Reject::Incomplete { .. } => "incomplete",
            Reject::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::TooLarge { bytes, limit } => {
                write!(f, "message is at least {bytes} bytes, the limit is {limit}")
            }
            Reject::NotUtf8 => f.write_str("message is not UTF-8"),
            Reject::Malformed(why) => f.write_str(why),
            Reject::BadFrame => f.write_str("a frame begins with a digit but no octet count"),
            Reject::Incomplete { bytes } => {
                write!(
                    f,
                    "the connection ended or stalled {bytes} bytes into a message"
                )
            }
            Reject::Invalid(v) => write!(f, "{}: {}", v.field, v.description),
        }
    }
}

/// What a message is read with besides its text.
pub struct Context<'a> {
    /// Service of messages without an app-name or tag.
    pub default_service: &'a str,
    /// Longest service name (a longer app-name is cut).
    pub max_service_len: usize,
    /// The sender's address: the host of messages that name none.
    pub peer: &'a str,
    /// Now, for RFC 3164's year-less timestamps.
    pub now_us: i64,
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// One message (without its framing) as an entry.
pub fn entry(message: &[u8], cx: &Context<'_>) -> Result<LogEntry, Reject> {
    let text = std::str::from_utf8(message).map_err(|_| Reject::NotUtf8)?;
    // Senders end datagrams and counted frames with what ends a line.
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let (pri, rest) = pri(text).map_err(Reject::Malformed)?;
    let fields = match rest.strip_prefix("1 ") {
        Some(rest) => rfc5424::parse(rest).map_err(Reject::Malformed)?,
        None => rfc3164::parse(rest, cx.now_us),
    };
    Ok(to_entry(pri, fields, cx))
}

/// `<PRI>`: facility * 8 + severity, 0 to 191.
fn pri(text: &str) -> Result<(u8, &str), String> {
    let no_pri = || "not syslog: no <PRI> (<0> to <191>) at the start".to_string();
    let inner = text.strip_prefix('<').ok_or_else(no_pri)?;
    let (digits, rest) = inner.split_once('>').ok_or_else(no_pri)?;
    if !(1..=3).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(no_pri());
    }
    match digits.parse::<u8>() {
        Ok(p) if p <= 191 => Ok((p, rest)),
        _ => Err(format!("PRI <{digits}> is above 191")),
    }
}

/// Severity 0-2 is FATAL, 3 ERROR, 4 WARN, 5-6 INFO, 7 DEBUG.
fn level(severity: u8) -> Level {
    match severity {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    }
}

fn to_entry(pri: u8, f: Fields<'_>, cx: &Context<'_>) -> LogEntry {
    let (facility, severity) = (pri / 8, pri % 8);
    let mut attributes: HashMap<String, String> = f.data.into_iter().collect();
    let mut set = |k: &str, v: &str| attributes.insert(k.to_string(), v.to_string());
    set("syslog.facility", FACILITIES[usize::from(facility)]);
    set("syslog.severity", SEVERITIES[usize::from(severity)]);
    // RFC 3164 (4.3.3): a relay names the sender when the message does not.
    set("host", f.hostname.unwrap_or(cx.peer));
    if let Some(p) = f.procid {
        set("syslog.procid", p);
    }
    if let Some(m) = f.msgid {
        set("syslog.msgid", m);
    }
    LogEntry {
        service: service(f.app, cx),
        level: level(severity) as i32,
        message: f.msg.to_string(),
        attributes,
        time: f.time_us.map(time::from_micros),
        ..Default::default()
    }
}

/// The app-name in the characters a service may have (others become `_`),
/// cut to the longest allowed; the default when there is none.
fn service(app: Option<&str>, cx: &Context<'_>) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-:/".contains(c);
    match app {
        Some(app) => app
            .chars()
            .map(|c| if allowed(c) { c } else { '_' })
            .take(cx.max_service_len)
            .collect(),
        None => cx.default_service.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            default_service: "syslog",
            max_service_len: 16,
            peer: "192.0.2.9",
            now_us: 1_066_608_000_000_000,
        }
    }

    fn parse(text: &str) -> LogEntry {
        entry(text.as_bytes(), &cx()).unwrap()
    }

    fn attr<'a>(e: &'a LogEntry, k: &str) -> Option<&'a str> {
        e.attributes.get(k).map(String::as_str)
    }

    #[test]
    fn rfc5424_example_3() {
        let e = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
        );
        assert_eq!(e.service, "evntslog");
        assert_eq!(e.level, Level::Info as i32);
        assert_eq!(e.message, "An application event log entry...");
        assert_eq!(e.time, Some(time::from_micros(1_065_910_455_003_000)));
        assert_eq!(attr(&e, "syslog.facility"), Some("local4"));
        assert_eq!(attr(&e, "syslog.severity"), Some("notice"));
        assert_eq!(attr(&e, "host"), Some("mymachine.example.com"));
        assert_eq!(attr(&e, "syslog.msgid"), Some("ID47"));
        assert_eq!(attr(&e, "syslog.procid"), None);
        assert_eq!(
            attr(&e, "exampleSDID@32473.eventSource"),
            Some("Application")
        );
        assert_eq!(e.attributes.len(), 7);
    }

    #[test]
    fn rfc3164_example_1_and_pythons_handler() {
        let e =
            parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
        assert_eq!((e.service.as_str(), e.level), ("su", Level::Fatal as i32));
        assert_eq!(attr(&e, "syslog.facility"), Some("auth"));
        assert_eq!(attr(&e, "host"), Some("mymachine"));
        // No app, no host, no time: the defaults; the NUL Python adds goes.
        let e = entry(b"<11>py tcp err\0", &cx()).unwrap();
        assert_eq!(
            (e.service.as_str(), e.message.as_str()),
            ("syslog", "py tcp err")
        );
        assert_eq!(e.level, Level::Error as i32);
        assert_eq!(attr(&e, "host"), Some("192.0.2.9"));
        assert_eq!(e.time, None);
    }

    #[test]
    fn severities_to_levels() {
        let levels: Vec<i32> = (0..8).map(|s| parse(&format!("<{s}>m")).level).collect();
        use Level::*;
        let want = [Fatal, Fatal, Fatal, Error, Warn, Info, Info, Debug].map(|l| l as i32);
        assert_eq!(levels, want);
    }

    #[test]
    fn app_names_become_services() {
        assert_eq!(parse("<13>1 - h my@app!x - - - m").service, "my_app_x");
        assert_eq!(parse("<13>1 - h - - - - m").service, "syslog");
        assert_eq!(
            parse("<13>a-very-long-program-name: m").service,
            "a-very-long-prog"
        );
    }

    #[test]
    fn rejections_name_their_reason() {
        let reason = |m: &[u8]| entry(m, &cx()).unwrap_err().reason();
        assert_eq!(reason(b"<13>\xff\xfe"), "not_utf8");
        for garbage in [
            &b"hello"[..],
            b"",
            b"<>x",
            b"<1234>x",
            b"<192>x",
            b"<1x>",
            b"<13",
        ] {
            assert_eq!(reason(garbage), "malformed", "{garbage:?}");
        }
        assert_eq!(reason(b"<13>1 2003-13-45 h a - - - m"), "malformed");
        let err = entry(b"<999>x", &cx()).unwrap_err();
        assert!(err.to_string().contains("<999> is above 191"), "{err}");
    }
}
