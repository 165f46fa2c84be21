-- A Redis stream entry's key (`<stream>:<ms>-<seq>`) is stored in the
-- `logs` row itself, in the unique (source_partition, source_offset) pair
-- that a Kafka redelivery is already checked by: the stream as a key space,
-- a negative partition (-id here), its id packed into the offset. Checking
-- and storing the key then costs no row and no index beyond what every
-- entry pays; a row in `dedup_keys` and its two indexes added a third to
-- the cost of storing such an entry. Keys of other shapes stay in
-- `dedup_keys`.
CREATE TABLE key_spaces (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    UNIQUE KEY key_spaces_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
