"""The relay API over real HTTP on loopback, with the real store."""

from __future__ import annotations

import json

import pytest

from support import PERSON_IIN, person_payload, wait_until

RELAY = "/api/v1/relay/health/notices"


def headers(member: str = "penal", **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Member-Id": member, "X-Purpose": "continuity_of_care", **extra}


async def stored_count(gateway) -> int:
    return len(await gateway.store.list_messages(limit=10_000))


async def test_relay_answers_202_with_the_id_of_a_stored_message(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers()) as response:
        answer = await response.json()
        assert response.status == 202
        assert response.headers["Location"] == f"/api/v1/messages/{answer['message_id']}"
    stored = await gateway.store.get_message(answer["message_id"])
    assert stored is not None and json.loads(stored.body) == person_payload()
    assert answer["duplicate"] is False


async def test_relayed_message_reaches_the_recipient_with_relay_headers(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    sent = headers(**{"X-Correlation-Id": "case-42", "X-Message-Id": "penal-1"})
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=sent) as response:
        message_id = (await response.json())["message_id"]
    await wait_until(lambda: receiver.received)
    delivery = receiver.received[0]
    assert delivery.path == "/notices"
    assert delivery.headers["X-Message-Id"] == message_id
    assert delivery.headers["X-Correlation-Id"] == "case-42"
    assert delivery.headers["X-Purpose"] == "continuity_of_care"
    assert delivery.headers["X-Sender"] == "penal"
    assert delivery.json() == person_payload()


async def test_status_shows_delivered_with_attempt_count(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers()) as response:
        message_id = (await response.json())["message_id"]
    await wait_until(lambda: receiver.received)

    async def delivered():
        async with http.get(f"{gateway.url}/api/v1/messages/{message_id}", headers={"X-Member-Id": "penal"}) as r:
            return (await r.json())["status"] == "delivered"

    await wait_until(delivered)
    async with http.get(f"{gateway.url}/api/v1/messages/{message_id}", headers={"X-Member-Id": "penal"}) as r:
        status = await r.json()
    assert status["attempts"] == 1 and status["delivered_at"] is not None and status["last_error"] is None


async def test_another_member_cannot_see_a_message_status(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers()) as response:
        message_id = (await response.json())["message_id"]
    async with http.get(f"{gateway.url}/api/v1/messages/{message_id}", headers={"X-Member-Id": "interior"}) as r:
        assert r.status == 404
        assert r.content_type == "application/problem+json"


async def test_resent_message_id_gets_the_original_answer_and_is_stored_once(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    answers = []
    for _ in range(3):
        async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers(**{"X-Message-Id": "m-1"})) as r:
            assert r.status == 202
            answers.append(await r.json())
    assert len({a["message_id"] for a in answers}) == 1
    assert [a["duplicate"] for a in answers] == [False, True, True]
    assert await stored_count(gateway) == 1


async def test_same_message_id_from_two_senders_is_two_messages(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    ids = set()
    for member in ("penal", "interior"):
        async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers(member, **{"X-Message-Id": "m-1"})) as r:
            ids.add((await r.json())["message_id"])
    assert len(ids) == 2


async def test_message_id_reused_for_a_different_body_is_refused_with_422(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + RELAY, json=person_payload(1), headers=headers(**{"X-Message-Id": "m-1"})) as r:
        assert r.status == 202
    async with http.post(gateway.url + RELAY, json=person_payload(2), headers=headers(**{"X-Message-Id": "m-1"})) as r:
        problem = await r.json()
        assert r.status == 422
        assert "different message" in problem["detail"]
    assert await stored_count(gateway) == 1


BAD_BODIES = [
    (b'{"a": 1', 400, "not valid JSON"),
    (b'{"a": 1, "a": 2}', 400, "appears twice"),
    (b'{"a": NaN}', 400, "NaN is not a JSON number"),
    (b'{"a": Infinity}', 400, "Infinity is not a JSON number"),
    (b'{"a": -Infinity}', 400, "Infinity is not a JSON number"),
    (b'{"a": 1e400}', 400, "too large"),
    (b"[" * 40 + b"]" * 40, 400, "nested 40 levels deep"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested"),
    (b"", 400, "empty"),
    (b"\xff\xfe{}", 400, "UTF-8"),
    (b'\xef\xbb\xbf{"a": 1}', 400, "byte-order mark"),
]


@pytest.mark.parametrize(("body", "status", "detail"), BAD_BODIES, ids=[d for _, _, d in BAD_BODIES])
async def test_bad_json_is_refused_with_a_problem_and_nothing_is_stored(start_gateway, receiver, http, body, status, detail):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + RELAY, data=body, headers=headers()) as response:
        problem = await response.json()
        assert response.status == status
        assert response.content_type == "application/problem+json"
        assert detail in problem["detail"]
        assert problem["type"].startswith("urn:reentry-gateway:problem:")
    assert await stored_count(gateway) == 0


REFUSALS = [
    ("unknown recipient", "/api/v1/relay/nobody/notices", headers(), 404, "no member 'nobody'"),
    ("unknown service", "/api/v1/relay/health/nothing", headers(), 404, "offers no service 'nothing'"),
    ("no identity", RELAY, {"Content-Type": "application/json", "X-Purpose": "continuity_of_care"}, 401, "X-Member-Id"),
    ("unknown member", RELAY, headers("stranger"), 401, "not a member"),
    ("no grant", RELAY, headers("social"), 403, "may not call health/notices"),
    ("missing purpose", RELAY, {"Content-Type": "application/json", "X-Member-Id": "penal"}, 400, "X-Purpose is required"),
    ("wrong purpose", RELAY, headers(**{"X-Purpose": "pretrial_report"}), 403, "purpose 'pretrial_report' is not allowed"),
    ("bad message id", RELAY, headers(**{"X-Message-Id": "has space"}), 400, "X-Message-Id must be"),
    ("long message id", RELAY, headers(**{"X-Message-Id": "x" * 129}), 400, "X-Message-Id must be"),
    ("text body", RELAY, {**headers(), "Content-Type": "text/plain"}, 415, "application/json"),
    ("latin-1 json", RELAY, {**headers(), "Content-Type": "application/json; charset=latin-1"}, 415, "UTF-8"),
]


@pytest.mark.parametrize(("path", "sent", "status", "detail"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_refused_requests_say_what_to_fix_and_store_nothing(start_gateway, receiver, http, path, sent, status, detail):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + path, data=json.dumps(person_payload()), headers=sent) as response:
        problem = await response.json()
        assert response.status == status, problem
        assert response.content_type == "application/problem+json"
        assert detail in problem["detail"]
    assert await stored_count(gateway) == 0


async def test_body_over_the_limit_is_refused_with_413_by_content_length(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    body = json.dumps({"pad": "x" * 1_100_000}).encode()
    async with http.post(gateway.url + RELAY, data=body, headers=headers()) as response:
        assert response.status == 413
        assert "limit" in (await response.json())["detail"]
    assert await stored_count(gateway) == 0


async def test_chunked_body_over_the_limit_is_refused_with_413(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)

    async def chunks():
        for _ in range(40):
            yield b"x" * 32_768

    async with http.post(gateway.url + RELAY, data=chunks(), headers=headers()) as response:
        assert response.status == 413
    assert await stored_count(gateway) == 0


async def test_unknown_path_and_wrong_method_are_problems_not_html(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.get(gateway.url + "/api/v1/nothing") as response:
        assert response.status == 404 and response.content_type == "application/problem+json"
    async with http.get(gateway.url + RELAY) as response:
        assert response.status == 405 and response.content_type == "application/problem+json"


async def test_an_unordered_service_ignores_the_ordering_key(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    sent = headers(**{"X-Ordering-Key": "case-1"})
    async with http.post(gateway.url + "/api/v1/relay/health/bulk", json=person_payload(), headers=sent) as r:
        message_id = (await r.json())["message_id"]
    assert (await gateway.store.get_message(message_id)).ordering_key is None


async def test_the_ordering_key_is_kept_for_an_ordered_service(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers(**{"X-Ordering-Key": "case-1"})) as r:
        message_id = (await r.json())["message_id"]
    assert (await gateway.store.get_message(message_id)).ordering_key == "case-1"


async def test_store_failure_is_a_503_and_no_acknowledgement(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    await gateway.store.close()  # the database is gone
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=headers()) as response:
        assert response.status == 503
        assert response.content_type == "application/problem+json"
    await gateway.store.open()


async def test_correlation_id_is_echoed_and_logged_without_personal_data(start_gateway, receiver, http, log_lines):
    receiver.respond = lambda body, seen: (503, {}) if seen == 1 else (200, {})
    gateway = await start_gateway(receiver.url)
    sent = headers(**{"X-Correlation-Id": f"trace-{PERSON_IIN}"})
    async with http.post(gateway.url + RELAY, json=person_payload(), headers=sent) as response:
        assert response.headers["X-Correlation-Id"] == f"trace-{PERSON_IIN}"
    await wait_until(lambda: receiver.received)
    failures = [json.loads(line) for line in log_lines.getvalue().splitlines() if "delivery attempt failed" in line]
    assert failures and failures[0]["correlation_id"] == "trace-[iin]"


async def test_a_dead_letter_page_over_the_maximum_is_refused_not_clamped(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    for limit, status in (("500", 200), ("501", 400), ("0", 400)):
        async with http.get(f"{gateway.url}/api/v1/dlq?limit={limit}", headers={"X-Member-Id": "ops"}) as response:
            assert response.status == status, limit
            if status == 400:
                assert response.content_type == "application/problem+json"
                assert "from 1 to 500" in (await response.json())["detail"]


async def test_a_replay_that_is_not_json_is_415(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(f"{gateway.url}/api/v1/dlq/replay", data=b"recipient=health",
                         headers={"X-Member-Id": "ops", "Content-Type": "text/plain"}) as response:
        assert response.status == 415 and response.content_type == "application/problem+json"
