-- A source position alone does not name an entry: a new topic (the topic
-- setting changed, or a broker that lost its data created it again) starts
-- its offsets at 0 again, and its entries were taken for redeliveries of the
-- stored ones and dropped. A redelivery is the same Kafka message, so it also
-- carries the same receipt time; an entry of another topic at that position
-- does not. The key is kept unique on all three, and its prefix still
-- answers each partition's highest stored offset from the index alone.
ALTER TABLE logs
    DROP INDEX logs_source,
    ADD UNIQUE KEY logs_source (source_partition, source_offset, received_us);
