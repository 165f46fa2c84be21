ALTER TABLE logs DROP COLUMN span_id, DROP COLUMN trace_id;
