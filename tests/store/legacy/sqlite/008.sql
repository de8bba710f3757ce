CREATE INDEX messages_state ON messages (state, delivered_at, recipient);
CREATE INDEX messages_state_seq ON messages (state, seq);
