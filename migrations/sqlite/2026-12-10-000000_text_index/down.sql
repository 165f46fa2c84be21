DROP TABLE logs_text;
