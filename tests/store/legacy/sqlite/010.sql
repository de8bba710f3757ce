ALTER TABLE audit_log ADD COLUMN tree_size INTEGER;
ALTER TABLE audit_log ADD COLUMN pending_id INTEGER;
UPDATE audit_log SET tree_size = seq;
CREATE INDEX audit_log_pending ON audit_log (pending_id) WHERE pending_id IS NOT NULL;
CREATE TABLE audit_pending (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    entries      BLOB NOT NULL,
    subject_keys TEXT NOT NULL,
    recorded_at  REAL NOT NULL
);
