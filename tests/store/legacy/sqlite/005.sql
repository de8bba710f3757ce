CREATE TABLE console_accounts (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    office        TEXT,
    region        TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL
);
CREATE TABLE console_sessions (
    id           TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_accounts (username),
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    last_seen_at REAL NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (username);
CREATE INDEX messages_correlation ON messages (correlation_id);
