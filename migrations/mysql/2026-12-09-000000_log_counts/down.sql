DROP TABLE log_counts;
