-- Entries that carry a key of their own (a Redis stream entry's id, an
-- archived record being restored) are stored once per key: a source that
-- hands an entry over again after a crash, before it could acknowledge it
-- upstream, finds the key here and the entry is not stored twice. Only keyed
-- entries have a row, so other entries pay nothing for it.
CREATE TABLE dedup_keys (
    k TEXT PRIMARY KEY NOT NULL,
    log_id BIGINT NOT NULL
) WITHOUT ROWID;
-- Retention deletes a record's key with the record.
CREATE INDEX dedup_keys_log_id ON dedup_keys (log_id);

-- Where components that follow the store (the archive) stand, kept in the
-- store so that another node can take over from there. `hold_id`: every
-- record up to it is safe elsewhere; retention deletes no record above the
-- lowest hold.
CREATE TABLE positions (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    hold_id BIGINT NULL
) WITHOUT ROWID;
