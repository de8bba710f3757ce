"""Store-and-forward: outbox dispatchers, retry, circuit breaker, the outbound seal."""
