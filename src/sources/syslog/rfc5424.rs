//! RFC 5424, after `<PRI>1 `: `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
//! STRUCTURED-DATA [MSG]`, each header field `-` when absent.

use chrono::DateTime;

use super::fields::Fields;

/// Longest SD-ID or PARAM-NAME (RFC 5424, 6.3).
const MAX_SD_NAME: usize = 32;

/// The fields of a message after its `<PRI>1 `, or what is wrong with it.
pub fn parse(text: &str) -> Result<Fields<'_>, String> {
    let (timestamp, rest) = field(text, "timestamp")?;
    let (hostname, rest) = field(rest, "hostname")?;
    let (app, rest) = field(rest, "app-name")?;
    let (procid, rest) = field(rest, "procid")?;
    let (msgid, rest) = field(rest, "msgid")?;
    let mut fields = Fields {
        time_us: time(timestamp)?,
        hostname: nil(hostname),
        app: nil(app),
        procid: nil(procid),
        msgid: nil(msgid),
        ..Fields::default()
    };
    let rest = match rest.strip_prefix('-') {
        Some(after) => after,
        None => structured_data(rest, &mut fields.data)?,
    };
    fields.msg = match rest {
        "" => "",
        _ => rest
            .strip_prefix(' ')
            .ok_or("structured data must be followed by a space")?,
    };
    // A UTF-8 message may say so with a byte order mark (6.4).
    fields.msg = fields.msg.strip_prefix('\u{feff}').unwrap_or(fields.msg);
    Ok(fields)
}

/// One header field and what follows its space.
fn field<'a>(text: &'a str, name: &str) -> Result<(&'a str, &'a str), String> {
    let (value, rest) = text
        .split_once(' ')
        .ok_or_else(|| format!("{name} is missing"))?;
    match value.is_empty() {
        true => Err(format!("{name} is empty (two spaces)")),
        false => Ok((value, rest)),
    }
}

fn nil(value: &str) -> Option<&str> {
    (value != "-").then_some(value)
}

fn time(timestamp: &str) -> Result<Option<i64>, String> {
    if timestamp == "-" {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(timestamp)
        .map(|t| Some(t.timestamp_micros()))
        .map_err(|e| format!("timestamp {timestamp:?} is not RFC 3339: {e}"))
}

/// `[ID NAME="VALUE" ...]...` into `out` as `ID.NAME` and the unescaped
/// value; what follows the last element.
fn structured_data<'a>(
    mut text: &'a str,
    out: &mut Vec<(String, String)>,
) -> Result<&'a str, String> {
    if !text.starts_with('[') {
        return Err("structured data must be - or begin with [".into());
    }
    while let Some(element) = text.strip_prefix('[') {
        let id_end = element
            .find([' ', ']'])
            .ok_or("structured data: an element is not closed")?;
        let id = sd_name(&element[..id_end], "SD-ID")?;
        let mut params = &element[id_end..];
        loop {
            if let Some(after) = params.strip_prefix(']') {
                text = after;
                break;
            }
            let param = params
                .strip_prefix(' ')
                .ok_or_else(|| format!("structured data: [{id} is not closed"))?;
            let (name, value) = param
                .split_once("=\"")
                .ok_or_else(|| format!("structured data: [{id} has a parameter without =\""))?;
            let name = sd_name(name, "PARAM-NAME")?;
            let (value, after) = param_value(value)
                .ok_or_else(|| format!("structured data: {id}.{name} is not closed by \""))?;
            out.push((format!("{id}.{name}"), value));
            params = after;
        }
    }
    Ok(text)
}

/// An SD-ID or PARAM-NAME: 1 to 32 printable ASCII characters but `=`,
/// space, `]` and `"`.
fn sd_name<'a>(name: &'a str, what: &str) -> Result<&'a str, String> {
    let ok = (1..=MAX_SD_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"=]\"".contains(&b));
    match ok {
        true => Ok(name),
        false => Err(format!("structured data: {what} {name:?} is not a name")),
    }
}

