//! The record filter shared by Tail (matched in memory) and QueryLogs
//! (translated to SQL by the store). Both must agree on every record, so the
//! semantics live here once: services, levels and tags match any of their
//! values, the text matches as an ASCII-case-insensitive substring (what SQL
//! `LIKE` does), and all given criteria must hold.

use std::sync::Arc;

use super::Pattern;
use crate::proto::{self, LogRecord};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these services; empty matches all.
    pub services: Vec<String>,
    /// Any of these levels; empty matches all.
    pub levels: Vec<i32>,
    /// At least this level; 0 matches all.
    pub min_level: i32,
    /// At least one of these tags; empty matches all.
    pub tags: Vec<String>,
    /// Substring of the message; empty matches all.
    pub text: String,
    /// Only services matching one of these, whatever else is asked: the
    /// services an API key may read. `None` limits nothing.
    pub within: Option<Arc<[Pattern]>>,
}

impl Filter {
    pub fn from_proto(f: Option<proto::LogFilter>) -> Self {
        let f = f.unwrap_or_default();
        Filter {
            services: f.services.into_iter().filter(|s| !s.is_empty()).collect(),
            levels: f.levels.into_iter().filter(|l| *l != 0).collect(),
            min_level: f.min_level,
            tags: f.tags.into_iter().filter(|t| !t.is_empty()).collect(),
            text: f.text,
            within: None,
        }
    }

    /// Whether `service` is within the patterns the filter is limited to.
    pub fn within(&self, service: &str) -> bool {
        self.within
            .as_ref()
            .is_none_or(|w| w.iter().any(|p| p.matches(service)))
    }

    /// The filter with `within` resolved against `known` (every stored
    /// service) into plain services, as a store can look them up; `None`
    /// when no stored service can match.
    pub fn resolved(&self, known: &[String]) -> Option<Filter> {
        if self.within.is_none() {
            return Some(self.clone());
        }
        let asked = match self.services.is_empty() {
            true => known,
            false => &self.services[..],
        };
        let services: Vec<String> = asked.iter().filter(|s| self.within(s)).cloned().collect();
        (!services.is_empty()).then(|| Filter {
            services,
            within: None,
            ..self.clone()
        })
    }

    pub fn matches(&self, r: &LogRecord) -> bool {
        (self.services.is_empty() || self.services.contains(&r.service))
            && self.within(&r.service)
            && (self.levels.is_empty() || self.levels.contains(&r.level))
            && r.level >= self.min_level
            && (self.tags.is_empty() || r.tags.iter().any(|t| self.tags.contains(t)))
            && contains_ignore_ascii_case(&r.message, &self.text)
    }
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(service: &str, level: i32, tags: &[&str], msg: &str) -> LogRecord {
        LogRecord {
            service: service.into(),
            level,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            message: msg.into(),
            ..Default::default()
        }
    }

    #[test]
    fn criteria_combine() {
        let f = Filter {
            services: vec!["api".into()],
            min_level: 4,
            tags: vec!["db".into(), "auth".into()],
            text: "TIMEOUT".into(),
            ..Default::default()
        };
        assert!(f.matches(&rec("api", 5, &["auth"], "upstream timeout")));
        assert!(!f.matches(&rec("web", 5, &["auth"], "upstream timeout")));
        assert!(!f.matches(&rec("api", 3, &["auth"], "upstream timeout")));
        assert!(!f.matches(&rec("api", 5, &["cache"], "upstream timeout")));
        assert!(!f.matches(&rec("api", 5, &["auth"], "all good")));
        assert!(Filter::default().matches(&rec("x", 1, &[], "")));
    }

    #[test]
    fn within_limits_live_and_resolves_for_stores() {
        let f = Filter {
            within: Some(vec![Pattern::parse("api*").unwrap()].into()),
            ..Default::default()
        };
        assert!(f.matches(&rec("api-1", 3, &[], "")));
        assert!(!f.matches(&rec("web", 3, &[], "")));
        let known = ["api-1".to_string(), "api-2".into(), "web".into()];
        assert_eq!(f.resolved(&known).unwrap().services, ["api-1", "api-2"]);
        assert!(f.resolved(&["web".to_string()]).is_none());
        let asked = Filter {
            services: vec!["web".into()],
            ..f
        };
        assert!(asked.resolved(&known).is_none());
    }
}
