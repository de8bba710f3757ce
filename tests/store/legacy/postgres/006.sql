CREATE TABLE message_evidence (
    message_id  text PRIMARY KEY,
    media_type  text NOT NULL,
    document    bytea NOT NULL,
    certificate bytea,
    received_at double precision NOT NULL
);
