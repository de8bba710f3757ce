CREATE TABLE messages (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    sender            TEXT    NOT NULL,
    client_message_id TEXT,
    recipient         TEXT    NOT NULL,
    service           TEXT    NOT NULL,
    correlation_id    TEXT    NOT NULL,
    purpose           TEXT,
    ordering_key      TEXT,
    content_type      TEXT    NOT NULL,
    body              BLOB    NOT NULL,
    state             TEXT    NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    accepted_at       REAL    NOT NULL,
    next_attempt_at   REAL    NOT NULL,
    deadline_at       REAL    NOT NULL,
    updated_at        REAL    NOT NULL,
    delivered_at      REAL,
    lease_owner       TEXT,
    lease_until       REAL,
    last_error        TEXT,
    last_status       INTEGER,
    replays           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_queue ON messages (recipient, state, seq);
CREATE INDEX messages_due ON messages (recipient, state, next_attempt_at);
CREATE INDEX messages_order ON messages (recipient, ordering_key, seq)
    WHERE ordering_key IS NOT NULL;
CREATE INDEX messages_lease ON messages (state, lease_until);
CREATE INDEX messages_sender ON messages (sender, seq);

-- Inbound de-duplication outlives the message itself (see purge_delivered).
CREATE TABLE inbound (
    sender            TEXT NOT NULL,
    client_message_id TEXT NOT NULL,
    message_id        TEXT NOT NULL,
    received_at       REAL NOT NULL,
    PRIMARY KEY (sender, client_message_id)
);
CREATE INDEX inbound_age ON inbound (received_at);

CREATE TABLE attempts (
    message_id  TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    started_at  REAL    NOT NULL,
    finished_at REAL    NOT NULL,
    outcome     TEXT    NOT NULL,
    status      INTEGER,
    error       TEXT,
    PRIMARY KEY (message_id, number)
);

CREATE TABLE cases (
    kind        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    subject_key TEXT,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX cases_state ON cases (kind, state, id);
CREATE INDEX cases_subject ON cases (kind, subject_key);

CREATE TABLE timers (
    id          TEXT    PRIMARY KEY,
    case_kind   TEXT    NOT NULL,
    case_id     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    fire_at     REAL    NOT NULL,
    payload     TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL
);
CREATE INDEX timers_due ON timers (fire_at);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    entry       BLOB NOT NULL,
    subject_key TEXT,
    recorded_at REAL NOT NULL
);
CREATE INDEX audit_subject ON audit_log (subject_key, seq) WHERE subject_key IS NOT NULL;

CREATE TABLE audit_tree_heads (
    size      INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    signed_at REAL NOT NULL,
    signature BLOB NOT NULL
);
