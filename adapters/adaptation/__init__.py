"""The adaptation stage's partners (akimat social services, adaptation centres, NGOs) and
post-release probation: re-socialisation plans, through the gateway's outbox."""
