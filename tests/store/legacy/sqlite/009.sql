CREATE INDEX indicator_referral_events_state ON indicator_referral_events (state, referral_key, on_date);
CREATE INDEX indicator_referrals_category ON indicator_referrals (category, referral_key);
