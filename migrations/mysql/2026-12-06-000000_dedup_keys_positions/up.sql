-- Entries that carry a key of their own (a Redis stream entry's id, an
-- archived record being restored) are stored once per key: a source that
-- hands an entry over again after a crash, before it could acknowledge it
-- upstream, finds the key here and the entry is not stored twice, even when
-- the two copies travelled through Kafka as two messages. Only keyed entries
-- have a row, so other entries pay nothing for it.
CREATE TABLE dedup_keys (
    k VARCHAR(255) NOT NULL PRIMARY KEY,
    log_id BIGINT NOT NULL,
    -- Retention deletes a record's key with the record.
    KEY dedup_keys_log_id (log_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

-- Where components that follow the store (the archive) stand, kept in the
-- store so that another node can take over from there. `hold_id`: every
-- record up to it is safe elsewhere; retention deletes no record above the
-- lowest hold.
CREATE TABLE positions (
    name VARCHAR(191) NOT NULL PRIMARY KEY,
    value MEDIUMTEXT NOT NULL,
    hold_id BIGINT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
