CREATE TABLE indicator_releases (
    pseudonym    TEXT NOT NULL,
    release_date TEXT NOT NULL,
    region       TEXT NOT NULL,
    cohort       TEXT NOT NULL,
    watch_until  TEXT NOT NULL,
    PRIMARY KEY (pseudonym, release_date)
) WITHOUT ROWID;
CREATE TABLE indicator_referrals (
    referral_key TEXT PRIMARY KEY,
    pseudonym    TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    category     TEXT NOT NULL,
    region       TEXT NOT NULL,
    release_date TEXT NOT NULL,
    state        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE indicator_referral_events (
    referral_key TEXT NOT NULL,
    state        TEXT NOT NULL,
    on_date      TEXT NOT NULL,
    PRIMARY KEY (referral_key, state)
) WITHOUT ROWID;
CREATE TABLE indicator_reoffences (
    pseudonym TEXT NOT NULL,
    kind      TEXT NOT NULL,
    on_date   TEXT NOT NULL,
    region    TEXT NOT NULL,
    PRIMARY KEY (pseudonym, kind, on_date)
) WITHOUT ROWID;
