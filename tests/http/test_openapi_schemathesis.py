"""The gateway's OpenAPI contract, checked by schemathesis against a real gateway on loopback.

A gateway with the shipped configuration (workflows on) serves its own ``/openapi.json`` over
mTLS; schemathesis generates requests from it — valid and invalid — for every operation and
runs all its checks on every answer (no 5xx, status codes, content types, headers and bodies
as documented, …), as an unidentified caller (a certificate the CA issued to no member) and
as a member of each role. Bounded and deterministic: few examples per operation, a fixed
derandomised search, no example database, nothing beyond loopback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import threading
from collections.abc import Iterator

import pytest
import requests
from requests.adapters import HTTPAdapter
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from aiohttp import web

from gateway.domain import Sex, make_iin
from gateway.entrypoints.http.server import build
from gateway.entrypoints.tools.simulate import SYSTEMS, system_config
from gateway.security.tls import DevelopmentPki

MAX_EXAMPLES = 3


def _iins() -> st.SearchStrategy[str]:
    """Valid IINs: a check digit JSON Schema cannot state (``format: iin`` in the contract)."""
    people = st.builds(make_iin, st.dates(dt.date(1930, 1, 1), dt.date(2020, 12, 31)), st.sampled_from(list(Sex)),
                       st.integers(1, 9999))
    return people.filter(lambda iin: iin is not None).map(str)


def _visible(layout: str = "") -> st.SearchStrategy[str]:
    """Text as ``format: visible-text`` (``visible-narrative`` also line breaks and tabs) says:
    no invisible character, not blank once trimmed."""
    characters = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp"), include_characters=layout)
    return st.text(characters, min_size=1, max_size=40).filter(lambda text: text.strip() != "")


schemathesis.openapi.format("iin", _iins())
schemathesis.openapi.format("visible-text", _visible())
schemathesis.openapi.format("visible-narrative", _visible("\r\n\t"))

# Where a schema-valid request is refused (400) for what no schema can say, because it depends
# on the gateway's state or clock: a proof for a tree larger than the log is now, a quarter
# that has not begun, a report due in the past or beyond workflows.pretrial.max_due_days, a
# referral to a provider that is not a member of this exchange's configuration (the document
# is the same for every exchange), a plan for a person the gateway holds no release notice for
# (and whose score must lie within its instrument's range, its dates in order). Only the check that schema-valid data is accepted is left out there;
# every other check runs on them.
STATEFUL = {"GET /api/v1/oversight/proofs/inclusion", "GET /api/v1/oversight/proofs/consistency",
            "GET /api/v1/indicators", "POST /api/v1/referrals", "POST /api/v1/pretrial-reports",
            "POST /api/v1/plans"}
# The callers: nobody the exchange knows, and one member of each kind the routes tell apart.
# "operations" holds both access roles (operator and oversight).
CALLERS = ("stranger", "penal", "probation", "clinic", "court", "health", "social", "operations")


class GatewayThread:
    """The gateway and a loopback sink for its deliveries, on an event loop of their own, so a
    synchronous client (schemathesis uses requests) can call it from the test's thread."""

    def __init__(self, directory, store_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._directory, self._store_url = directory, store_url

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        sink = web.Application()
        sink.router.add_route("*", "/{path:.*}", lambda request: web.json_response({}, status=200))
        self._sink = web.AppRunner(sink, access_log=None)
        await self._sink.setup()
        site = web.TCPSite(self._sink, "127.0.0.1", 0)
        await site.start()
        sink_url = f"http://127.0.0.1:{self._sink.addresses[0][1]}"
        self.pki = DevelopmentPki(self._directory / "pki")
        settings = {
            "server.identity": "mtls",
            "tls.ca_certificate": str(self.pki.ca_certificate),
            "tls.crl": str(self.pki.crl),
            "tls.certificate": str(self.pki.certificate("gateway")),
            "tls.private_key": str(self.pki.private_key("gateway")),
            "members.penal.require_signature": False,
            "members.interior.require_signature": False,
            "members.court.require_signature": False,
            "audit.tree_head_interval_seconds": 3600,
            "members.operations.roles": ["operator", "oversight"],
        }
        config = system_config(self._directory / "config", urls={system: sink_url for system in SYSTEMS},
                               gateway_port=0, store_url=self._store_url, settings=settings)
        DevelopmentPki.init(self.pki.directory, ["gateway", *config.members, "stranger"])
        self.config = config
        self.gateway = build(config)
        await self.gateway.start(port=0)
        self.url = self.gateway.url

    def stop(self) -> None:
        async def stop():
            await self.gateway.stop()
            await self._sink.cleanup()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[GatewayThread]:
    served = GatewayThread(tmp_path_factory.mktemp("schemathesis"), "sqlite:///gateway.db")
    served.start()
    yield served
    served.stop()


class _Tls(HTTPAdapter):
    """requests over the development PKI's client context for one member (its CA only, its CRL)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)


def _session(served: GatewayThread, caller: str) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _Tls(served.pki.client_context(caller)))
    return session


@pytest.mark.parametrize("caller", CALLERS)
def test_every_operation_keeps_its_contract(served, caller):
    session = _session(served, caller)
    # The document as a member reads it: a certificate of no member is refused everywhere (401).
    answer = _session(served, "operations").get(f"{served.url}/openapi.json", timeout=10)
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    document = answer.json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=served.url)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        def check(case):
            excluded = [positive_data_acceptance] if operation.label in STATEFUL else []
            case.call_and_validate(session=session, timeout=10, excluded_checks=excluded)

        try:
            check()
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - all are reported, then the test fails
            failures.append(f"{operation.label} as {caller}: {_summary(failure)}")
    assert not failures, "\n\n".join(failures)


def _summary(failure: Exception) -> str:
    """The failure's checks and the first answer, short enough to read many at once."""
    text = str(failure)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line[:300] for line in lines if line.startswith(("- ", "[", "`", "curl"))]
    return " | ".join(named[:6]) or text[:600]
