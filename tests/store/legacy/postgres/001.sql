CREATE TABLE messages (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text             NOT NULL UNIQUE,
    sender            text             NOT NULL,
    client_message_id text,
    recipient         text             NOT NULL,
    service           text             NOT NULL,
    correlation_id    text             NOT NULL,
    purpose           text,
    ordering_key      text,
    content_type      text             NOT NULL,
    body              bytea            NOT NULL,
    state             text             NOT NULL,
    attempts          integer          NOT NULL DEFAULT 0,
    max_attempts      integer          NOT NULL,
    accepted_at       double precision NOT NULL,
    next_attempt_at   double precision NOT NULL,
    deadline_at       double precision NOT NULL,
    updated_at        double precision NOT NULL,
    delivered_at      double precision,
    lease_owner       text,
    lease_until       double precision,
    last_error        text,
    last_status       integer,
    replays           integer          NOT NULL DEFAULT 0
);
CREATE INDEX messages_queue ON messages (recipient, state, seq);
CREATE INDEX messages_due ON messages (recipient, state, next_attempt_at);
-- Only pending messages hold back their successors: indexing just those keeps
-- the ordering check cheap however many delivered messages a key has.
CREATE INDEX messages_order ON messages (recipient, ordering_key, seq)
    WHERE ordering_key IS NOT NULL AND state IN ('accepted', 'in_flight');
CREATE INDEX messages_lease ON messages (state, lease_until);
CREATE INDEX messages_sender ON messages (sender, seq);

-- Inbound de-duplication outlives the message itself (see purge_delivered).
CREATE TABLE inbound (
    sender            text             NOT NULL,
    client_message_id text             NOT NULL,
    message_id        text             NOT NULL,
    received_at       double precision NOT NULL,
    PRIMARY KEY (sender, client_message_id)
);
CREATE INDEX inbound_age ON inbound (received_at);

CREATE TABLE attempts (
    message_id  text             NOT NULL,
    number      integer          NOT NULL,
    started_at  double precision NOT NULL,
    finished_at double precision NOT NULL,
    outcome     text             NOT NULL,
    status      integer,
    error       text,
    PRIMARY KEY (message_id, number)
);

-- data is the JSON text as written, like SQLite's: jsonb would re-serialise it.
CREATE TABLE cases (
    kind        text             NOT NULL,
    id          text             NOT NULL,
    state       text             NOT NULL,
    data        text             NOT NULL,
    version     integer          NOT NULL,
    subject_key text,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX cases_state ON cases (kind, state, id);
CREATE INDEX cases_subject ON cases (kind, subject_key);

CREATE TABLE timers (
    id          text             PRIMARY KEY,
    case_kind   text             NOT NULL,
    case_id     text             NOT NULL,
    name        text             NOT NULL,
    fire_at     double precision NOT NULL,
    payload     text             NOT NULL,
    attempts    integer          NOT NULL DEFAULT 0,
    lease_owner text,
    lease_until double precision
);
CREATE INDEX timers_due ON timers (fire_at);

CREATE TABLE audit_log (
    seq         bigint           PRIMARY KEY,
    entry       bytea            NOT NULL,
    subject_key text,
    recorded_at double precision NOT NULL
);
CREATE INDEX audit_subject ON audit_log (subject_key, seq) WHERE subject_key IS NOT NULL;

CREATE TABLE audit_tree_heads (
    size      bigint           PRIMARY KEY,
    root      bytea            NOT NULL,
    signed_at double precision NOT NULL,
    signature bytea            NOT NULL
);
