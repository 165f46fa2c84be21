//! Alert rules as `--alerts-file` declares them (TOML, `[[alert]]` tables),
//! checked whole before any is used: a file with one bad rule is refused,
//! and the error names the rule and the field.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use crate::model::time::parse_duration;
use crate::model::{Filter, level};

/// Quiet time after a notification when a rule does not say.
const DEFAULT_REPEAT: Duration = Duration::from_secs(300);
/// Bounds on a window: a second is the evaluation's tick, a week is more
/// than the evaluator keeps in mind for any rule.
const MIN_WINDOW: Duration = Duration::from_secs(1);
const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// Most matching entries a threshold may ask for: the evaluator keeps the
/// time of each one within the window, so this bounds its memory.
pub const MAX_THRESHOLD: u32 = 100_000;
/// Most rules in a file.
const MAX_RULES: usize = 1_000;

/// How a notification's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{alert, state, count, window, first_id, last_id, samples, url}`.
    Json,
    /// A Slack incoming-webhook body, `{"text": ...}`.
    Slack,
}

/// When a rule holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// At least this many matching entries within the window.
    AtLeast(u32),
    /// No matching entry for the window: a service that went quiet.
    Absent,
}

/// One checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique within the file; names the rule in notifications, metrics
    /// and firings.
    pub name: String,
    /// The entries the rule counts: every `LogFilter` field but `within`.
    pub filter: Filter,
    pub condition: Condition,
    pub window: Duration,
    /// Quiet time after a notification.
    pub repeat: Duration,
    /// An http(s) URL the notifications are POSTed to.
    pub webhook: String,
    pub format: Format,
}

/// A rule, or the file, that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {field}: {message}")]
pub struct RuleError {
    /// `alert "NAME"`, `alert #N` before its name is known, or `file`.
    pub rule: String,
    /// The field at fault, as written in the file.
    pub field: String,
    pub message: String,
}

/// A rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleIn {
    name: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    levels: Vec<String>,
    #[serde(default)]
    min_level: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    threshold: Option<i64>,
    #[serde(default)]
    absent: bool,
    window: String,
    #[serde(default)]
    repeat: Option<String>,
    webhook: String,
    #[serde(default)]
    format: Option<String>,
}

/// The file as written: only `[[alert]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    #[serde(default)]
    alert: Vec<toml::Value>,
}

/// The rules of a file's text, all checked.
pub fn parse(text: &str) -> Result<Vec<Rule>, RuleError> {
    let file_error = |field: &str, message: String| RuleError {
        rule: "file".into(),
        field: field.into(),
        message,
    };
    let file: FileIn = toml::from_str(text).map_err(|e| file_error("toml", e.to_string()))?;
    if file.alert.len() > MAX_RULES {
        let n = file.alert.len();
        return Err(file_error(
            "alert",
            format!("has {n} rules, the limit is {MAX_RULES}"),
        ));
    }
    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(file.alert.len());
    for (i, value) in file.alert.into_iter().enumerate() {
        let label = match value.get("name").and_then(|n| n.as_str()) {
            Some(name) => format!("alert {name:?}"),
            None => format!("alert #{}", i + 1),
        };
        let rule = one(value).map_err(|(field, message)| RuleError {
            rule: label.clone(),
            field,
            message,
        })?;
        if !names.insert(rule.name.clone()) {
            return Err(RuleError {
                rule: label,
                field: "name".into(),
                message: "is used by an earlier rule; names must be unique".into(),
            });
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// One rule, or the field at fault and why.
fn one(value: toml::Value) -> Result<Rule, (String, String)> {
    let raw: RuleIn = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        // An unknown or missing field is named in the message, not the path.
        let field = match field.as_str() {
            "." | "" => field_in(&message).unwrap_or_else(|| "alert".into()),
            _ => field,
        };
        (field, message)
    })?;
    check(raw)
}

/// The field a serde message names in backquotes (`unknown field `x``).
fn field_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

fn check(raw: RuleIn) -> Result<Rule, (String, String)> {
    let bad = |field: &str, message: String| Err((field.to_string(), message));
    if raw.name.trim().is_empty() || raw.name.len() > 200 {
        return bad("name", "must be 1 to 200 characters".into());
    }
    let level_of = |field: &str, text: &str| {
        level::parse(text).map(|l| l as i32).ok_or_else(|| {
            (
                field.to_string(),
                format!("{text:?} is not a level; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL"),
            )
        })
    };
    let levels = (raw.levels.iter().enumerate())
        .map(|(i, l)| level_of(&format!("levels[{i}]"), l))
        .collect::<Result<Vec<_>, _>>()?;
    let min_level = match &raw.min_level {
        Some(l) => level_of("min_level", l)?,
        None => 0,
    };
    let window = duration("window", &raw.window)?;
    if !(MIN_WINDOW..=MAX_WINDOW).contains(&window) {
        return bad(
            "window",
            format!("{:?} is not between 1s and 7d", raw.window),
        );
    }
    let repeat = match &raw.repeat {
        Some(r) => duration("repeat", r)?,
        None => DEFAULT_REPEAT,
    };
    let condition = match (raw.absent, raw.threshold) {
        (true, Some(_)) => return bad("threshold", "has no meaning with absent = true".into()),
        (true, None) => Condition::Absent,
        (false, None) => Condition::AtLeast(1),
        (false, Some(n)) if (1..=i64::from(MAX_THRESHOLD)).contains(&n) => {
            Condition::AtLeast(n as u32)
        }
        (false, Some(n)) => {
            return bad(
                "threshold",
                format!("{n} is not between 1 and {MAX_THRESHOLD}"),
            );
        }
    };
    let format = match raw.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("slack") => Format::Slack,
        Some(other) => return bad("format", format!("{other:?} is not json or slack")),
    };
    webhook(&raw.webhook)?;
    Ok(Rule {
        name: raw.name,
        filter: Filter {
            services: raw.services,
            levels,
            min_level,
            tags: raw.tags,
            text: raw.text,
            within: None,
        },
        condition,
        window,
        repeat,
        webhook: raw.webhook,
        format,
    })
}

