"""Prometheus metrics, one registry per gateway instance (so tests can run several)."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Label combinations each metric remembers (routes, destinations, statuses: far fewer in practice).
_CHILDREN = 4096
_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "gateway_http_requests", "HTTP requests served, by route, method and status",
            ["route", "method", "status"], registry=r,
        )
        self.internal_errors = Counter(
            "gateway_internal_errors", "Requests answered 500: the gateway's own fault, by route",
            ["route"], registry=r,
        )
        self.soap_faults = Counter(
            "gateway_soap_faults", "SOAP faults answered (all with HTTP 500), by route and fault code: "
            "Client is the sender's mistake, Server the gateway's", ["route", "fault"], registry=r,
        )
        self.disconnects = Counter(
            "gateway_client_disconnects", "Requests whose caller went away before the answer, by route",
            ["route"], registry=r,
        )
        self.parked_timers = Counter(
            "gateway_workflow_timers_parked", "Workflow timers parked after failing every attempt, by case kind and timer",
            ["kind", "timer"], registry=r,
        )
        self.http_latency = Histogram(
            "gateway_http_request_duration_seconds", "Time to answer an HTTP request",
            ["route"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.accepted = Counter(
            "gateway_messages_accepted", "Messages accepted for relay (new) or answered as duplicates",
            ["recipient", "outcome"], registry=r,
        )
        self.attempts = Counter(
            "gateway_delivery_attempts", "Delivery attempts by destination and outcome (delivered, retry, dead)",
            ["destination", "outcome"], registry=r,
        )
        self.attempt_latency = Histogram(
            "gateway_delivery_attempt_duration_seconds", "Duration of one delivery attempt",
            ["destination"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.delivery_age = Histogram(
            "gateway_delivery_latency_seconds", "Time from acceptance to delivery",
            ["destination"], buckets=_AGE_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth", "Messages waiting (accepted) or being delivered (in_flight)",
            ["destination", "state"], registry=r,
        )
        self.dead_letters = Gauge(
            "gateway_dead_letters", "Messages in the dead-letter queue", ["destination"], registry=r,
        )
        self.concurrency_limit = Gauge(
            "gateway_delivery_concurrency_limit",
            "Requests a destination may have in flight now: adaptive, between delivery.min_concurrency and "
            "delivery.concurrency", ["destination"], registry=r,
        )
        self.breaker_state = Gauge(
            "gateway_circuit_breaker_state", "Circuit breaker per destination: 0 closed, 1 half-open, 2 open",
            ["destination"], registry=r,
        )

        self.revocation_checks = Counter(
            "gateway_revocation_checks", "Signing-certificate revocation checks by source (crl, ocsp, none) and "
            "outcome (good, revoked, unknown, unreachable, invalid, soft_fail, hard_fail)",
            ["source", "outcome"], registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total", "Requests refused with 429 by member and service", ["member", "service"],
            registry=r,
        )

        # ``labels()`` validates and converts its values and takes a lock on every call; the
        # hot path asks for the same few children per message, so each metric remembers them.
        # Nothing removes a child, so a remembered one stays the registered one.
        for metric in vars(self).values():
            if isinstance(metric, Counter | Gauge | Histogram):
                metric.labels = functools.lru_cache(maxsize=_CHILDREN)(metric.labels)

    def render(self) -> bytes:
        return generate_latest(self.registry)
