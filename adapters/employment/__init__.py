"""Employment centres: the five-field release notice of Strategy §1.1, through the gateway's outbox."""
