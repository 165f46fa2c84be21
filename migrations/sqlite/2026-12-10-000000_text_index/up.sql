-- A trigram index of the messages, for text search without reading every
-- row. One index row per block of 128 consecutive ids (rowid = id / 128),
-- holding the distinct trigrams of the block's messages as five-letter
-- words (src/storage/grams.rs): a block's messages share most of their
-- trigrams, so the index takes about 16 bytes per entry and about ten
-- words per entry to write. The index only names candidate blocks; a query
-- checks each of their rows with the same LIKE as a scan, so the answer is
-- the scan's. Contentless (the text is in `logs`) with deletes, so
-- retention can drop the blocks it has emptied; no positions (detail=none),
-- as trigram words need none.
CREATE VIRTUAL TABLE logs_text USING fts5(
    grams,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'ascii'
);

-- How far the index reaches: every block below `blocks_below` is indexed,
-- the rows from block `blocks_below` on are not yet and a search scans
-- them. The writer indexes blocks in groups, in the transaction of the
-- batch that completes a group, so this moves with the index rows. Zero
-- here: the writer indexes what is already stored when it opens.
CREATE TABLE text_index (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    blocks_below BIGINT NOT NULL
);
INSERT INTO text_index (one, blocks_below) VALUES (1, 0);
