"""The one place where concrete parts are chosen and wired together.

``build`` returns the gateway's services, typed and frozen: every part is made here and nothing
is assigned after it. It is called from a coroutine, because the workflows' agency clients share
one HTTP session that needs the running loop. ``Services.start``/``stop`` open and close what
runs (the store, the audit signer, the workflow timers, the delivery workers); the entry points
(``gateway.entrypoints``) serve on top of them.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from adapters.adaptation import client as adaptation
from adapters.clinic import client as clinic
from adapters.court import codec as court_xml
from adapters.court.client import CourtCodec
from adapters.employment import client as employment
from adapters.health.client import HealthClient
from adapters.interior.client import InteriorClient
from adapters.penal.client import PenalClient
from adapters.probation import client as probation
from adapters.social import client as social
from adapters.social.client import SocialClient
from gateway.config import GatewayConfig, WorkflowsConfig
from gateway.errors import ConfigError
from gateway.delivery.engine import DeliveryEngine
from gateway.delivery.seal import OutboundSeal
from gateway.delivery.transport import HttpTransport
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.security.audit import AuditLog
from gateway.security.audit_keys import AuditKeys
from gateway.security.disclosure import DisclosurePolicy
from gateway.security.jws import JsonSignatures
from gateway.security.keys import gateway_signer, member_verifier
from gateway.security.pseudonyms import Pseudonyms
from gateway.security.revocation import RevocationChecker
from gateway.security.tls import ServerTls, client_context
from gateway.security.xmldsig import Signer, Verifier
from gateway.services.mailbox import Mailbox, Received
from gateway.services.indicators import Indicators
from gateway.services.outcomes import OutcomeIntake
from gateway.services.person_copies import PersonCopies
from gateway.services.plans import PlanIntake
from gateway.services.relay import Relay
from gateway.services.report_reading import ReportReader
from gateway.services.release_intake import RELEASE_NOTICE_SENDERS, ReleaseIntake, ReleaseNoticeReceiver
from gateway.store import Store, create_store
from gateway.workflows.egress import Egress
from gateway.workflows.outcomes import OutcomeTracking
from gateway.workflows.plans import PlanRouting
from gateway.workflows.pretrial import PretrialReports
from gateway.workflows.release import ReleaseCases
from gateway.workflows.runtime import WorkflowRuntime

__all__ = ["Services", "Workflows", "build"]

log = get_logger("gateway")


@dataclass(frozen=True)
class Workflows:
    """The business processes, running on the store and talking to agencies through the adapters."""

    runtime: WorkflowRuntime
    pretrial: PretrialReports
    release: ReleaseCases
    plans: PlanRouting | None
    """Routes re-socialisation plans (``[workflows.plans]``); None: not configured."""
    session: aiohttp.ClientSession


@dataclass(frozen=True)
class Services:
    """Everything the entry points use, built once by ``build``."""

    config: GatewayConfig
    clock: Callable[[], float]
    store: Store
    metrics: Metrics
    engine: DeliveryEngine
    relay: Relay
    policy: DisclosurePolicy
    audit: AuditLog
    json_signatures: JsonSignatures
    """Verifies the JSON members with ``sign_json`` relay, and signs what is delivered to them."""
    signer: Signer | None
    """Signs the SOAP the gateway sends and answers (WS-Security over the Body)."""
    verifiers: Mapping[str, Verifier]
    """Per member, its pinned certificates: what the SOAP it sends is verified with."""
    revocation: RevocationChecker
    """Whether the certificate that verified a member's signature (XML or JSON) is revoked."""
    release_intake: ReleaseIntake | None
    """Takes the release notices pushed to SOAP release-notices; None leaves that service closed."""
    plans: PlanIntake | None
    """Takes re-socialisation plans (SOAP resocialisation-plans, /api/v1/plans); None: closed."""
    person_copies: PersonCopies
    """The person's own copies of pre-trial reports: hand-overs recorded and disclosed under the policy."""
    workflows: Workflows | None
    outcomes: OutcomeIntake
    """Referrals, their outcomes and re-offence signals in, as pseudonymous indicator events."""
    indicators: Indicators
    """The Strategy's target indicators, computed from those events, published openly."""
    mailbox: Mailbox
    """Message status, pulling and confirmation for members (SOAP AsyncChannel)."""
    tls: ServerTls | None
    """The listener's TLS in ``mtls`` identity mode; None: plain HTTP (``header`` mode)."""
    client_ssl: ssl.SSLContext | None = field(repr=False)
    """What the gateway's own requests to https members present and trust; None: the system's trust."""

    @property
    def report_reader(self) -> ReportReader:
        """Every read of a pre-trial report's document goes through this: filtered, then audited."""
        return ReportReader(self.policy, self.audit, gateway_member=self.config.server.member_id)

    async def start(self) -> None:
        """Open the store, then run the audit signer, the workflow timers and the delivery workers."""
        await self.store.open()
        self.audit.start(self.config.audit.tree_head_interval_seconds)
        if self.workflows is not None:
            await self.workflows.runtime.start()
        await self.engine.start()

    async def stop(self) -> None:
        """Finish the workflows' steps and the deliveries in flight, then close the store."""
        grace = self.config.server.shutdown_grace_seconds
        if self.workflows is not None:
            await self.workflows.runtime.stop(grace)
            await self.workflows.session.close()
        await self.engine.stop(grace)
        await self.audit.stop()
        await self.revocation.close()
        await self.store.close()


