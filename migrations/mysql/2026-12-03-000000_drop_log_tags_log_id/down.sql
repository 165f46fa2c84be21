ALTER TABLE log_tags ADD INDEX log_tags_log_id (log_id);
