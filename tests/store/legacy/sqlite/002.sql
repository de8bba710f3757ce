ALTER TABLE messages ADD COLUMN answer BLOB;
ALTER TABLE messages ADD COLUMN attempt_budget INTEGER;
UPDATE messages SET attempt_budget = max_attempts;