def build(
    config: GatewayConfig,
    *,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
    release_notice_receiver: ReleaseNoticeReceiver | None = None,
    release_notice_senders: tuple[str, ...] = RELEASE_NOTICE_SENDERS,
) -> Services:
    """Wire a gateway. ``release_notice_receiver`` opens the SOAP release-notices service to
    ``release_notice_senders``; when the workflows are configured, the release-case workflow is
    the receiver unless one is given."""
    store = store or create_store(config.store.url, base_dir=config.base_dir)
    metrics = Metrics()
    revocation = RevocationChecker.from_config(
        config, clock=clock, record=lambda source, outcome: metrics.revocation_checks.labels(source, outcome).inc())
    json_signatures = JsonSignatures.from_config(config, clock, revocation=revocation)
    server_tls, client_ssl = _tls(config)
    signer = gateway_signer(config.signing, config.base_dir, member_id=config.server.member_id)
    verifiers = {member_id: member_verifier(member_id, member, config.base_dir,
                                            max_clock_skew_seconds=config.server.max_clock_skew_seconds)
                 for member_id, member in config.members.items()}
    _check_revocable(config, verifiers, json_signatures, revocation)
    transport = HttpTransport(connect_timeout=config.delivery.connect_timeout_seconds, ssl=client_ssl,
                              seal=OutboundSeal(signer, json_signatures.headers_for))
    policy = DisclosurePolicy(config.policy)
    audit = AuditLog(
        store,
        AuditKeys.provision(config.audit, config.base_dir),
        gateway_member=config.server.member_id,
        clock=clock,
    )
    engine = DeliveryEngine(store, config.members, config.delivery, metrics, transport=transport, clock=clock,
                            audit=audit)
    # A relayed document reaches a SOAP service in the XML its agencies speak, as the workflows send it.
    relay = Relay(config, store, metrics, audit, policy, clock,
                  xml_writers={"PreTrialReport": court_xml.encode_pretrial_report})
    pseudonyms = Pseudonyms.provision(config.base_dir / config.indicators.pseudonym_key_secret)
    outcomes = OutcomeIntake(store, pseudonyms, clock, providers=lambda member: member in config.members)
    workflows = None
    if config.workflows is not None:
        workflows = _workflows(config, config.workflows, store=store, clock=clock, policy=policy, audit=audit,
                               engine=engine, signer=signer, verifiers=verifiers, client_ssl=client_ssl,
                               metrics=metrics, tracking=OutcomeTracking(pseudonyms))
        release_notice_receiver = release_notice_receiver or workflows.release
    intake = None
    if release_notice_receiver is not None:
        intake = ReleaseIntake(release_notice_receiver, store, senders=release_notice_senders, clock=clock)
    mailbox = Mailbox(config, store, audit, metrics, clock=clock,
                      received=None if intake is None else _release_receipts(intake))
    plans = None
    if workflows is not None and workflows.plans is not None:
        plans = PlanIntake(store, workflows.plans, subject_key=audit.subject_key, clock=clock)
    return Services(
        config=config, clock=clock, store=store, metrics=metrics, engine=engine, relay=relay, policy=policy,
        audit=audit, json_signatures=json_signatures, signer=signer, verifiers=verifiers, revocation=revocation,
        release_intake=intake, plans=plans, person_copies=PersonCopies(store, policy, audit, clock),
        workflows=workflows, outcomes=outcomes,
        indicators=Indicators(store, clock, reuse_seconds=config.indicators.cache_seconds), mailbox=mailbox,
        tls=server_tls,
        client_ssl=client_ssl,
    )


def _check_revocable(config: GatewayConfig, verifiers: Mapping[str, Verifier], json_signatures: JsonSignatures,
                     revocation: RevocationChecker) -> None:
    """Refuse to start with a pinned certificate whose revocation cannot be checked as its CA asks."""
    problems = []
    for member_id, verifier in verifiers.items():
        for index, pinned in enumerate(verifier.pinned):
            problem = revocation.problem_with(pinned.certificate)
            if problem:
                problems.append(f"members.{member_id}.certificates[{index}]: {problem}")
    for member_id, key_id, certificate in json_signatures.certificates():
        problem = revocation.problem_with(certificate)
        if problem:
            problems.append(f"members.{member_id}.jws_keys.{key_id}: {problem}")
    if problems:
        raise ConfigError("; ".join(problems))


