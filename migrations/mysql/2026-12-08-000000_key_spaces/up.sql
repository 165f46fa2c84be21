-- A Redis stream entry's key (`<stream>:<ms>-<seq>`) is stored in the
-- `logs` row itself, in the source pair that a Kafka redelivery is already
-- checked by: the stream as a key space, a negative partition (-id here),
-- its id packed into the offset. Checking and storing the key then costs no
-- row and no index beyond what every entry pays; a row in `dedup_keys` and
-- its two indexes added a third to the cost of storing such an entry. Keys
-- of other shapes stay in `dedup_keys`.
CREATE TABLE key_spaces (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    UNIQUE KEY key_spaces_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

-- A Kafka position names an entry with its receipt time (a new topic numbers
-- its offsets from 0 again); a key space's position names it alone, whenever
-- it was received. The unique key says so, so that the same stream entry is
-- refused a second row even by a writer that did not look it up first.
ALTER TABLE logs
    ADD COLUMN source_receipt BIGINT AS
        (IF(source_partition < 0, 0, received_us)) PERSISTENT,
    DROP INDEX logs_source,
    ADD UNIQUE KEY logs_source (source_partition, source_offset, source_receipt);
