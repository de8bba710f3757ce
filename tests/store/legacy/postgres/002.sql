ALTER TABLE messages ADD COLUMN answer BYTEA;
ALTER TABLE messages ADD COLUMN attempt_budget INTEGER;
UPDATE messages SET attempt_budget = max_attempts;