def _release_receipts(intake: ReleaseIntake):
    """The answers the release intake gave, as the mailbox reports them (status RECEIVED)."""

    async def received(sender: str, message_id: str) -> Received | None:
        receipt = await intake.receipt(sender, message_id)
        return None if receipt is None else Received(receipt.response_date, receipt.response_message_id)

    return received


def _tls(config: GatewayConfig) -> tuple[ServerTls | None, ssl.SSLContext | None]:
    """In ``mtls`` mode: the listener's TLS, and the client context of the gateway's own requests
    (its certificate, the exchange's CA and CRL), so members can hold it to the same rules."""
    if config.server.identity != "mtls":
        return None, None
    base, files = config.base_dir, config.tls
    ca, crl = base / files.ca_certificate, base / files.crl
    certificate, key = base / files.certificate, base / files.private_key
    return (ServerTls(ca=ca, crl=crl, certificate=certificate, private_key=key),
            client_context(ca=ca, crl=crl, certificate=certificate, private_key=key))


# ---------------------------------------------------------------- workflows


def _workflows(
    config: GatewayConfig,
    settings: WorkflowsConfig,
    *,
    store: Store,
    clock: Callable[[], float],
    policy: DisclosurePolicy,
    audit: AuditLog,
    engine: DeliveryEngine,
    signer: Signer | None,
    verifiers: Mapping[str, Verifier],
    client_ssl: ssl.SSLContext | None,
    metrics: Metrics,
    tracking: OutcomeTracking,
) -> Workflows:
    """The workflows with their agency clients and outbound codecs."""
    members = config.members
    me = config.server.member_id
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=64,
                                                                   ssl=client_ssl or True))
    timeout = settings.pretrial.source_timeout_seconds

    def endpoint(member: str) -> str:
        return members[member].endpoint or ""

    pretrial_settings, release = settings.pretrial, settings.release
    # Signed by the transport at each attempt (gateway.delivery.seal), like every SOAP delivery.
    court = CourtCodec(sender_id=me, verifier=verifiers.get(pretrial_settings.court.member))
    codecs = {
        (pretrial_settings.court.member, pretrial_settings.court.service): court,
        (release.clinic.member, release.clinic.service): clinic.ContinuityNoticeCodec(),
        (release.escalation.member, release.escalation.service): clinic.ContinuityNoticeCodec(),
        (release.employment.member, release.employment.service): employment.EmploymentNoticeCodec(),
        (release.social.member, release.social.service): social.ReferralCodec(),
        (release.probation.member, release.probation.service): probation.ProbationNoticeCodec(),
    }
    if settings.plans is not None:
        for route in (settings.plans.probation, *settings.plans.partners):
            codecs[(route.member, route.service)] = adaptation.PlanNoticeCodec()
    egress = Egress(config, policy, audit, codecs)
    runtime = WorkflowRuntime(
        store, clock=clock, concurrency=settings.concurrency,
        lease_seconds=settings.timer_lease_seconds, poll_interval=settings.poll_interval_seconds,
        on_parked=lambda timer: metrics.parked_timers.labels(timer.case_kind, timer.name).inc(),
    )

    def interior(member: str) -> InteriorClient:
        return InteriorClient(endpoint(member), session, timeout=timeout, sender_id=me, signer=signer,
                              verifier=verifiers.get(member))

    court_role = members[pretrial_settings.court.member].role
    pretrial = PretrialReports(
        runtime, pretrial_settings, egress,
        interior=interior(pretrial_settings.interior),
        penal=PenalClient(endpoint(pretrial_settings.penal), session, timeout=timeout, sender_id=me,
                          signer=signer, verifier=verifiers.get(pretrial_settings.penal)),
        health=HealthClient(endpoint(pretrial_settings.health), session, timeout=timeout, sender_id=me),
        social=SocialClient(endpoint(pretrial_settings.social), session, timeout=timeout, sender_id=me),
        decode_receipt=court.decode_receipt,
        full_health_allowed=lambda basis: policy.accepts_legal_basis(
            recipient_role=court_role, purpose="pretrial_report", document_type="PreTrialReport", legal_basis=basis),
    )
    release_cases = ReleaseCases(
        runtime, release, egress, interior=interior(release.interior),
        health=HealthClient(endpoint(release.health), session, timeout=timeout, sender_id=me),
        subject_key=audit.subject_key, outcomes=tracking,
    )
    engine.listen(pretrial_settings.court.member, pretrial_settings.court.service, pretrial)
    engine.listen(release.clinic.member, release.clinic.service, release_cases)
    plans = None if settings.plans is None else PlanRouting(settings.plans, egress, members=members,
                                                            tracking=tracking)
    return Workflows(runtime=runtime, pretrial=pretrial, release=release_cases, plans=plans, session=session)
