//! Service patterns (of API keys, and filters limited by them): `*` for any run of characters, `?` for any
//! one, everything else itself (case matters, as in service names).

/// A service name pattern, e.g. `api*` or `payments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Checks `text` is a pattern a service could match.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("a service pattern is empty".into());
        }
        if t.chars().any(char::is_control) {
            return Err(format!("service pattern {t:?} has a control character"));
        }
        Ok(Pattern(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `service` matches the whole pattern.
    pub fn matches(&self, service: &str) -> bool {
        let (p, s): (Vec<char>, Vec<char>) = (self.0.chars().collect(), service.chars().collect());
        glob(&p, &s)
    }
}

/// Iterative glob match with one backtrack point (the last `*`): linear in
/// practice, never exponential.
fn glob(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, s: &str| Pattern::parse(p).unwrap().matches(s);
        assert!(m("api*", "api"));
        assert!(m("api*", "api-gateway"));
        assert!(!m("api*", "web-api"));
        assert!(m("*api*", "web-api-2"));
        assert!(m("pay?ents", "payments"));
        assert!(!m("payments", "Payments"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("*", ""));
        assert!(m("caf?", "café"));
        assert!(Pattern::parse(" ").is_err());
    }
}
