"""Probation offices: post-release probation notices, through the gateway's outbox."""
