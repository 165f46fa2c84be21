//! Trigrams of messages, for a text index that answers substrings.
//!
//! A trigram here is three consecutive bytes of a message with ASCII letters
//! lowercased: the text search matches substrings with ASCII case folded,
//! and every substring of a message has only trigrams of that message, so
//! the trigrams of a text name a superset of the entries that contain it.
//! Bytes rather than characters keep the set small and fast to build, and
//! stay sound for any UTF-8 (a multi-byte character is matched byte by byte
//! by the recheck either way).
//!
//! A trigram is stored as a five-letter word ([`word`]), so a full-text
//! engine with a plain word tokenizer indexes exactly the trigrams given to
//! it and nothing else.

/// At most this many trigrams of a long text are looked up: enough to make
/// the candidates rare, and each one more costs a merge of its postings.
pub const MOST_LOOKED_UP: usize = 16;

/// The letters of a word, five bits each: lowercase and digits only, which
/// every tokenizer keeps whole and none folds.
const LETTERS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// The distinct trigrams of some messages: an open-addressing set of 24-bit
/// values, cheaper than a general hash set by a wide margin for the few
/// thousand trigrams of a block of messages (it sits on the writer's path).
#[derive(Debug, Clone)]
pub struct GramSet {
    /// A trigram plus one in each used slot (so zero marks an empty one);
    /// the length is a power of two, never more than half full.
    slots: Vec<u32>,
    /// Used slots.
    len: usize,
    /// 32 minus log2 of the slot count: how far a hash is shifted down.
    shift: u32,
}

impl Default for GramSet {
    fn default() -> Self {
        GramSet {
            slots: vec![0; 1024],
            len: 0,
            shift: 32 - 10,
        }
    }
}

impl GramSet {
    /// Adds the trigrams of `text`.
    pub fn add_text(&mut self, text: &str) {
        let mut gram: u32 = 0;
        for (i, b) in text.bytes().enumerate() {
            gram = ((gram << 8) | u32::from(b.to_ascii_lowercase())) & 0x00FF_FFFF;
            if i >= 2 {
                self.insert(gram);
            }
        }
    }

    /// The trigrams, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().filter(|&&k| k != 0).map(|k| k - 1)
    }

    /// The trigrams as words separated by spaces: one row of an index.
    pub fn words(&self) -> String {
        let mut out = String::with_capacity(self.len * 6);
        for g in self.iter() {
            if !out.is_empty() {
                out.push(' ');
            }
            push_word(g, &mut out);
        }
        out
    }

    fn insert(&mut self, gram: u32) {
        let key = gram + 1;
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B1) >> self.shift) as usize;
        loop {
            match self.slots[i] {
                0 => break,
                k if k == key => return,
                _ => i = (i + 1) & mask,
            }
        }
        self.slots[i] = key;
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.shift -= 1;
        self.len = 0;
        for key in old.into_iter().filter(|&k| k != 0) {
            self.insert(key - 1);
        }
    }
}

/// Appends trigram `gram` as its five-letter word.
fn push_word(gram: u32, out: &mut String) {
    for shift in [20, 15, 10, 5, 0] {
        out.push(char::from(LETTERS[((gram >> shift) & 31) as usize]));
    }
}

/// Trigram `gram` as its five-letter word.
pub fn word(gram: u32) -> String {
    let mut w = String::with_capacity(5);
    push_word(gram, &mut w);
    w
}

/// The trigrams to look up for `text`: its distinct trigrams, at most
/// [`MOST_LOOKED_UP`] of them spread over the text, ascending. Empty when
/// the text is shorter than three bytes, which an index cannot help with.
pub fn looked_up(text: &str) -> Vec<u32> {
    let mut set = GramSet::default();
    set.add_text(text);
    let mut grams: Vec<u32> = set.iter().collect();
    grams.sort_unstable();
    let step = grams.len().div_ceil(MOST_LOOKED_UP).max(1);
    grams.into_iter().step_by(step).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(set: &GramSet) -> Vec<u32> {
        let mut v: Vec<u32> = set.iter().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn trigrams_are_bytes_with_ascii_folded() {
        let mut s = GramSet::default();
        s.add_text("AbCa");
        assert_eq!(
            sorted(&s),
            vec![
                u32::from_be_bytes([0, b'a', b'b', b'c']),
                u32::from_be_bytes([0, b'b', b'c', b'a'])
            ]
        );
        let mut s = GramSet::default();
        s.add_text("ab");
        assert_eq!(s.iter().count(), 0);
        // Non-ASCII stays as it is, byte by byte: "é" is two bytes.
        let mut s = GramSet::default();
        s.add_text("éx");
        assert_eq!(sorted(&s), vec![u32::from_be_bytes([0, 0xC3, 0xA9, b'x'])]);
        let mut upper = GramSet::default();
        upper.add_text("É");
        assert_eq!(upper.iter().count(), 0);
    }

    #[test]
    fn the_set_keeps_each_trigram_once_while_it_grows() {
        let mut s = GramSet::default();
        let text: String = (0..5000u32)
            .map(|i| format!("{:x} ", i.wrapping_mul(2_654_435_761)))
            .collect();
        s.add_text(&text);
        s.add_text(&text);
        let mut expected: Vec<u32> = text
            .as_bytes()
            .windows(3)
            .map(|w| u32::from_be_bytes([0, w[0], w[1], w[2]]))
            .collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(sorted(&s), expected);
        assert_eq!(s.len, expected.len());
        // Zero bytes make trigram 0, which must not read as an empty slot.
        let mut z = GramSet::default();
        z.add_text("\0\0\0\0");
        assert_eq!(sorted(&z), vec![0]);
    }

    #[test]
    fn words_are_five_letters_a_tokenizer_keeps_whole() {
        assert_eq!(word(0), "00000");
        assert_eq!(word(0x00FF_FFFF), "fvvvv");
        assert_eq!(word(u32::from_be_bytes([0, b'a', b'b', b'c'])).len(), 5);
        let mut s = GramSet::default();
        s.add_text("abcd");
        let words = s.words();
        assert_eq!(words.len(), 11, "{words}");
        assert!(
            words
                .split(' ')
                .all(|w| w.len() == 5 && w.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
    }

    #[test]
    fn a_long_text_looks_up_a_spread_of_its_trigrams() {
        assert!(looked_up("ab").is_empty());
        assert_eq!(
            looked_up("abc"),
            vec![u32::from_be_bytes([0, b'a', b'b', b'c'])]
        );
        assert_eq!(looked_up("DEADLOCK"), looked_up("deadlock"));
        assert_eq!(looked_up("deadlock").len(), 6);
        let long: String = ('a'..='z').collect();
        let grams = looked_up(&long);
        assert!(
            grams.len() <= MOST_LOOKED_UP && grams.len() >= MOST_LOOKED_UP / 2,
            "{grams:?}"
        );
        assert!(grams.is_sorted());
    }
}
