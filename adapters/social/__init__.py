"""Labour and social protection: social status, referrals to special social services."""
