"""The delivery engine against a real receiver on loopback, with the real store."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

from gateway.store import MessageState
from support import payload_number, person_payload, wait_until

NOTICES = "/api/v1/relay/health/notices"
BULK = "/api/v1/relay/health/bulk"


def headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care", **extra}


async def send(http, gateway, path=BULK, payload=None, **extra) -> str:
    async with http.post(gateway.url + path, json=payload or person_payload(), headers=headers(**extra)) as response:
        assert response.status == 202, await response.text()
        return (await response.json())["message_id"]


async def state_of(gateway, message_id):
    return (await gateway.store.get_message(message_id)).state


async def test_a_failing_receiver_is_retried_until_it_accepts(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (503, {}) if seen < 3 else (200, {})
    gateway = await start_gateway(receiver.url)
    message_id = await send(http, gateway)
    await wait_until(lambda: receiver.received)
    await wait_until(lambda: _is(gateway, message_id, MessageState.DELIVERED))
    attempts = await gateway.store.attempts(message_id)
    assert [a.outcome for a in attempts] == ["retry", "retry", "delivered"]
    assert [a.status for a in attempts] == [503, 503, 200]


async def _is(gateway, message_id, state) -> bool:
    return await state_of(gateway, message_id) is state


async def test_a_rejected_message_is_dead_lettered_after_one_attempt(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (422, {})
    gateway = await start_gateway(receiver.url)
    message_id = await send(http, gateway)
    await wait_until(lambda: _is(gateway, message_id, MessageState.DEAD))
    message = await gateway.store.get_message(message_id)
    assert message.attempts == 1 and message.last_status == 422 and "permanent" in message.last_error


async def test_attempts_are_exhausted_into_the_dead_letter_queue(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (500, {})
    gateway = await start_gateway(receiver.url, delivery={"max_attempts": 3, "breaker_failure_threshold": 100})
    message_id = await send(http, gateway)
    await wait_until(lambda: _is(gateway, message_id, MessageState.DEAD))
    message = await gateway.store.get_message(message_id)
    assert message.attempts == 3 and "gave up after 3 attempts" in message.last_error
    assert receiver.seen[message_id] == 3


async def test_operator_lists_shows_and_replays_dead_letters(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (422, {}) if payload_number(body) == 1 else (200, {})
    gateway = await start_gateway(receiver.url)
    dead_id = await send(http, gateway, payload=person_payload(1))
    await wait_until(lambda: _is(gateway, dead_id, MessageState.DEAD))
    ops = {"X-Member-Id": "ops"}
    async with http.get(gateway.url + "/api/v1/dlq", headers=ops) as response:
        page = await response.json()
        assert [item["message_id"] for item in page["items"]] == [dead_id]
    async with http.get(f"{gateway.url}/api/v1/dlq/{dead_id}", headers=ops) as response:
        letter = await response.json()
        assert letter["history"][0]["status"] == 422 and letter["history"][0]["outcome"] == "dead"
    receiver.respond = lambda body, seen: (200, {})  # the receiver is fixed
    async with http.post(gateway.url + "/api/v1/dlq/replay", json={"message_ids": [dead_id, "nope"]}, headers=ops) as r:
        result = await r.json()
        assert result == {"replayed": [dead_id], "not_dead": ["nope"]}
    await wait_until(lambda: _is(gateway, dead_id, MessageState.DELIVERED))
    message = await gateway.store.get_message(dead_id)
    assert message.replays == 1 and message.attempts == 2


async def test_replay_of_all_dead_letters_of_a_recipient(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (400, {})
    gateway = await start_gateway(receiver.url)
    ids = [await send(http, gateway, payload=person_payload(n)) for n in range(5)]
    for message_id in ids:
        await wait_until(lambda: _is(gateway, message_id, MessageState.DEAD))
    receiver.respond = lambda body, seen: (200, {})
    async with http.post(gateway.url + "/api/v1/dlq/replay", json={"recipient": "health"}, headers={"X-Member-Id": "ops"}) as r:
        assert sorted((await r.json())["replayed"]) == sorted(ids)
    await wait_until(lambda: receiver.unique_ids() == set(ids))


async def test_only_operators_see_the_dead_letter_queue(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.get(gateway.url + "/api/v1/dlq", headers={"X-Member-Id": "penal"}) as response:
        assert response.status == 403
    async with http.post(gateway.url + "/api/v1/dlq/replay", json={"recipient": "health"}, headers={"X-Member-Id": "penal"}) as r:
        assert r.status == 403
    async with http.post(gateway.url + "/api/v1/dlq/replay", json={"bogus": 1}, headers={"X-Member-Id": "ops"}) as r:
        assert r.status == 400 and "bogus" in (await r.json())["detail"]


async def test_a_receiver_that_is_down_gets_everything_in_order_per_key_when_back(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    await receiver.stop_listening()  # down: connections are refused
    sent: dict[str, list[int]] = defaultdict(list)
    for number in range(200):
        key = f"case-{number % 10}"
        await send(http, gateway, path=NOTICES, payload=person_payload(number), **{"X-Ordering-Key": key})
        sent[key].append(number)
    await asyncio.sleep(0.5)
    assert not receiver.received
    await receiver.listen()
    await wait_until(lambda: len(receiver.unique_ids()) == 200, timeout=30)
    got: dict[str, list[int]] = defaultdict(list)
    for delivery in receiver.received:
        got[f"case-{payload_number(delivery.json()) % 10}"].append(payload_number(delivery.json()))
    assert got == sent


async def test_a_long_outage_does_not_dead_letter_the_messages_the_breaker_probes_with(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url, delivery={"max_attempts": 2, "breaker_reset_seconds": 0.05,
                                                          "breaker_failure_threshold": 1})
    await receiver.stop_listening()
    ids = [await send(http, gateway, path=NOTICES, payload=person_payload(n), **{"X-Ordering-Key": "case-1"})
           for n in range(3)]
    await asyncio.sleep(1.0)  # many probes, far more than two attempts each
    head = await gateway.store.get_message(ids[0])
    # Waiting for its next probe, or being probed at this very moment: not dead-lettered.
    assert head.state in (MessageState.ACCEPTED, MessageState.IN_FLIGHT) and head.attempts > 2
    await receiver.listen()
    await wait_until(lambda: receiver.unique_ids() == set(ids), timeout=15)


async def test_the_breaker_holds_back_attempts_while_the_receiver_is_down(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (503, {})
    gateway = await start_gateway(
        receiver.url, delivery={"breaker_failure_threshold": 3, "breaker_reset_seconds": 0.5, "concurrency": 1,
                                "max_attempts": 1000, "backoff_base_seconds": 0.001, "backoff_cap_seconds": 0.001}
    )
    for number in range(50):
        await send(http, gateway, payload=person_payload(number))
    await asyncio.sleep(1.6)
    # Without the breaker, 1 ms backoff would make thousands of attempts in 1.6 s.
    assert 3 <= len(receiver.attempts_at) <= 10
    async with http.get(gateway.url + "/metrics") as response:
        text = await response.text()
    assert 'gateway_circuit_breaker_state{destination="health"}' in text
    receiver.respond = lambda body, seen: (200, {})
    await wait_until(lambda: len(receiver.unique_ids()) == 50, timeout=10)


async def test_retry_after_delays_the_next_attempt(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (429, {"Retry-After": "1"}) if seen == 1 else (200, {})
    gateway = await start_gateway(receiver.url)
    await send(http, gateway)
    await wait_until(lambda: receiver.received, timeout=10)
    assert receiver.attempts_at[1] - receiver.attempts_at[0] >= 0.95


async def test_a_slow_receiver_times_out_and_is_retried(start_gateway, receiver, http):
    receiver.delay = 1.5
    gateway = await start_gateway(receiver.url, delivery={"request_timeout_seconds": 0.5, "lease_seconds": 2})
    message_id = await send(http, gateway)
    await wait_until(lambda: len(receiver.attempts_at) >= 2, timeout=10)
    receiver.delay = 0
    await wait_until(lambda: _is(gateway, message_id, MessageState.DELIVERED), timeout=10)
    attempts = await gateway.store.attempts(message_id)
    assert "no answer within 0.5 s" in attempts[0].error


async def test_in_flight_requests_per_destination_stay_within_the_limit(start_gateway, receiver, http):
    receiver.delay = 0.05
    gateway = await start_gateway(receiver.url, delivery={"concurrency": 4})
    await asyncio.gather(*(send(http, gateway, payload=person_payload(n)) for n in range(60)))
    await wait_until(lambda: len(receiver.unique_ids()) == 60, timeout=20)
    assert receiver.max_concurrent == 4


async def test_metrics_count_accepted_messages_and_attempts(start_gateway, receiver, http):
    receiver.respond = lambda body, seen: (503, {}) if seen == 1 else (200, {})
    gateway = await start_gateway(receiver.url)
    message_id = await send(http, gateway)
    await wait_until(lambda: _is(gateway, message_id, MessageState.DELIVERED))
    async with http.get(gateway.url + "/metrics") as response:
        text = await response.text()
    assert 'gateway_messages_accepted_total{outcome="new",recipient="health"} 1.0' in text
    assert 'gateway_delivery_attempts_total{destination="health",outcome="retry"} 1.0' in text
    assert 'gateway_delivery_attempts_total{destination="health",outcome="delivered"} 1.0' in text
    assert 'gateway_queue_depth{destination="health",state="accepted"} 0.0' in text
    assert 'gateway_http_requests_total{method="POST",route="/api/v1/relay/{recipient}/{service}",status="202"} 1.0' in text


async def test_health_and_readiness(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.get(gateway.url + "/healthz") as response:
        assert response.status == 200
    async with http.get(gateway.url + "/readyz") as response:
        assert response.status == 200 and (await response.json())["checks"] == {"store": "ok", "delivery": "ok"}
    await gateway.store.close()
    async with http.get(gateway.url + "/readyz") as response:
        body = await response.json()
        assert response.status == 503 and body["checks"]["store"].startswith("unreachable")
    await gateway.store.open()


async def test_stopping_lets_in_flight_deliveries_finish(start_gateway, receiver, http):
    receiver.delay = 0.5
    gateway = await start_gateway(receiver.url)
    message_id = await send(http, gateway)
    await wait_until(lambda: receiver.concurrent == 1)
    await gateway.stop()
    assert receiver.received and receiver.received[0].message_id == message_id
    await gateway.store.open()
    assert await state_of(gateway, message_id) is MessageState.DELIVERED
    await gateway.store.close()
    gateway.stop = _noop  # already stopped


async def _noop() -> None:
    return None


async def test_openapi_document_is_served_and_checked_in(start_gateway, receiver, http):
    from gateway.resources import resource_dir

    gateway = await start_gateway(receiver.url)
    async with http.get(gateway.url + "/openapi.json") as response:
        served = await response.json()
    checked_in = json.loads((resource_dir("schemas") / "openapi" / "gateway.json").read_text(encoding="utf-8"))
    assert served == checked_in, "schemas/openapi/gateway.json is stale: run `gateway openapi --write`"
    assert served["openapi"] == "3.1.0" and "/api/v1/relay/{recipient}/{service}" in served["paths"]


async def test_every_json_route_is_in_the_openapi_document(start_gateway, receiver):
    from gateway.entrypoints.http.app import create_app
    from gateway.entrypoints.http.console.routes import PREFIX as CONSOLE
    from gateway.entrypoints.http.openapi import openapi_document

    gateway = await start_gateway(receiver.url)
    documented = openapi_document()["paths"]
    # SOAP has its WSDLs; the console's pages are HTML for people (see the next test), not the API.
    routes = {(resource.canonical, route.method.lower())
              for resource in create_app(gateway.services).router.resources() for route in resource
              if route.method != "HEAD" and not resource.canonical.startswith(("/soap", "/openapi.json", CONSOLE))}
    missing = {(path, method) for path, method in routes if method not in documented.get(path, {})}
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"
    assert not [path for path in documented if path.startswith(CONSOLE)]


async def test_the_console_routes_left_out_of_the_openapi_document_answer_html_not_json(start_gateway, receiver, http):
    from gateway.entrypoints.http.app import create_app
    from gateway.entrypoints.http.console.routes import PREFIX as CONSOLE

    gateway = await start_gateway(receiver.url)
    pages = sorted({resource.canonical for resource in create_app(gateway.services).router.resources()
                    for route in resource if route.method == "GET" and resource.canonical.startswith(CONSOLE)
                    and "{" not in resource.canonical and not resource.canonical.startswith(CONSOLE + "/static")})
    assert CONSOLE + "/login" in pages and CONSOLE + "/messages" in pages
    for page in pages:
        async with http.get(gateway.url + page, allow_redirects=False) as response:
            # Signed out: the login page itself, or a redirect to it; never a JSON body.
            if response.status in (302, 303):
                assert response.headers["Location"].startswith(CONSOLE + "/login"), page
            else:
                assert (response.status, response.content_type) == (200, "text/html"), page


def test_the_openapi_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    from gateway.entrypoints.http.openapi import openapi_document

    validate(openapi_document())
