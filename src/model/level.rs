//! Log levels: parsing the names people actually type, and printing them.

use crate::proto::Level;

/// Parses a level name case-insensitively, with the usual aliases
/// (`WARNING`, `CRITICAL`, ...), the proto enum names (`LEVEL_WARN`) and the
/// enum numbers. Returns `None` for anything else.
pub fn parse(text: &str) -> Option<Level> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Level::try_from(n).ok().filter(|l| *l != Level::Unspecified);
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("LEVEL_").unwrap_or(&upper);
    Some(match name {
        "TRACE" | "TRC" => Level::Trace,
        "DEBUG" | "DBG" => Level::Debug,
        "INFO" | "INF" | "INFORMATION" | "NOTICE" => Level::Info,
        "WARN" | "WARNING" | "WRN" => Level::Warn,
        "ERROR" | "ERR" => Level::Error,
        "FATAL" | "CRITICAL" | "CRIT" | "PANIC" | "EMERG" | "EMERGENCY" | "ALERT" => Level::Fatal,
        _ => return None,
    })
}

/// The short upper-case name used in JSON, the seed API and terminal output.
pub fn name(level: i32) -> &'static str {
    match Level::try_from(level).unwrap_or(Level::Unspecified) {
        Level::Unspecified => "UNSPECIFIED",
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
        Level::Fatal => "FATAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_case() {
        assert_eq!(parse("warning"), Some(Level::Warn));
        assert_eq!(parse("Critical"), Some(Level::Fatal));
        assert_eq!(parse("LEVEL_DEBUG"), Some(Level::Debug));
        assert_eq!(parse("5"), Some(Level::Error));
        assert_eq!(parse("0"), None);
        assert_eq!(parse("loud"), None);
        assert_eq!(name(Level::Warn as i32), "WARN");
    }
}
