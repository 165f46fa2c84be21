-- A trigram index of the messages, for text search without reading every
-- row. One index row per block of 128 consecutive ids (block = id / 128),
-- holding the trigrams of the block's messages together: a block's
-- messages share most of their trigrams, so the index takes about 12 bytes
-- per entry instead of about 180 for one row per entry (measured, see
-- docs/benchmarks/text-search.md). The index only names candidate blocks;
-- the query checks each of their rows with the same LIKE as a scan, so the
-- answer is the scan's. Contentless (the text is in `logs`) with deletes,
-- so retention can drop blocks it has emptied; no positions (detail=none),
-- as blocks need none.
CREATE VIRTUAL TABLE logs_text USING fts5(
    messages,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'trigram'
);

-- What is stored already.
INSERT INTO logs_text (rowid, messages)
SELECT id / 128, group_concat(message, char(10))
FROM logs
GROUP BY id / 128;
