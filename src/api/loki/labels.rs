//! A Loki stream's labels as the protobuf push spells them, the
//! Prometheus selector form `{job="api", msg="say \"hi\""}`.

/// The pairs of a label string, in order, or what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or("must be enclosed in { and }")?;
    let mut pairs = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or("a label has no '='")?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{name:?} is not a label name"));
        }
        let (value, after) = quoted(after.trim_start())?;
        pairs.push((name.to_string(), value));
        rest = after.trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err(format!("expected ',' before {rest:?}")),
        };
    }
    Ok(pairs)
}

/// A double-quoted value with Go's escapes, and the text after it.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let body = text
        .strip_prefix('"')
        .ok_or("a label value must be quoted")?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => out.push(match chars.next().map(|(_, c)| c) {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some(c @ ('"' | '\\' | '\'')) => c,
                other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
            }),
            c => out.push(c),
        }
    }
    Err("a label value is not closed".into())
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn selectors_parse_with_escapes() {
        assert_eq!(parse("{}"), Ok(vec![]));
        assert_eq!(
            parse(r#"{job="api", msg="say \"hi\"\n", x="a,b=c"}"#),
            Ok(pairs(&[
                ("job", "api"),
                ("msg", "say \"hi\"\n"),
                ("x", "a,b=c")
            ]))
        );
        assert_eq!(parse(r#" { a = "1" , } "#), Ok(pairs(&[("a", "1")])));
    }

    #[test]
    fn malformed_selectors_say_why() {
        for bad in [
            r#"job="api""#,
            r#"{job=api}"#,
            r#"{job="api}"#,
            r#"{"x"="1"}"#,
            r#"{a="1" b="2"}"#,
            r#"{a="\q"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
    }
}
