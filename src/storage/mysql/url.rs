//! Taking a `mysql://` URL apart: `open` connects to the server before the
//! database exists, and error messages must not show the password.

/// The parts of a connection URL that `open` needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DbUrl {
    /// The URL without the database, to connect while it may not exist yet.
    pub server: String,
    /// The database to create, restricted to characters that need no quoting
    /// beyond backticks.
    pub database: String,
    /// The URL with its password masked, for messages.
    pub shown: String,
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{}: not a mysql:// URL", mask(url)))?;
        let shown = format!("{scheme}://{}", mask(rest));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (database, params) = match path.split_once('?') {
            Some((db, params)) => (db, Some(params)),
            None => (path, None),
        };
        if database.is_empty() {
            return Err(format!("{shown}: the URL names no database"));
        }
        if !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
        {
            return Err(format!(
                "{shown}: database names may only contain ASCII letters, digits, _, $ and -"
            ));
        }
        let server = match params {
            Some(p) => format!("{scheme}://{authority}/?{p}"),
            None => format!("{scheme}://{authority}/"),
        };
        Ok(DbUrl {
            server,
            database: database.to_owned(),
            shown,
        })
    }
}

/// `rest` (the URL after `://`) with the password, if any, replaced by `***`.
fn mask(rest: &str) -> String {
    let authority_end = rest.find('/').unwrap_or(rest.len());
    // A password may contain '@' when not percent-encoded: the host starts
    // after the last one.
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{user}:***{}", &rest[at..]),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    }
}

/// `url` without its `ssl_ca=PATH` parameter (ours: mysql_async's URLs
/// cannot name a CA), and the path. A CA implies TLS.
pub(super) fn ssl_ca(url: &str) -> (String, Option<std::path::PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let (ca, mut rest): (Vec<&str>, Vec<&str>) =
        query.split('&').partition(|p| p.starts_with("ssl_ca="));
    let Some(ca) = ca.last() else {
        return (url.to_string(), None);
    };
    rest.push("require_ssl=true");
    let path = ca.strip_prefix("ssl_ca=").unwrap_or(ca).into();
    (format!("{base}?{}", rest.join("&")), Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_ca_is_taken_out_and_implies_tls() {
        assert_eq!(ssl_ca("mysql://h/db"), ("mysql://h/db".into(), None));
        assert_eq!(
            ssl_ca("mysql://h/db?verify_identity=false"),
            ("mysql://h/db?verify_identity=false".into(), None)
        );
        assert_eq!(
            ssl_ca("mysql://h/db?ssl_ca=/ca.pem"),
            (
                "mysql://h/db?require_ssl=true".into(),
                Some("/ca.pem".into())
            )
        );
        assert_eq!(
            ssl_ca("mysql://h/db?verify_identity=false&ssl_ca=/ca.pem"),
            (
                "mysql://h/db?verify_identity=false&require_ssl=true".into(),
                Some("/ca.pem".into())
            )
        );
    }

    #[test]
    fn splits_and_masks() {
        let u = DbUrl::parse("mysql://app:s3cr@t@db.internal:3306/logs?ssl-mode=disabled").unwrap();
        assert_eq!(u.database, "logs");
        assert_eq!(
            u.server,
            "mysql://app:s3cr@t@db.internal:3306/?ssl-mode=disabled"
        );
        assert_eq!(
            u.shown,
            "mysql://app:***@db.internal:3306/logs?ssl-mode=disabled"
        );

        let u = DbUrl::parse("mysql://root@127.0.0.1/t_1").unwrap();
        assert_eq!(u.server, "mysql://root@127.0.0.1/");
        assert_eq!(u.shown, "mysql://root@127.0.0.1/t_1");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        assert!(
            DbUrl::parse("mysql://root:pw@host/")
                .unwrap_err()
                .contains("no database")
        );
        let e = DbUrl::parse("mysql://root:pw@host/a`b").unwrap_err();
        assert!(e.contains("ASCII") && !e.contains("pw"), "{e}");
        assert!(
            DbUrl::parse("root:pw@host/db")
                .unwrap_err()
                .starts_with("root:***@host")
        );
    }
}
