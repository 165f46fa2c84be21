-- Entries per minute, service and level, kept by the writer in the batch's
-- own transaction and by retention as it deletes: the volume histogram
-- reads a day of any size as a few thousand rows. `minute` is the entry
-- time in whole minutes since the Unix epoch, rounded down.
CREATE TABLE log_counts (
    minute BIGINT NOT NULL,
    service TEXT NOT NULL,
    level INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (minute, service, level)
) WITHOUT ROWID;

-- What is stored already. SQLite's `/` truncates toward zero; the minute is
-- rounded down for times before 1970 too.
INSERT INTO log_counts (minute, service, level, n)
SELECT (time_us - (((time_us % 60000000) + 60000000) % 60000000)) / 60000000,
       service, level, COUNT(*)
FROM logs
GROUP BY 1, 2, 3;
