//! Splitting rows and keys into statements of bounded size.

/// Most ids or offsets in one `IN (...)` list.
pub(super) const KEYS_PER_STATEMENT: usize = 10_000;

/// Most rows per INSERT.
const ROWS_PER_INSERT: usize = 1000;

/// Most text bytes per INSERT: written in hex, twice that, well under the
/// server's default 16 MiB `max_allowed_packet`.
const BYTES_PER_INSERT: usize = 3 << 20;

/// Splits `items` into runs of at most [`ROWS_PER_INSERT`] items and about
/// [`BYTES_PER_INSERT`] bytes (a single larger item gets a run of its own),
/// so no statement exceeds the placeholder or packet limit.
pub(super) fn size_chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == ROWS_PER_INSERT || bytes + n > BYTES_PER_INSERT) {
            chunks.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_rows_and_bytes() {
        let small = vec![1usize; 2500];
        let lens: Vec<_> = size_chunks(&small, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(lens, [1000, 1000, 500]);

        let big = [
            BYTES_PER_INSERT / 2,
            BYTES_PER_INSERT / 2,
            1,
            BYTES_PER_INSERT * 2,
            1,
        ];
        let lens: Vec<_> = size_chunks(&big, |n| *n).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [2, 1, 1, 1]);

        assert!(size_chunks(&[] as &[usize], |n| *n).is_empty());
    }
}
