DROP TABLE text_index;
DROP TABLE text_grams;