/// A PARAM-VALUE up to its closing quote, with `\"`, `\\` and `\]`
/// unescaped (any other backslash is kept, 6.3.3); what follows the quote.
fn param_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.clone().next() {
                Some((_, e @ ('"' | '\\' | ']'))) => {
                    value.push(e);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data<'a>(f: &'a Fields<'_>) -> Vec<(&'a str, &'a str)> {
        f.data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// RFC 5424, 6.5, example 1 (the BOM before MSG is dropped).
    #[test]
    fn example_1_no_structured_data() {
        let f =
            parse("2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8")
                .unwrap();
        assert_eq!(f.time_us, Some(1_065_910_455_003_000));
        assert_eq!(f.hostname, Some("mymachine.example.com"));
        assert_eq!((f.app, f.procid, f.msgid), (Some("su"), None, Some("ID47")));
        assert!(f.data.is_empty());
        assert_eq!(f.msg, "'su root' failed for lonvick on /dev/pts/8");
    }

    /// Example 2: microseconds, an offset, a procid and no BOM.
    #[test]
    fn example_2_offset_and_procid() {
        let f = parse(
            "2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        )
        .unwrap();
        assert_eq!(f.time_us, Some(1_061_727_255_000_003));
        assert_eq!(
            (f.hostname, f.app, f.procid, f.msgid),
            (Some("192.0.2.1"), Some("myproc"), Some("8710"), None)
        );
        assert_eq!(f.msg, "%% It's time to make the do-nuts.");
    }

    /// Examples 3 and 4: structured data, with and without a message.
    #[test]
    fn examples_3_and_4_structured_data() {
        let f = parse(
            "2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
        )
        .unwrap();
        assert_eq!(
            data(&f),
            [
                ("exampleSDID@32473.iut", "3"),
                ("exampleSDID@32473.eventSource", "Application"),
                ("exampleSDID@32473.eventID", "1011"),
            ]
        );
        assert_eq!(f.msg, "An application event log entry...");
        let f = parse(
            "2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
        )
        .unwrap();
        assert_eq!(data(&f).len(), 4);
        assert_eq!(data(&f)[3], ("examplePriority@32473.class", "high"));
        assert_eq!(f.msg, "");
    }

    #[test]
    fn escapes_in_values() {
        let f = parse(r#"- - - - - [a b="x\"y\\z\]w\n" c=""] m"#).unwrap();
        assert_eq!(data(&f), [("a.b", r#"x"y\z]w\n"#), ("a.c", "")]);
        assert_eq!(f.msg, "m");
        // An element without parameters, and ] or spaces in a value.
        let f = parse(r#"- h a - - [id][x y="[a b]"] m"#).unwrap();
        assert_eq!(data(&f), [("x.y", "[a b]")]);
    }

    #[test]
    fn what_is_wrong_is_named() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("2003-10-11 h").contains("hostname is missing"));
        assert!(err("yesterday h a p m - x").contains("timestamp"));
        assert!(err("- h  a p m - x").contains("app-name is empty"));
        assert!(err("- h a p m x").contains("must be - or begin with ["));
        assert!(err("- h a p m [id a=\"1\"").contains("not closed"));
        assert!(err("- h a p m [id a=1] x").contains("without =\""));
        assert!(err("- h a p m [id a=\"1] x").contains("id.a is not closed"));
        assert!(err("- h a p m [] x").contains("SD-ID"));
        assert!(err("- h a p m -x").contains("followed by a space"));
    }

    #[test]
    fn nil_fields_and_an_empty_message() {
        let f = parse("- - - - - -").unwrap();
        assert_eq!(f.time_us, None);
        assert_eq!(
            (f.hostname, f.app, f.procid, f.msgid),
            (None, None, None, None)
        );
        assert_eq!(f.msg, "");
    }
}
