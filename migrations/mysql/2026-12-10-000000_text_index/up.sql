-- A trigram index of the messages, for text search without reading every
-- row (src/storage/blocks.rs). Ids are cut into groups of 8,192 and groups
-- into 256 pieces of 32 ids; a row says which pieces of a group have a
-- message holding a trigram (three bytes, ASCII letters lowercased, packed
-- in an INT), as a 256-bit set. A search ANDs the sets of its trigrams and
-- checks the rows of the candidate pieces with the same LIKE as a scan, so
-- the answer is the scan's. A group is written once, in one
-- transaction, when a row past it is stored: ids grow in commit order, so
-- no row can land in it later. About a quarter of a row per entry on
-- templated logs. Keyed by group first: a group's rows are appended in key
-- order (full pages, no second index), retention drops emptied groups by a
-- range of the key, and a search looks (group, trigram) pairs up.
CREATE TABLE text_grams (
    grp BIGINT NOT NULL,
    gram INT NOT NULL,
    pieces BINARY(32) NOT NULL,
    PRIMARY KEY (grp, gram)
) ENGINE = InnoDB;

-- How far the index reaches: every block below `blocks_below` (a whole
-- number of groups) is indexed; a search scans the rows from there on.
-- Zero here: the writers index what is already stored, a group at a time.
CREATE TABLE text_index (
    one INT NOT NULL PRIMARY KEY CHECK (one = 1),
    blocks_below BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO text_index (one, blocks_below) VALUES (1, 0);
