-- Text compares byte for byte (utf8mb4_nopad_bin) except the message: a
-- service or tag "api" is not "API" nor "api ", as in SQLite and the tail
-- filter, and such pairs can both be keys of one table. The message is
-- utf8mb4_general_ci so that LIKE is case-insensitive, as the text filter
-- is. (general_ci also folds non-ASCII case and accents, which the tail
-- filter does not.)
--
-- Lengths: VARCHAR(255) keeps the two-column key of service_tags within
-- InnoDB's 3072-byte limit; validation allows 128 bytes by default.

-- Ids are assigned by the writers from id_sequence, in commit order, so they
-- are a resume point for live tails and a stable cursor for paging.
CREATE TABLE logs (
    id BIGINT NOT NULL PRIMARY KEY,
    service VARCHAR(255) NOT NULL,
    level INT NOT NULL,
    message MEDIUMTEXT COLLATE utf8mb4_general_ci NOT NULL,
    -- JSON array of strings.
    tags MEDIUMTEXT NOT NULL,
    -- JSON object of strings.
    attributes MEDIUMTEXT NOT NULL,
    time_us BIGINT NOT NULL,
    received_us BIGINT NOT NULL,
    -- The Kafka partition and offset the entry was consumed from, so a
    -- redelivery is stored once. NULL (never equal) for other sources.
    source_partition INT NULL,
    source_offset BIGINT NULL,
    UNIQUE KEY logs_source (source_partition, source_offset),
    -- The viewer's main question: newest entries of one service.
    KEY logs_service_id (service, id),
    -- Time-range queries and retention.
    KEY logs_time (time_us),
    KEY logs_level_id (level, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

CREATE TABLE log_tags (
    tag VARCHAR(255) NOT NULL,
    log_id BIGINT NOT NULL,
    PRIMARY KEY (tag, log_id),
    -- Retention deletes a record's tags by id.
    KEY log_tags_log_id (log_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

CREATE TABLE services (
    name VARCHAR(255) NOT NULL PRIMARY KEY
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

CREATE TABLE service_tags (
    service VARCHAR(255) NOT NULL,
    tag VARCHAR(255) NOT NULL,
    PRIMARY KEY (service, tag)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

-- The next id to assign. A batch locks this row (SELECT ... FOR UPDATE) until
-- it commits, so concurrent writers commit one after the other, in id order.
CREATE TABLE id_sequence (
    id TINYINT NOT NULL PRIMARY KEY CHECK (id = 1),
    next_id BIGINT NOT NULL
) ENGINE = InnoDB;

INSERT INTO id_sequence (id, next_id) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM logs;
