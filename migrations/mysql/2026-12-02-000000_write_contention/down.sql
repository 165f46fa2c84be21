DROP TABLE write_contention;
