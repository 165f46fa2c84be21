-- The trace and span an entry was logged in (OpenTelemetry's ids, hex), so
-- a log line leads to its trace. Empty when there is none.
ALTER TABLE logs ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE logs ADD COLUMN span_id TEXT NOT NULL DEFAULT '';
