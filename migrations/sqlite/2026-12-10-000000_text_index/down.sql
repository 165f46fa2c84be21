DROP TABLE text_index;
DROP TABLE logs_text;
