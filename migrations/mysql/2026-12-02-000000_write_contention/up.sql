-- Until when (µs since the epoch) writers should not guess ids. A writer
-- process that lost a deadlock to another's guessed ids sets it, so the
-- guesser stops guessing while both write, instead of winning every time.
CREATE TABLE write_contention (
    id TINYINT NOT NULL PRIMARY KEY CHECK (id = 1),
    until_us BIGINT NOT NULL
) ENGINE = InnoDB;

INSERT INTO write_contention (id, until_us) VALUES (1, 0);
