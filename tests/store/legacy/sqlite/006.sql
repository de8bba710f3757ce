CREATE TABLE message_evidence (
    message_id  TEXT PRIMARY KEY,
    media_type  TEXT NOT NULL,
    document    BLOB NOT NULL,
    certificate BLOB,
    received_at REAL NOT NULL
);
