//! RFC 3164 ("BSD syslog"), after `<PRI>`: `TIMESTAMP HOSTNAME TAG: MSG`,
//! as senders actually write it. The RFC itself describes what was seen in
//! the wild rather than a format, so nothing here fails: what cannot be
//! read as a header field is part of the message (as a relay does, 4.3).
//!
//! - The timestamp is `Mmm dd hh:mm:ss` (with fractions of a second when a
//!   sender adds them), in no year and no zone: it is read as UTC, in the
//!   server's current year unless that puts it more than a week ahead (a
//!   December message arriving in January is last year's; a January one
//!   arriving on December 31st, next year's). An RFC 3339 timestamp is
//!   taken too, with its offset (rsyslog's forwarding format).
//! - The hostname is only looked for after a timestamp, and is not one when
//!   the word there is already the tag (senders that leave it out).
//! - The tag is the first word when it ends with `:`, maybe as `prog[pid]:`;
//!   Python's `SysLogHandler` sends no timestamp and no hostname, and its
//!   ident (`app: `) is such a tag.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::fields::Fields;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How far ahead of the server's clock a sender's may run.
const WEEK_US: i64 = 7 * 86_400 * 1_000_000;

/// Longest tag taken as one (the RFC says 32; programs' names run longer).
const MAX_TAG: usize = 64;

/// The fields of a message after its `<PRI>`, reading a year-less timestamp
/// relative to `now_us`.
pub fn parse(text: &str, now_us: i64) -> Fields<'_> {
    let mut fields = Fields::default();
    let mut rest = text;
    if let Some((us, after)) = timestamp(text, now_us) {
        fields.time_us = Some(us);
        rest = after;
        if let Some((word, after)) = rest.split_once(' ')
            && !word.is_empty()
            && tag(word).is_none()
        {
            fields.hostname = Some(word);
            rest = after;
        }
    }
    let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
    if let Some((app, pid)) = tag(word) {
        fields.app = Some(app);
        fields.procid = pid;
        rest = after;
    }
    fields.msg = rest;
    fields
}

/// `prog:` or `prog[pid]:`.
fn tag(word: &str) -> Option<(&str, Option<&str>)> {
    let tag = word.strip_suffix(':')?;
    let (app, pid) = match tag.strip_suffix(']').and_then(|t| t.split_once('[')) {
        Some((app, pid)) => (app, Some(pid).filter(|p| !p.is_empty())),
        None => (tag, None),
    };
    let ok = !app.is_empty() && app.len() <= MAX_TAG && !app.contains(['[', ']']);
    ok.then_some((app, pid))
}

/// A timestamp at the start of `text`, in microseconds, and what follows
/// its space.
fn timestamp(text: &str, now_us: i64) -> Option<(i64, &str)> {
    bsd_timestamp(text, now_us).or_else(|| {
        let (word, after) = text.split_once(' ').unwrap_or((text, ""));
        let t = DateTime::parse_from_rfc3339(word).ok()?;
        Some((t.timestamp_micros(), after))
    })
}

/// `Mmm dd hh:mm:ss[.fff]`, the day padded with a space or a zero (or not).
fn bsd_timestamp(text: &str, now_us: i64) -> Option<(i64, &str)> {
    let month = MONTHS.iter().position(|m| text.starts_with(m))? as u32 + 1;
    let rest = text[3..].strip_prefix(' ')?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (day, rest) = number(rest, 1, 2)?;
    let rest = rest.strip_prefix(' ')?;
    let (hour, rest) = number(rest, 2, 2)?;
    let (min, rest) = number(rest.strip_prefix(':')?, 2, 2)?;
    let (sec, rest) = number(rest.strip_prefix(':')?, 2, 2)?;
    let (micros, rest) = match rest.strip_prefix('.') {
        Some(frac) => fraction(frac)?,
        None => (0, rest),
    };
    let after = match rest {
        "" => "",
        _ => rest.strip_prefix(' ')?,
    };
    let now = DateTime::<Utc>::from_timestamp_micros(now_us)?;
    // The latest year that does not put it more than a week ahead of now.
    let us = (now.year() - 1..=now.year() + 1)
        .rev()
        .filter_map(|year| {
            let date = NaiveDate::from_ymd_opt(year, month, day)?;
            let t = date.and_hms_micro_opt(hour, min, sec, micros)?;
            Some(t.and_utc().timestamp_micros())
        })
        .find(|us| us - now_us <= WEEK_US)?;
    Some((us, after))
}

/// `min..=max` ASCII digits at the start of `text`.
fn number(text: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = text
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if n < min {
        return None;
    }
    Some((text[..n].parse().ok()?, &text[n..]))
}

