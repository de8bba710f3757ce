CREATE TABLE indicator_releases (
    pseudonym    text NOT NULL,
    release_date date NOT NULL,
    region       text NOT NULL,
    cohort       text NOT NULL,
    watch_until  date NOT NULL,
    PRIMARY KEY (pseudonym, release_date)
);
CREATE TABLE indicator_referrals (
    referral_key text PRIMARY KEY,
    pseudonym    text NOT NULL,
    recipient    text NOT NULL,
    category     text NOT NULL,
    region       text NOT NULL,
    release_date date NOT NULL,
    state        text NOT NULL
);
CREATE TABLE indicator_referral_events (
    referral_key text NOT NULL,
    state        text NOT NULL,
    on_date      date NOT NULL,
    PRIMARY KEY (referral_key, state)
);
CREATE TABLE indicator_reoffences (
    pseudonym text NOT NULL,
    kind      text NOT NULL,
    on_date   date NOT NULL,
    region    text NOT NULL,
    PRIMARY KEY (pseudonym, kind, on_date)
);
