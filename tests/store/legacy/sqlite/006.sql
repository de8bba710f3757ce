CREATE INDEX messages_undelivered ON messages (state, recipient) WHERE state IN ('accepted', 'in_flight', 'dead');
CREATE INDEX messages_delivered ON messages (delivered_at, recipient) WHERE state = 'delivered';
