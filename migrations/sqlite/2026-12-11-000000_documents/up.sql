-- Small named documents kept beside the records, such as the viewer's
-- saved views (kind 'view'). A name is unique within its kind; the body is
-- JSON the API layer reads and writes.
CREATE TABLE documents (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_us BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
