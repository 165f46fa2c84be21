DROP TABLE key_spaces;
