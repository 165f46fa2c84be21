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
    /// Bytes received: those before `pos` are read and leave at the next
    /// `feed`, those from `pos` on begin a message (or its count).
    buf: Vec<u8>,
    /// Where the next message begins in `buf`.
    pos: usize,
    /// Where in the framing the byte at `pos` falls.
    state: State,
    /// In a line: how much after `pos` is known to hold no line end, so
    /// each byte is searched once however slowly the line arrives.
    scanned: usize,
}

/// What a step found, as positions in `buf`, so that the event borrows the
/// buffer only once the step is done.
enum Found {
    Frame(usize, usize),
    TooLarge(usize),
    BadCount,
    Incomplete(usize),
}

/// What one step of the state machine did.
enum Progress {
    Found(Found),
    /// Moved on without anything to tell.
    Moved,
    /// Needs more bytes.
    Need,
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

/// What may lie between messages: blank lines, CRLF halves, NULs.
fn is_gap(b: &u8) -> bool {
    b"\n\r\0".contains(b)
}

impl Decoder {
    pub fn new(max: usize) -> Self {
        Decoder {
            max,
            buf: Vec::new(),
            pos: 0,
            state: State::Start,
            scanned: 0,
        }
    }

    /// Whether a message has begun and not ended: a connection stalling now
    /// leaves half a message.
    pub fn pending(&self) -> bool {
        self.state != State::Start || self.pos < self.buf.len()
    }

    /// Takes a read's bytes; [`Decoder::next`] then tells what they hold.
    pub fn feed(&mut self, data: &[u8]) {
        // What was read leaves once per read, not once per message.
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.extend_from_slice(data);
    }

    /// The next message (or problem) in what was fed; `None` when more bytes
    /// are needed.
    pub fn next(&mut self) -> Option<Event<'_>> {
        loop {
            match self.step() {
                Progress::Found(found) => return Some(self.event(found)),
                Progress::Moved => {}
                Progress::Need => return None,
            }
        }
    }

