DROP TABLE id_sequence;
DROP TABLE service_tags;
DROP TABLE services;
DROP TABLE log_tags;
DROP TABLE logs;
