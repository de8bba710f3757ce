ALTER TABLE messages ADD COLUMN acknowledged_at REAL;
