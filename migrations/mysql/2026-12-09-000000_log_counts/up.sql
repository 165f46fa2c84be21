-- Entries per minute, service and level, kept by the writers in each
-- batch's own transaction and by retention as it deletes: the volume
-- histogram reads a day of any size as a few thousand rows. `minute` is the
-- entry time in whole minutes since the Unix epoch, rounded down.
CREATE TABLE log_counts (
    minute BIGINT NOT NULL,
    service VARCHAR(255) NOT NULL,
    level INT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (minute, service, level)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

-- What is stored already.
INSERT INTO log_counts (minute, service, level, n)
SELECT FLOOR(time_us / 60000000), service, level, COUNT(*)
FROM logs
GROUP BY 1, 2, 3;