/// Fractional seconds (1 to 9 digits) as microseconds.
fn fraction(text: &str) -> Option<(u32, &str)> {
    let n = text.bytes().take(9).take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let micros = text[..n.min(6)]
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0, |us, d| us * 10 + u32::from(d - b'0'));
    Some((micros, &text[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time;

    /// 2003-10-20T00:00:00Z: "now" for the RFC's examples.
    const NOW: i64 = 1_066_608_000_000_000;

    fn at(text: &str) -> i64 {
        time::parse(text).unwrap()
    }

    /// RFC 3164, 5.4, example 1.
    #[test]
    fn example_1() {
        let f = parse(
            "Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            NOW,
        );
        assert_eq!(f.time_us, Some(at("2003-10-11T22:14:15Z")));
        assert_eq!(
            (f.hostname, f.app, f.procid),
            (Some("mymachine"), Some("su"), None)
        );
        assert_eq!(f.msg, "'su root' failed for lonvick on /dev/pts/8");
    }

    /// Example 2: no tag; the day padded with a space.
    #[test]
    fn example_2() {
        let f = parse("Feb  5 17:32:18 10.0.0.99 Use the BFG!", NOW);
        assert_eq!(f.time_us, Some(at("2003-02-05T17:32:18Z")));
        assert_eq!((f.hostname, f.app), (Some("10.0.0.99"), None));
        assert_eq!(f.msg, "Use the BFG!");
    }

    /// Example 3: the RFC reads "CST" as the hostname, and so do we.
    #[test]
    fn example_3() {
        let f = parse(
            "Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.",
            NOW,
        );
        assert_eq!(f.time_us, Some(at("2003-08-24T05:34:00Z")));
        assert_eq!((f.hostname, f.app), (Some("CST"), None));
        assert_eq!(
            f.msg,
            "1987 mymachine myproc[10]: %% It's time to make the do-nuts."
        );
    }

    /// Example 4: no valid timestamp, so all of it is the message.
    #[test]
    fn example_4() {
        let text = "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!";
        let f = parse(text, NOW);
        assert_eq!((f.time_us, f.hostname, f.app), (None, None, None));
        assert_eq!(f.msg, text);
    }

    #[test]
    fn what_senders_send() {
        // util-linux logger --rfc3164.
        let f = parse("Dec  6 20:04:45 vm myapp[26276]: hello 3164", NOW);
        assert_eq!(
            (f.hostname, f.app, f.procid, f.msg),
            (Some("vm"), Some("myapp"), Some("26276"), "hello 3164")
        );
        // Python's SysLogHandler, with and without an ident.
        let f = parse("pyapp: py udp warn", NOW);
        assert_eq!(
            (f.time_us, f.hostname, f.app, f.msg),
            (None, None, Some("pyapp"), "py udp warn")
        );
        let f = parse("py tcp err", NOW);
        assert_eq!((f.app, f.msg), (None, "py tcp err"));
        // No hostname after the timestamp; rsyslog's RFC 3339 timestamps;
        // milliseconds.
        let f = parse("Oct 11 22:14:15 cron[7]: ran", NOW);
        assert_eq!(
            (f.hostname, f.app, f.procid),
            (None, Some("cron"), Some("7"))
        );
        let f = parse("2003-10-11T22:14:15.5+02:00 web1 nginx: up", NOW);
        assert_eq!(f.time_us, Some(at("2003-10-11T20:14:15.5Z")));
        assert_eq!(
            (f.hostname, f.app, f.msg),
            (Some("web1"), Some("nginx"), "up")
        );
        let f = parse("Oct  1 01:02:03.250 h a: m", NOW);
        assert_eq!(f.time_us, Some(at("2003-10-01T01:02:03.25Z")));
    }

    #[test]
    fn the_year_is_this_one_unless_that_is_over_a_week_ahead() {
        let new_year = at("2004-01-01T00:00:10Z");
        let f = parse("Dec 31 23:59:50 h a: m", new_year);
        assert_eq!(f.time_us, Some(at("2003-12-31T23:59:50Z")));
        // A sender's clock a little ahead at the turn of the year.
        let f = parse("Jan  1 00:00:05 h a: m", at("2003-12-31T23:59:59Z"));
        assert_eq!(f.time_us, Some(at("2004-01-01T00:00:05Z")));
        // Feb 29 exists in a leap year only.
        let f = parse("Feb 29 12:00:00 h a: m", at("2004-03-01T00:00:00Z"));
        assert_eq!(f.time_us, Some(at("2004-02-29T12:00:00Z")));
    }

    #[test]
    fn what_is_not_a_header_stays_in_the_message() {
        for text in [
            "Oct 32 10:00:00 h a: m",
            "Oct 11 25:00:00 h",
            "Octo 11 22:14:15 x",
        ] {
            let f = parse(text, NOW);
            assert_eq!((f.time_us, f.hostname), (None, None), "{text}");
        }
        assert_eq!(parse(": m", NOW).app, None);
        assert_eq!(parse("a[1]b: m", NOW).app, None);
        assert_eq!(parse("", NOW).msg, "");
    }
}
