//! Cutting a TCP byte stream into syslog messages (RFC 6587): octet counting
//! (`LEN SP MSG`) and non-transparent framing (a message, then LF). Senders
//! mix them, so each frame is judged by its first byte, as rsyslog does: a
//! digit starts a count, anything else a line. A NUL ends a line too:
//! Python's `SysLogHandler` ends each message with one and no newline.
//!
//! The decoder never holds more than one message of the largest allowed size
//! plus one read: a longer frame is reported and skipped (by its count, or up
//! to the next line end), and framing resumes after it.

/// Most digits of an octet count: ten are already gigabytes.
const MAX_COUNT_DIGITS: usize = 10;

/// What the decoder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// One whole message, without its framing.
    Frame(&'a [u8]),
    /// A message longer than the limit (at least this many bytes), skipped.
    TooLarge(usize),
    /// An octet count that is not one (`12x`, eleven digits); the rest of
    /// the line is skipped.
    BadCount,
    /// The connection ended, or stalled, this many bytes into a message.
    Incomplete(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Start,
    /// Inside an octet-counted message of this many bytes.
    Counted(usize),
    /// Inside a line.
    Line,
    /// Skipping this many more bytes of an oversized counted message.
    Skip(usize),
    /// Skipping to the end of an oversized or garbled line.
    SkipLine,
}

pub struct Decoder {
    /// Largest message taken, in bytes.
    max: usize,
    /// Bytes received and not yet cut into messages; begins at a message's
    /// start (or its count) whenever the decoder waits for more.
    buf: Vec<u8>,
    /// Where in the framing the next byte falls.
    state: State,
    /// In a line: how much of `buf` is known to hold no line end, so each
    /// byte is searched once however slowly the line arrives.
    scanned: usize,
}

/// Octet count parsing.
enum Count {
    /// The count and the bytes its header takes (digits and space).
    Len(usize, usize),
    /// More bytes are needed to tell.
    Need,
    Bad,
}

fn ends_line(b: &u8) -> bool {
    matches!(b, b'\n' | b'\0')
}

impl Decoder {
    pub fn new(max: usize) -> Self {
        Decoder {
            max,
            buf: Vec::new(),
            state: State::Start,
            scanned: 0,
        }
    }

    /// Whether a message has begun and not ended: a connection stalling now
    /// leaves half a message.
    pub fn pending(&self) -> bool {
        self.state != State::Start || !self.buf.is_empty()
    }

    /// Takes `data` and tells `on` of every message (or problem) it
    /// completes, in order.
    pub fn push(&mut self, data: &[u8], mut on: impl FnMut(Event<'_>)) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.step(&mut pos, &mut on) {}
        // Consumed bytes leave once per read, not once per message.
        self.buf.drain(..pos);
    }

    /// The end of the stream: a last line without its line end is a
    /// message; anything else begun is incomplete.
    pub fn finish(&mut self, on: impl FnMut(Event<'_>)) {
        self.end(true, on)
    }

    /// The connection stalled: whatever message was begun is incomplete,
    /// and the stream cannot be read further.
    pub fn abandon(&mut self, on: impl FnMut(Event<'_>)) {
        self.end(false, on)
    }

    /// Ends the stream, taking a last unterminated line as a message when
    /// `line_is_whole`.
    fn end(&mut self, line_is_whole: bool, mut on: impl FnMut(Event<'_>)) {
        let state = std::mem::replace(&mut self.state, State::Start);
        let buf = std::mem::take(&mut self.buf);
        match state {
            State::Line if line_is_whole && buf.len() > self.max => on(Event::TooLarge(buf.len())),
            State::Line if line_is_whole => on(Event::Frame(trim_cr(&buf))),
            State::Line | State::Counted(_) => on(Event::Incomplete(buf.len())),
            State::Start if !buf.is_empty() => on(Event::Incomplete(buf.len())),
            State::Start | State::Skip(_) | State::SkipLine => {}
        }
    }

    /// One step of the state machine from `pos`; false when it needs more
    /// bytes.
    fn step(&mut self, pos: &mut usize, on: &mut impl FnMut(Event<'_>)) -> bool {
        let avail = &self.buf[*pos..];
        match self.state {
            State::Start => self.start(pos, on),
            State::Counted(n) => {
                if avail.len() < n {
                    return false;
                }
                on(Event::Frame(&avail[..n]));
                *pos += n;
                self.state = State::Start;
                true
            }
            State::Line => self.line(pos, on),
            State::Skip(n) => {
                let k = n.min(avail.len());
                *pos += k;
                self.state = match k < n {
                    true => State::Skip(n - k),
                    false => State::Start,
                };
                k == n
            }
            State::SkipLine => match avail.iter().position(ends_line) {
                Some(i) => {
                    *pos += i + 1;
                    self.state = State::Start;
                    true
                }
                None => {
                    *pos = self.buf.len();
                    false
                }
            },
        }
    }

    /// Between messages: what frames the next one.
    fn start(&mut self, pos: &mut usize, on: &mut impl FnMut(Event<'_>)) -> bool {
        // Blank lines, CRLF halves, NULs after newlines: nothing to report.
        let gap = self.buf[*pos..]
            .iter()
            .take_while(|b| b"\n\r\0".contains(b))
            .count();
        *pos += gap;
        let avail = &self.buf[*pos..];
        let Some(first) = avail.first() else {
            return false;
        };
        if !first.is_ascii_digit() {
            self.state = State::Line;
            self.scanned = 0;
            return true;
        }
        match count(avail) {
            Count::Need => return false,
            Count::Bad => {
                on(Event::BadCount);
                self.state = State::SkipLine;
            }
            Count::Len(n, header) => {
                *pos += header;
                self.state = match n > self.max {
                    true => {
                        on(Event::TooLarge(n));
                        State::Skip(n)
                    }
                    false => State::Counted(n),
                };
            }
        }
        true
    }

    /// Inside a line: a message at its end, or too long without one.
    fn line(&mut self, pos: &mut usize, on: &mut impl FnMut(Event<'_>)) -> bool {
        let avail = &self.buf[*pos..];
        match avail[self.scanned..].iter().position(ends_line) {
            Some(i) => {
                let end = self.scanned + i;
                match end > self.max {
                    true => on(Event::TooLarge(end)),
                    false => on(Event::Frame(trim_cr(&avail[..end]))),
                }
                *pos += end + 1;
                self.state = State::Start;
                true
            }
            None if avail.len() > self.max => {
                on(Event::TooLarge(avail.len()));
                *pos = self.buf.len();
                self.state = State::SkipLine;
                false
            }
            None => {
                self.scanned = avail.len();
                false
            }
        }
    }
}

/// Reads `LEN SP` at the start of `avail`.
fn count(avail: &[u8]) -> Count {
    let digits = avail.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_COUNT_DIGITS {
        return Count::Bad;
    }
    let Some(&after) = avail.get(digits) else {
        return Count::Need;
    };
    if after != b' ' {
        return Count::Bad;
    }
    let n = avail[..digits].iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    });
    match n {
        0 => Count::Bad,
        n => Count::Len(n, digits + 1),
    }
}

/// Lines ended with CRLF lose the CR too.
fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the decoder makes of `chunks`, as owned events.
    fn decode(max: usize, chunks: &[&[u8]], eof: bool) -> Vec<String> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        let mut record = |e: Event<'_>| {
            out.push(match e {
                Event::Frame(f) => format!("frame {}", String::from_utf8_lossy(f)),
                other => format!("{other:?}"),
            })
        };
        for c in chunks {
            d.push(c, &mut record);
        }
        if eof {
            d.finish(&mut record);
        }
        out
    }

    #[test]
    fn lines_nuls_and_counts_mix() {
        let got = decode(
            100,
            &[b"<13>a\n<14>b\r\n<11>py\0<11>py2\x0011 <13>counted4 <1>x"],
            false,
        );
        assert_eq!(
            got,
            [
                "frame <13>a",
                "frame <14>b",
                "frame <11>py",
                "frame <11>py2",
                "frame <13>counted",
                "frame <1>x",
            ]
        );
    }

    #[test]
    fn messages_split_across_reads_in_any_place() {
        let stream = b"12 <13>1 - - a\n<13>line two\n7 <13>end";
        for cut in 0..stream.len() {
            let got = decode(100, &[&stream[..cut], &stream[cut..]], false);
            assert_eq!(
                got,
                ["frame <13>1 - - a\n", "frame <13>line two", "frame <13>end"],
                "cut at {cut}"
            );
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(100, &bytes, false).len(), 3);
    }

    #[test]
    fn oversized_messages_are_skipped_and_framing_resumes() {
        let long = vec![b'x'; 50];
        let mut line = b"<13>".to_vec();
        line.extend(&long);
        line.extend(b"\n<13>after line\n");
        assert_eq!(
            decode(20, &[&line[..30], &line[30..]], false),
            ["TooLarge(30)", "frame <13>after line"]
        );
        let mut counted = b"54 <13>".to_vec();
        counted.extend(&long);
        counted.extend(b"9 <13>after");
        assert_eq!(
            decode(20, &[&counted[..10], &counted[10..]], false),
            ["TooLarge(54)", "frame <13>after"]
        );
        // A line whose end arrives in the read that makes it too long.
        assert_eq!(
            decode(20, &[b"<13>0123456789", b"0123456789\n<1>ok\n"], false),
            ["TooLarge(24)", "frame <1>ok"]
        );
    }

    #[test]
    fn bad_counts_skip_the_line() {
        assert_eq!(
            decode(
                100,
                &[b"12x <13>a\n<13>b\n99999999999 x\n0 \n<1>c\n"],
                false
            ),
            [
                "BadCount",
                "frame <13>b",
                "BadCount",
                "BadCount",
                "frame <1>c"
            ]
        );
    }

    #[test]
    fn the_end_of_the_stream() {
        assert_eq!(
            decode(100, &[b"<13>no newline"], true),
            ["frame <13>no newline"]
        );
        assert_eq!(decode(100, &[b"40 <13>half"], true), ["Incomplete(8)"]);
        assert_eq!(decode(100, &[b"12"], true), ["Incomplete(2)"]);
        assert!(decode(100, &[b"<13>a\n"], true).len() == 1);
        let mut d = Decoder::new(100);
        d.push(b"<13>a\n<13>half a line", |_| {});
        let mut got = Vec::new();
        d.abandon(|e| got.push(format!("{e:?}")));
        assert_eq!(got, ["Incomplete(15)"]);
        assert!(!d.pending());
    }

    #[test]
    fn pending_tells_a_begun_message() {
        let mut d = Decoder::new(100);
        assert!(!d.pending());
        d.push(b"<13>a\n\n", |_| {});
        assert!(!d.pending());
        d.push(b"<13>hal", |_| {});
        assert!(d.pending());
        d.push(b"f\n", |_| {});
        assert!(!d.pending());
        d.push(b"30 <1", |_| {});
        assert!(d.pending());
    }

    #[test]
    fn memory_stays_within_one_message_and_one_read() {
        let mut d = Decoder::new(1000);
        let chunk = vec![b'y'; 4096];
        let mut too_large = 0;
        for _ in 0..1000 {
            d.push(&chunk, |e| {
                too_large += matches!(e, Event::TooLarge(_)) as usize
            });
            assert!(d.buf.len() <= 1000 + 4096);
        }
        assert_eq!(too_large, 1);
    }
}
