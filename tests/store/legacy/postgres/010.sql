ALTER TABLE audit_log ADD COLUMN tree_size bigint;
ALTER TABLE audit_log ADD COLUMN pending_id bigint;
UPDATE audit_log SET tree_size = seq;
CREATE INDEX audit_log_pending ON audit_log (pending_id) WHERE pending_id IS NOT NULL;
CREATE TABLE audit_pending (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entries      bytea[] NOT NULL,
    subject_keys text[] NOT NULL,
    recorded_at  double precision NOT NULL
);
