ALTER TABLE logs
    DROP INDEX logs_source,
    DROP COLUMN source_receipt,
    ADD UNIQUE KEY logs_source (source_partition, source_offset, received_us);
DROP TABLE key_spaces;
