-- Fails while two topics' entries share a position: the old key cannot hold
-- them both.
ALTER TABLE logs
    DROP INDEX logs_source,
    ADD UNIQUE KEY logs_source (source_partition, source_offset);