    /// The end of the stream: a last line without its line end is a
    /// message; anything else begun is incomplete.
    pub fn finish(&mut self) -> Option<Event<'_>> {
        self.end(true)
    }

    /// The connection stalled: whatever message was begun is incomplete,
    /// and the stream cannot be read further.
    pub fn abandon(&mut self) -> Option<Event<'_>> {
        self.end(false)
    }

    /// Ends the stream, taking a last unterminated line as a message when
    /// `line_is_whole`.
    fn end(&mut self, line_is_whole: bool) -> Option<Event<'_>> {
        let state = std::mem::replace(&mut self.state, State::Start);
        let (from, to) = (self.pos, self.buf.len());
        self.pos = to;
        let found = match state {
            State::Line if line_is_whole && to - from > self.max => Found::TooLarge(to - from),
            State::Line if line_is_whole => Found::Frame(from, self.trim_cr(from, to)),
            State::Line | State::Counted(_) => Found::Incomplete(to - from),
            State::Start if !self.buf[from..].iter().all(is_gap) => Found::Incomplete(to - from),
            State::Start | State::Skip(_) | State::SkipLine => return None,
        };
        Some(self.event(found))
    }

    fn event(&self, found: Found) -> Event<'_> {
        match found {
            Found::Frame(from, to) => Event::Frame(&self.buf[from..to]),
            Found::TooLarge(n) => Event::TooLarge(n),
            Found::BadCount => Event::BadCount,
            Found::Incomplete(n) => Event::Incomplete(n),
        }
    }

    /// One step of the state machine from `pos`.
    fn step(&mut self) -> Progress {
        let avail = self.buf.len() - self.pos;
        match self.state {
            State::Start => self.start(),
            State::Counted(n) if avail < n => Progress::Need,
            State::Counted(n) => {
                let from = self.pos;
                self.pos += n;
                self.state = State::Start;
                Progress::Found(Found::Frame(from, from + n))
            }
            State::Line => self.line(),
            State::Skip(n) => {
                let k = n.min(avail);
                self.pos += k;
                match k < n {
                    true => {
                        self.state = State::Skip(n - k);
                        Progress::Need
                    }
                    false => {
                        self.state = State::Start;
                        Progress::Moved
                    }
                }
            }
            State::SkipLine => match self.buf[self.pos..].iter().position(ends_line) {
                Some(i) => {
                    self.pos += i + 1;
                    self.state = State::Start;
                    Progress::Moved
                }
                None => {
                    self.pos = self.buf.len();
                    Progress::Need
                }
            },
        }
    }

    /// Between messages: what frames the next one.
    fn start(&mut self) -> Progress {
        self.pos += self.buf[self.pos..]
            .iter()
            .take_while(|b| is_gap(b))
            .count();
        let avail = &self.buf[self.pos..];
        let Some(first) = avail.first() else {
            return Progress::Need;
        };
        if !first.is_ascii_digit() {
            self.state = State::Line;
            self.scanned = 0;
            return Progress::Moved;
        }
        match count(avail) {
            Count::Need => Progress::Need,
            Count::Bad => {
                self.state = State::SkipLine;
                Progress::Found(Found::BadCount)
            }
            Count::Len(n, header) => {
                self.pos += header;
                match n > self.max {
                    true => {
                        self.state = State::Skip(n);
                        Progress::Found(Found::TooLarge(n))
                    }
                    false => {
                        self.state = State::Counted(n);
                        Progress::Moved
                    }
                }
            }
        }
    }

    /// Inside a line: a message at its end, or too long without one.
    fn line(&mut self) -> Progress {
        let (from, avail) = (self.pos, self.buf.len() - self.pos);
        match self.buf[from + self.scanned..].iter().position(ends_line) {
            Some(i) => {
                let len = self.scanned + i;
                self.pos = from + len + 1;
                self.state = State::Start;
                Progress::Found(match len > self.max {
                    true => Found::TooLarge(len),
                    false => Found::Frame(from, self.trim_cr(from, from + len)),
                })
            }
            None if avail > self.max => {
                self.pos = self.buf.len();
                self.state = State::SkipLine;
                Progress::Found(Found::TooLarge(avail))
            }
            None => {
                self.scanned = avail;
                Progress::Need
            }
        }
    }

    /// The end of a line from `from` to `to`, less a CR before its LF.
    fn trim_cr(&self, from: usize, to: usize) -> usize {
        match to > from && self.buf[to - 1] == b'\r' {
            true => to - 1,
            false => to,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn show(e: Event<'_>) -> String {
        match e {
            Event::Frame(f) => format!("frame {}", String::from_utf8_lossy(f)),
            other => format!("{other:?}"),
        }
    }

    /// Everything `d` can tell now.
    fn drain(d: &mut Decoder) -> Vec<String> {
        std::iter::from_fn(|| d.next().map(show)).collect()
    }

    /// What the decoder makes of `chunks`, as owned events.
    fn decode(max: usize, chunks: &[&[u8]], eof: bool) -> Vec<String> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c);
            out.extend(drain(&mut d));
        }
        if eof {
            out.extend(d.finish().map(show));
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
        assert!(decode(100, &[b"<13>a\n\r\n"], true).len() == 1);
        let mut d = Decoder::new(100);
        d.feed(b"<13>a\n<13>half a line");
        assert_eq!(drain(&mut d), ["frame <13>a"]);
        assert_eq!(d.abandon().map(show).as_deref(), Some("Incomplete(15)"));
        assert!(!d.pending());
        assert!(d.finish().is_none());
    }

    #[test]
    fn pending_tells_a_begun_message() {
        let mut d = Decoder::new(100);
        let feed = |d: &mut Decoder, bytes: &[u8]| {
            d.feed(bytes);
            drain(d);
            d.pending()
        };
        assert!(!d.pending());
        assert!(!feed(&mut d, b"<13>a\n\n"));
        assert!(feed(&mut d, b"<13>hal"));
        assert!(!feed(&mut d, b"f\n"));
        assert!(feed(&mut d, b"30 <1"));
    }

    #[test]
    fn memory_stays_within_one_message_and_one_read() {
        let mut d = Decoder::new(1000);
        let chunk = vec![b'y'; 4096];
        let mut too_large = 0;
        for _ in 0..1000 {
            d.feed(&chunk);
            while let Some(e) = d.next() {
                too_large += matches!(e, Event::TooLarge(_)) as usize;
            }
            assert!(d.buf.len() <= 1000 + 4096);
        }
        assert_eq!(too_large, 1);
    }
}
