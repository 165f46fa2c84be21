-- The trace and span an entry was logged in (OpenTelemetry's ids, hex), so
-- a log line leads to its trace. Empty when there is none. Added in place,
-- without rewriting the table.
ALTER TABLE logs
    ADD COLUMN trace_id VARCHAR(32) NOT NULL DEFAULT '' AFTER received_us,
    ADD COLUMN span_id VARCHAR(16) NOT NULL DEFAULT '' AFTER trace_id,
    ALGORITHM = INSTANT;
