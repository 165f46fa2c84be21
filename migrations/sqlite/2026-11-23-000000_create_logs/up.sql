-- Ids are assigned by taillight's single writer in commit order, so they are
-- a resume point for live tails and a stable cursor for paging.
CREATE TABLE logs (
    id INTEGER PRIMARY KEY NOT NULL,
    service TEXT NOT NULL,
    level INTEGER NOT NULL,
    message TEXT NOT NULL,
    tags TEXT NOT NULL,
    attributes TEXT NOT NULL,
    time_us BIGINT NOT NULL,
    received_us BIGINT NOT NULL
);

-- The viewer's main question: newest entries of one service.
CREATE INDEX logs_service_id ON logs (service, id);
-- Time-range queries and retention.
CREATE INDEX logs_time ON logs (time_us);
CREATE INDEX logs_level_id ON logs (level, id);

CREATE TABLE log_tags (
    tag TEXT NOT NULL,
    log_id BIGINT NOT NULL,
    PRIMARY KEY (tag, log_id)
) WITHOUT ROWID;
-- Retention deletes a record's tags by id.
CREATE INDEX log_tags_log_id ON log_tags (log_id);

CREATE TABLE services (
    name TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;

CREATE TABLE service_tags (
    service TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (service, tag)
) WITHOUT ROWID;
