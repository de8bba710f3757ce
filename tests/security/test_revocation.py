"""The revocation checker against a CA the test creates: its CRL, and its OCSP responder on
loopback answering good, revoked and unknown, or misbehaving. Time is the injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from gateway.errors import ConfigError
from gateway.security.revocation import (
    CertificateRevoked,
    CertificateStatusUnknown,
    RevocationChecker,
    RevocationUnavailable,
)
from security.revocation_pki import Responder, TestCa


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, source: str, outcome: str) -> None:
        self.seen.append((source, outcome))


@pytest.fixture
def ca() -> TestCa:
    return TestCa()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def responder(ca, clock):
    running = await Responder(ca, clock=clock).start()
    yield running
    await running.stop()


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


@pytest.fixture
async def checker_for(ca, clock, outcomes, tmp_path):
    made = []

    def make(*, crl: bytes | None = None, **options) -> RevocationChecker:
        crls = []
        if crl is not None:
            (tmp_path / "crl.pem").write_bytes(crl)
            crls.append(tmp_path / "crl.pem")
        checker = RevocationChecker(issuers=[ca.certificate], crls=crls, clock=clock, record=outcomes, **options)
        made.append(checker)
        return checker

    yield make
    for checker in made:
        await checker.close()


# ---------------------------------------------------------------- answers


async def test_a_good_certificate_passes_both_the_crl_and_the_responder(ca, responder, checker_for, outcomes):
    member = ca.issue("penal", ocsp_url=responder.url)
    await checker_for(crl=ca.crl()).check("penal", member.certificate)
    assert responder.hits == 1
    assert outcomes.seen == [("crl", "good"), ("ocsp", "good")]


async def test_a_certificate_revoked_in_the_crl_is_refused_without_asking_the_responder(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    ca.revoke(member)
    with pytest.raises(CertificateRevoked, match="revoked by its CA on .* \\(crl\\)") as refusal:
        await checker_for(crl=ca.crl()).check("penal", member.certificate)
    assert refusal.value.status == 401 and refusal.value.slug == "certificate-revoked"
    assert responder.hits == 0


async def test_a_certificate_the_responder_says_is_revoked_is_refused(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    crl = ca.crl()  # published before the revocation: the responder knows better
    ca.revoke(member)
    with pytest.raises(CertificateRevoked, match="\\(ocsp\\)"):
        await checker_for(crl=crl).check("penal", member.certificate)


async def test_a_certificate_the_responder_does_not_know_is_refused(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.unknown.add(member.certificate.serial_number)
    with pytest.raises(CertificateStatusUnknown):
        await checker_for().check("penal", member.certificate)


async def test_a_delegated_responder_certified_by_the_ca_is_trusted(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.mode = "delegated"
    ca.revoke(member)
    with pytest.raises(CertificateRevoked):
        await checker_for().check("penal", member.certificate)


async def test_an_answer_without_a_nonce_is_accepted_within_its_dates(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.mode = "no-nonce"
    await checker_for().check("penal", member.certificate)


async def test_a_certificate_no_configured_ca_issued_is_not_asked_about(responder, checker_for):
    stranger = TestCa("Another CA").issue("penal", ocsp_url=responder.url)
    await checker_for().check("penal", stranger.certificate)
    assert responder.hits == 0


# ---------------------------------------------------------------- the cache


async def test_the_answer_is_reused_until_its_next_update(ca, responder, checker_for, clock):
    member = ca.issue("penal", ocsp_url=responder.url)
    checker = checker_for()
    for _ in range(5):
        await checker.check("penal", member.certificate)
    assert responder.hits == 1
    clock.now += 59 * 60  # nextUpdate is an hour after the answer
    await checker.check("penal", member.certificate)
    assert responder.hits == 1
    clock.now += 2 * 60
    await checker.check("penal", member.certificate)
    assert responder.hits == 2


async def test_a_revocation_is_seen_once_the_cached_answer_expires(ca, responder, checker_for, clock):
    member = ca.issue("penal", ocsp_url=responder.url)
    checker = checker_for()
    await checker.check("penal", member.certificate)
    ca.revoke(member)
    await checker.check("penal", member.certificate)  # still the good answer, until nextUpdate
    clock.now += 3601
    with pytest.raises(CertificateRevoked):
        await checker.check("penal", member.certificate)


async def test_an_answer_without_next_update_is_kept_for_cache_seconds(ca, responder, checker_for, clock):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.next_update = None
    checker = checker_for(cache_seconds=120)
    await checker.check("penal", member.certificate)
    clock.now += 119
    await checker.check("penal", member.certificate)
    assert responder.hits == 1
    clock.now += 2
    await checker.check("penal", member.certificate)
    assert responder.hits == 2


async def test_concurrent_checks_of_one_certificate_ask_the_responder_once(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    checker = checker_for()
    await asyncio.gather(*(checker.check("penal", member.certificate) for _ in range(20)))
    assert responder.hits == 1


# ---------------------------------------------------------------- no answer: soft- and hard-fail


async def test_an_unreachable_responder_refuses_under_hard_fail(ca, responder, checker_for, outcomes):
    member = ca.issue("penal", ocsp_url=responder.url)
    await responder.stop()
    with pytest.raises(RevocationUnavailable, match="cannot be established") as refusal:
        await checker_for(on_unreachable="hard-fail", timeout_seconds=2).check("penal", member.certificate)
    assert refusal.value.status == 503 and refusal.value.headers == {"Retry-After": "30"}
    assert ("none", "hard_fail") in outcomes.seen


async def test_an_unreachable_responder_is_accepted_with_a_warning_under_soft_fail(ca, responder, checker_for,
                                                                                  outcomes, log_lines):
    member = ca.issue("penal", ocsp_url=responder.url)
    await responder.stop()
    await checker_for(on_unreachable="soft-fail", timeout_seconds=2).check("penal", member.certificate)
    assert outcomes.seen == [("ocsp", "unreachable"), ("none", "soft_fail")]
    warnings = [json.loads(line) for line in log_lines.getvalue().splitlines() if "soft-fail" in line]
    assert warnings and warnings[0]["level"] == "warning" and warnings[0]["member"] == "penal"


async def test_the_member_setting_overrides_the_deployments(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.mode = "http-error"
    checker = checker_for(on_unreachable="hard-fail", per_member={"penal": "soft-fail"})
    await checker.check("penal", member.certificate)
    with pytest.raises(RevocationUnavailable):
        await checker.check("interior", member.certificate)


@pytest.mark.parametrize("mode", ["http-error", "try-later"])
async def test_a_responder_that_answers_no_status_is_unreachable(ca, responder, checker_for, mode):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.mode = mode
    with pytest.raises(RevocationUnavailable):
        await checker_for().check("penal", member.certificate)


async def test_an_unreachable_responder_is_not_asked_again_for_retry_seconds(ca, responder, checker_for, clock):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.mode = "http-error"
    checker = checker_for(on_unreachable="soft-fail", retry_seconds=30)
    for _ in range(3):
        await checker.check("penal", member.certificate)
    assert responder.hits == 1
    clock.now += 31
    responder.mode = "ok"
    ca.revoke(member)
    with pytest.raises(CertificateRevoked):
        await checker.check("penal", member.certificate)
    assert responder.hits == 2


async def test_a_fresh_crl_answers_when_the_responder_is_down(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    await responder.stop()
    await checker_for(crl=ca.crl(), on_unreachable="hard-fail", timeout_seconds=2).check("penal", member.certificate)


async def test_a_crl_past_its_next_update_is_no_answer(ca, checker_for, clock):
    member = ca.issue("penal")  # no responder: the CRL is the only source
    checker = checker_for(crl=ca.crl(next_update=dt.timedelta(hours=1)), on_unreachable="hard-fail")
    await checker.check("penal", member.certificate)
    clock.now += 2 * 3600
    with pytest.raises(RevocationUnavailable, match="past its nextUpdate"):
        await checker.check("penal", member.certificate)


async def test_a_crl_replaced_on_disk_is_read_again(ca, checker_for, tmp_path):
    member = ca.issue("penal")
    checker = checker_for(crl=ca.crl())
    await checker.check("penal", member.certificate)
    ca.revoke(member)
    staged = tmp_path / "crl.new"
    staged.write_bytes(ca.crl())
    staged.replace(tmp_path / "crl.pem")
    with pytest.raises(CertificateRevoked):
        await checker.check("penal", member.certificate)


# ---------------------------------------------------------------- answers that are not the CA's


@pytest.mark.parametrize(("mode", "reason"), [
    ("wrong-key", "signature does not verify with the responder's key"),
    ("impostor", "signed by neither the CA nor a responder the CA certified"),
    ("wrong-nonce", "another request's nonce"),
    ("other-certificate", "answers for another certificate"),
])
async def test_an_answer_that_is_not_the_cas_answer_on_this_certificate_is_refused(
        ca, responder, checker_for, outcomes, mode, reason):
    member = ca.issue("penal", ocsp_url=responder.url)
    ca.issue("interior", ocsp_url=responder.url)  # the other certificate of "other-certificate"
    responder.mode = mode
    checker = checker_for(on_unreachable="soft-fail")  # even soft-fail: an answer arrived, and it is false
    with pytest.raises(RevocationUnavailable, match=reason):
        await checker.check("penal", member.certificate)
    assert ("ocsp", "invalid") in outcomes.seen
    responder.mode = "ok"
    await checker.check("penal", member.certificate)  # a refused answer is not cached
    assert responder.hits == 2


async def test_an_answer_sent_in_chunks_without_a_length_is_read_whole(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.chunked = True
    ca.revoke(member)
    with pytest.raises(CertificateRevoked):
        await checker_for().check("penal", member.certificate)


async def test_an_oversized_answer_is_not_read_whole(ca, responder, checker_for):
    member = ca.issue("penal", ocsp_url=responder.url)
    responder.mode = "huge"
    with pytest.raises(RevocationUnavailable, match="over the limit of 65536 bytes"):
        await checker_for().check("penal", member.certificate)


# ---------------------------------------------------------------- configuration


def test_a_crl_signed_by_no_configured_issuer_is_a_configuration_error(ca, tmp_path):
    (tmp_path / "crl.pem").write_bytes(TestCa("Another CA").crl())
    with pytest.raises(ConfigError, match="revocation.crls: .*crl.pem: signed by CN=Another CA"):
        RevocationChecker(issuers=[ca.certificate], crls=[tmp_path / "crl.pem"])


def test_a_pinned_certificate_naming_a_responder_of_an_unconfigured_ca_is_reported(ca):
    member = TestCa("Another CA").issue("penal", ocsp_url="http://127.0.0.1:9/ocsp")
    problem = RevocationChecker(issuers=[ca.certificate]).problem_with(member.certificate)
    assert problem and "CN=Another CA is not one of revocation.issuers" in problem
    assert RevocationChecker(issuers=[ca.certificate]).problem_with(ca.issue("penal").certificate) is None

