CREATE TABLE console_accounts (
    username      text PRIMARY KEY,
    role          text NOT NULL,
    password_hash text NOT NULL,
    display_name  text NOT NULL,
    office        text,
    region        text,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    double precision NOT NULL
);
CREATE TABLE console_sessions (
    id           text PRIMARY KEY,
    username     text NOT NULL REFERENCES console_accounts (username),
    csrf_token   text NOT NULL,
    created_at   double precision NOT NULL,
    last_seen_at double precision NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (username);
CREATE INDEX messages_correlation ON messages (correlation_id);
