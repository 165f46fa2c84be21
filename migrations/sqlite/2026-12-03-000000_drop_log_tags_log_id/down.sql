CREATE INDEX log_tags_log_id ON log_tags (log_id);
