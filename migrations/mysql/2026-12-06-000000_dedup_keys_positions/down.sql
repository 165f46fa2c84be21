DROP TABLE positions;
DROP TABLE dedup_keys;
