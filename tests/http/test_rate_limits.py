"""Rate limits per member and service: a token bucket on the injected clock, 429 with Retry-After."""

from __future__ import annotations

import json

import pytest

from gateway.config import load_config
from gateway.entrypoints.http.server import build
from support import person_payload, write_config

NOTICES = "/api/v1/relay/health/notices"
BULK = "/api/v1/relay/health/bulk"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _headers(member: str = "penal") -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Member-Id": member, "X-Purpose": "continuity_of_care"}


@pytest.fixture
async def limited(tmp_path, receiver, store_url):
    directory = write_config(tmp_path / "config", receiver_url=receiver.url, store_url=store_url)
    settings = directory / "gateway.toml"
    settings.write_text(settings.read_text().replace(
        "[server]\n", "[server]\nrate_limit = { per_second = 0.5, burst = 3 }\n", 1))
    clock = Clock()
    gateway = build(load_config(directory, environ={}), clock=clock)
    await gateway.start(port=0)
    yield gateway, clock
    await gateway.stop()


async def _post(http, gateway, path: str, member: str = "penal"):
    async with http.post(gateway.url + path, json=person_payload(), headers=_headers(member)) as response:
        return response.status, response.headers.get("Retry-After"), await response.json()


async def test_a_member_over_its_rate_is_answered_429_with_retry_after_and_nothing_is_stored(limited, http):
    gateway, _ = limited
    statuses = [(await _post(http, gateway, NOTICES))[0] for _ in range(3)]
    assert statuses == [202, 202, 202]
    status, retry_after, problem = await _post(http, gateway, NOTICES)
    assert status == 429 and retry_after == "2"
    assert problem["type"].endswith(":too-many-requests") and problem["retry_after"] == 2
    assert "health/notices" in problem["detail"]
    assert len(await gateway.store.list_messages(limit=100)) == 3


async def test_the_bucket_refills_on_the_gateways_clock(limited, http):
    gateway, clock = limited
    for _ in range(3):
        await _post(http, gateway, NOTICES)
    assert (await _post(http, gateway, NOTICES))[0] == 429
    clock.now += 2.0
    assert (await _post(http, gateway, NOTICES))[0] == 202
    assert (await _post(http, gateway, NOTICES))[0] == 429


async def test_one_flooded_service_leaves_the_members_other_services_and_other_members_alone(limited, http):
    gateway, _ = limited
    for _ in range(4):
        await _post(http, gateway, NOTICES)
    assert (await _post(http, gateway, BULK))[0] == 202
    assert (await _post(http, gateway, NOTICES, member="interior"))[0] in (202, 403)
    assert (await _post(http, gateway, NOTICES, member="interior"))[0] != 429


async def test_throttled_requests_are_counted_not_audited_one_by_one(limited, http):
    gateway, _ = limited
    for _ in range(10):
        await _post(http, gateway, NOTICES)
    entries = [json.loads(record.entry) for record in await gateway.store.read_audit(1, 1000)]
    assert sum(entry["outcome"] == "accepted" for entry in entries) == 3
    assert not [entry for entry in entries if entry["outcome"] == "refused"]
    async with http.get(gateway.url + "/metrics") as response:
        metrics = await response.text()
    assert 'gateway_rate_limited_total{member="penal",service="health/notices"} 7.0' in metrics


def test_a_rate_limit_out_of_range_is_refused_at_start_up(tmp_path, receiver):
    from gateway.errors import ConfigError

    directory = write_config(tmp_path / "config", receiver_url=receiver.url)
    settings = directory / "gateway.toml"
    settings.write_text(settings.read_text().replace("[server]\n", "[server]\nrate_limit = { per_second = 0, burst = 3 }\n", 1))
    with pytest.raises(ConfigError, match="rate_limit.per_second"):
        load_config(directory, environ={})


async def test_a_throttled_soap_caller_gets_a_server_fault_with_http_500_and_retry_after(limited, http):
    # A throttled request succeeds later unchanged: a Server fault, which SOAP stacks and
    # outboxes retry; a SOAP fault is HTTP 500 whatever its code (WS-I BP R1126).
    gateway, _ = limited
    answers = []
    for _ in range(4):
        async with http.post(gateway.url + "/soap/relay", data=b"<x/>",
                             headers={"Content-Type": "text/xml", "X-Member-Id": "penal"}) as response:
            answers.append((response.status, response.headers.get("Retry-After"), await response.text()))
    status, retry_after, text = answers[-1]
    assert status == 500 and retry_after is not None
    assert "<faultcode>soap:Server</faultcode>" in text and "<errorCode>too-many-requests</errorCode>" in text
    async with http.get(gateway.url + "/metrics") as response:
        metrics = await response.text()
    assert 'gateway_internal_errors_total{route="/soap/{service}"}' not in metrics