fn duration(field: &str, text: &str) -> Result<Duration, (String, String)> {
    parse_duration(text).map_err(|e| (field.to_string(), e))
}

/// Checks that `url` is an absolute http(s) URL with a host.
fn webhook(url: &str) -> Result<(), (String, String)> {
    let bad = |why: &str| Err(("webhook".to_string(), format!("{url:?} {why}")));
    let Ok(uri) = url.parse::<http::Uri>() else {
        return bad("is not a URL");
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return bad("is not an http(s) URL"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return bad("has no host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[alert]]
        name = "payments errors"
        services = ["payments"]
        min_level = "error"
        text = "timeout"
        threshold = 3
        window = "1m"
        repeat = "10m"
        webhook = "http://hooks.example/notify"
        format = "slack"

        [[alert]]
        name = "checkout quiet"
        services = ["checkout"]
        absent = true
        window = "5m"
        webhook = "https://hooks.example/quiet"
    "#;

    #[test]
    fn a_good_file_gives_its_rules() {
        let rules = parse(GOOD).expect("good");
        assert_eq!(rules.len(), 2);
        let r = &rules[0];
        assert_eq!(r.filter.services, ["payments"]);
        assert_eq!(r.filter.min_level, crate::proto::Level::Error as i32);
        assert_eq!(r.filter.text, "timeout");
        assert_eq!(r.condition, Condition::AtLeast(3));
        assert_eq!(
            (r.window, r.repeat),
            (Duration::from_secs(60), Duration::from_secs(600))
        );
        assert_eq!(r.format, Format::Slack);
        let q = &rules[1];
        assert_eq!(q.condition, Condition::Absent);
        assert_eq!((q.repeat, q.format), (DEFAULT_REPEAT, Format::Json));
        assert!(parse("").expect("empty").is_empty());
    }

    #[test]
    fn each_bad_rule_is_named_with_its_field() {
        let cases = [
            ("wat = 1", "alert \"x\"", "wat"),
            ("window = \"5x\"", "alert \"x\"", "window"),
            ("window = \"0s\"", "alert \"x\"", "window"),
            ("min_level = \"loud\"", "alert \"x\"", "min_level"),
            ("levels = [\"info\", \"nope\"]", "alert \"x\"", "levels[1]"),
            ("threshold = 0", "alert \"x\"", "threshold"),
            ("absent = true\nthreshold = 2", "alert \"x\"", "threshold"),
            ("format = \"xml\"", "alert \"x\"", "format"),
            ("webhook = \"ftp://h/x\"", "alert \"x\"", "webhook"),
            ("webhook = \"not a url\"", "alert \"x\"", "webhook"),
            ("services = \"payments\"", "alert \"x\"", "services"),
        ];
        for (line, rule, field) in cases {
            // A later key replaces nothing in TOML: the case's line comes
            // first and the defaults fill in only what it leaves out.
            let mut keys = vec![line.to_string()];
            for (k, v) in [("window", "\"1m\""), ("webhook", "\"http://h/x\"")] {
                if !line.starts_with(k) && !line.contains(&format!("\n{k}")) {
                    keys.push(format!("{k} = {v}"));
                }
            }
            let text = format!("[[alert]]\nname = \"x\"\n{}\n", keys.join("\n"));
            let e = parse(&text).expect_err(line);
            assert_eq!(
                (e.rule.as_str(), e.field.as_str()),
                (rule, field),
                "{line}: {e}"
            );
        }
        let e = parse("[[alert]]\nwindow = \"1m\"\nwebhook = \"http://h\"").expect_err("no name");
        assert_eq!(
            (e.rule.as_str(), e.field.as_str()),
            ("alert #1", "name"),
            "{e}"
        );
        let twice = "[[alert]]\nname = \"a\"\nwindow = \"1m\"\nwebhook = \"http://h\"\n";
        let e = parse(&twice.repeat(2)).expect_err("twice");
        assert_eq!(e.field, "name", "{e}");
        let e = parse("[alert]\nname = 1").expect_err("not a list");
        assert_eq!(e.rule, "file", "{e}");
    }
}
