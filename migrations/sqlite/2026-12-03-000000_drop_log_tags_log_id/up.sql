-- Retention now deletes a record's tags by the primary key (tag, log_id),
-- reading the tags from the record itself, so this index only cost every
-- insert: two or three more B-tree entries per record.
DROP INDEX log_tags_log_id;
