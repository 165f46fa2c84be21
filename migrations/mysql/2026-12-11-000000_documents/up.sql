-- Small named documents kept beside the records, such as the viewer's
-- saved views (kind 'view'). A name is unique within its kind; the body is
-- JSON the API layer reads and writes.
CREATE TABLE documents (
    kind VARCHAR(32) NOT NULL,
    name VARCHAR(191) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    updated_us BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
