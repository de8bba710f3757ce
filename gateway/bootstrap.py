"""The one place where concrete parts are chosen and wired together."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from gateway.config import GatewayConfig
from gateway.delivery.engine import DeliveryEngine
from gateway.delivery.relay import Relay
from gateway.delivery.transport import HttpTransport
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.security.audit import AuditLog
from gateway.security.audit_keys import AuditKeys
from gateway.security.disclosure import DisclosurePolicy
from gateway.security.jws import JsonSignatures
from gateway.security.keys import gateway_signer, member_verifier
from gateway.security.seal import OutboundSeal
from gateway.security.tls import ServerTls, client_context
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.release_notices import RELEASE_NOTICE_SENDERS, ReleaseNoticeReceiver
from gateway.store import Message, Store, create_store
from gateway.workflows.egress import Egress, Envelope
from gateway.workflows.pretrial import PretrialReports
from gateway.workflows.release import ReleaseCases
from gateway.workflows.runtime import WorkflowRuntime

log = get_logger("gateway")


@dataclass
class Workflows:
    """The business processes, running on the store and talking to agencies through the adapters."""

    runtime: WorkflowRuntime
    pretrial: PretrialReports
    release: ReleaseCases
    session: aiohttp.ClientSession

    async def stop(self, grace_seconds: float) -> None:
        await self.runtime.stop(grace_seconds)
        await self.session.close()


@dataclass
class Gateway:
    """A running gateway: its store, delivery engine, relay and HTTP server."""

    config: GatewayConfig
    store: Store
    metrics: Metrics
    engine: DeliveryEngine
    relay: Relay
    policy: DisclosurePolicy
    audit: AuditLog
    json_signatures: JsonSignatures
    """Verifies the JSON members with ``sign_json`` relay, and signs what is delivered to them."""
    clock: Callable[[], float] = time.time
    signer: Signer | None = None
    """Signs the SOAP the gateway sends and answers (WS-Security over the Body)."""
    verifiers: Mapping[str, Verifier] = field(default_factory=dict)
    """Per member, its pinned certificates: what the SOAP it sends is verified with."""
    release_notice_receiver: ReleaseNoticeReceiver | None = None
    """Takes the release notices pushed to SOAP release-notices; None leaves that service closed."""
    release_notice_senders: tuple[str, ...] = RELEASE_NOTICE_SENDERS
    workflows: Workflows | None = None
    tls: ServerTls | None = None
    """The listener's TLS in ``mtls`` identity mode; None: plain HTTP (``header`` mode)."""
    client_ssl: ssl.SSLContext | None = None
    """What the gateway's own requests to https members present and trust; None: the system's trust."""
    _runner: web.AppRunner | None = field(default=None, repr=False)
    port: int | None = None

    async def start(self, *, host: str | None = None, port: int | None = None) -> None:
        """Open the store, start delivering, then listen. ``port=0`` picks a free port."""
        from gateway.http.app import create_app

        await self.store.open()
        self.audit.start(self.config.audit.tree_head_interval_seconds)
        if self.config.workflows is not None:
            self.workflows = _workflows(self)
            if self.release_notice_receiver is None:
                self.release_notice_receiver = self.workflows.release
            await self.workflows.runtime.start()
        await self.engine.start()
        # keepalive_timeout also closes a connection that has not sent a whole request by then
        # (slow headers); a slow body is cut off by the body deadline (gateway.security.intake).
        self._runner = web.AppRunner(create_app(self), access_log=None, handle_signals=False,
                                     keepalive_timeout=self.config.server.receive_timeout_seconds)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host if host is not None else self.config.server.host,
            self.config.server.port if port is None else port,
            ssl_context=self.tls.context if self.tls is not None else None,
            backlog=1024,
            reuse_address=True,
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("gateway listening", host=self._runner.addresses[0][0], port=self.port, store=_scheme(self.config))

    async def stop(self) -> None:
        """Stop listening first (nothing new is acknowledged), then finish deliveries, then close the store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.workflows is not None:
            await self.workflows.stop(self.config.server.shutdown_grace_seconds)
        await self.engine.stop(self.config.server.shutdown_grace_seconds)
        await self.audit.stop()
        await self.store.close()
        log.info("gateway stopped")

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.config.server.host}:{self.port}"


def build(
    config: GatewayConfig,
    *,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
    release_notice_receiver: ReleaseNoticeReceiver | None = None,
    release_notice_senders: tuple[str, ...] = RELEASE_NOTICE_SENDERS,
) -> Gateway:
    """Wire a gateway. ``release_notice_receiver`` (the release-case workflow) opens the SOAP
    release-notices service to ``release_notice_senders``."""
    store = store or create_store(config.store.url, base_dir=config.base_dir)
    metrics = Metrics()
    json_signatures = JsonSignatures.from_config(config, clock)
    server_tls, client_ssl = _tls(config)
    signer = gateway_signer(config.signing, config.base_dir, member_id=config.server.member_id)
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
    relay = Relay(config, store, metrics, audit, clock)
    verifiers = {member_id: member_verifier(member_id, member, config.base_dir,
                                            max_clock_skew_seconds=config.server.max_clock_skew_seconds)
                 for member_id, member in config.members.items()}
    return Gateway(
        config=config, store=store, metrics=metrics, engine=engine, relay=relay, policy=policy, audit=audit,
        clock=clock, signer=signer, verifiers=verifiers,
        release_notice_receiver=release_notice_receiver,
        release_notice_senders=release_notice_senders,
        json_signatures=json_signatures, tls=server_tls, client_ssl=client_ssl,
    )


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


def _scheme(config: GatewayConfig) -> str:
    # Never log the whole URL: it may carry a password.
    return config.store.url.split(":", 1)[0]


# ---------------------------------------------------------------- workflows


def _workflows(gateway: Gateway) -> Workflows:
    """The workflows with their agency clients and outbound codecs (needs a running loop)."""
    from adapters.clinic import client as clinic
    from adapters.court.client import CONTENT_TYPE as COURT_CONTENT_TYPE, CourtCodec
    from adapters.employment import client as employment
    from adapters.health.client import HealthClient
    from adapters.interior.client import InteriorClient
    from adapters.penal.client import PenalClient
    from adapters.probation import client as probation
    from adapters.social import client as social
    from adapters.social.client import SocialClient

    config, members = gateway.config, gateway.config.members
    settings = config.workflows
    assert settings is not None
    me = config.server.member_id
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=64,
                                                                   ssl=gateway.client_ssl or True))
    timeout = settings.pretrial.source_timeout_seconds

    def endpoint(member: str) -> str:
        return members[member].endpoint or ""

    signer, verifiers = gateway.signer, gateway.verifiers
    # Signed by the transport at each attempt (gateway.security.seal), like every SOAP delivery.
    court = CourtCodec(sender_id=me, verifier=verifiers.get(settings.pretrial.court.member))
    release = settings.release
    codecs = {
        (settings.pretrial.court.member, settings.pretrial.court.service): _Codec(
            COURT_CONTENT_TYPE,
            lambda report, env: court.request(report, message_id=env.message_id, message_date=env.created_at,
                                              correlation_id=env.correlation_id)),
        (release.clinic.member, release.clinic.service): _Codec(
            clinic.CONTENT_TYPE,
            lambda notice, env: clinic.continuity_notice_body(notice, notice_id=env.message_id, sent_at=env.created_at)),
        (release.escalation.member, release.escalation.service): _Codec(
            clinic.CONTENT_TYPE,
            lambda notice, env: clinic.continuity_notice_body(notice, notice_id=env.message_id, sent_at=env.created_at)),
        (release.employment.member, release.employment.service): _Codec(
            employment.CONTENT_TYPE, lambda notice, env: employment.employment_notice_body(notice)),
        (release.social.member, release.social.service): _Codec(
            social.CONTENT_TYPE, lambda referral, env: social.referral_body(referral)),
        (release.probation.member, release.probation.service): _Codec(
            probation.CONTENT_TYPE, lambda notice, env: probation.probation_notice_body(notice)),
    }
    egress = Egress(config, gateway.policy, gateway.audit, codecs)
    runtime = WorkflowRuntime(
        gateway.store, clock=gateway.clock, concurrency=settings.concurrency,
        lease_seconds=settings.timer_lease_seconds, poll_interval=settings.poll_interval_seconds,
    )
    health = HealthClient(endpoint(release.health), session, timeout=timeout, sender_id=me)
    interior = InteriorClient(endpoint(settings.pretrial.interior), session, timeout=timeout, sender_id=me,
                              signer=signer, verifier=verifiers.get(settings.pretrial.interior))
    court_role = members[settings.pretrial.court.member].role

    def decode_receipt(report_id: str, version: int, message: Message):
        return court.receipt(report_id, version, message_id=message.id, status=message.last_status or 200,
                             media_type="text/xml", body=message.answer or b"")

    pretrial = PretrialReports(
        runtime, settings.pretrial, egress,
        interior=interior,
        penal=PenalClient(endpoint(settings.pretrial.penal), session, timeout=timeout, sender_id=me,
                          signer=signer, verifier=verifiers.get(settings.pretrial.penal)),
        health=HealthClient(endpoint(settings.pretrial.health), session, timeout=timeout, sender_id=me),
        social=SocialClient(endpoint(settings.pretrial.social), session, timeout=timeout, sender_id=me),
        decode_receipt=decode_receipt,
        full_health_allowed=lambda basis: gateway.policy.accepts_legal_basis(
            recipient_role=court_role, purpose="pretrial_report", document_type="PreTrialReport", legal_basis=basis),
    )
    release_cases = ReleaseCases(
        runtime, release, egress, interior=InteriorClient(endpoint(release.interior), session, timeout=timeout,
                                                          sender_id=me, signer=signer,
                                                          verifier=verifiers.get(release.interior)),
        health=health, subject_key=gateway.audit.subject_key,
    )
    gateway.engine.listen(settings.pretrial.court.member, settings.pretrial.court.service, pretrial)
    gateway.engine.listen(release.clinic.member, release.clinic.service, release_cases)
    return Workflows(runtime=runtime, pretrial=pretrial, release=release_cases, session=session)


@dataclass(frozen=True)
class _Codec:
    """An outbound codec made of a content type and an encoding function."""

    content_type: str
    _encode: Callable[[object, Envelope], bytes]

    def encode(self, document: object, envelope: Envelope) -> bytes:
        return self._encode(document, envelope)
