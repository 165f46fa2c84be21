//! What both syslog formats read from a message's header, shared by their
//! parsers ([`super::rfc5424`], [`super::rfc3164`]) and the mapping to an
//! entry ([`super::parse`]).

/// A message's header fields, borrowed from its text.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    /// The message's own time, when it has one.
    pub time_us: Option<i64>,
    /// The sending host as the message names it (else the peer's address).
    pub hostname: Option<&'a str>,
    /// RFC 5424's APP-NAME, or RFC 3164's tag.
    pub app: Option<&'a str>,
    /// The sending process (RFC 5424 PROCID, RFC 3164 `[pid]`), for
    /// telling instances apart.
    pub procid: Option<&'a str>,
    /// RFC 5424's type of message, for filtering by kind.
    pub msgid: Option<&'a str>,
    /// Structured data, as `SD-ID.PARAM-NAME` and the value.
    pub data: Vec<(String, String)>,
    /// What was logged.
    pub msg: &'a str,
}
