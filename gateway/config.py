"""Configuration: declarative TOML files in a folder, validated at start-up.

The folder holds ``gateway.toml`` (server, store, delivery, logging, audit),
``members.toml`` (the agencies: endpoints, the services each offers, what each
may call and for which purposes) and ``policy.toml`` (the disclosure policy:
what each kind of recipient may see, for which purpose). Environment
variables override single keys: ``GATEWAY__STORE__URL=postgresql://…`` sets
``[store] url``. Every problem is reported with the file, the key and what is
wrong, all at once.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from gateway.errors import ConfigError
from gateway.resources import resource_dir
from gateway.security.disclosure import DOCUMENT_TYPES, policy_problems

FILES = ("gateway.toml", "members.toml", "policy.toml")
ENV_PREFIX = "GATEWAY__"

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
PURPOSES = (
    "pretrial_report",
    "continuity_of_care",
    "employment_assistance",
    "social_assistance",
    "probation_supervision",
    "resocialisation",
    "person_copy",
    "relay_test",
)
Purpose = Literal[
    "pretrial_report",
    "continuity_of_care",
    "employment_assistance",
    "social_assistance",
    "probation_supervision",
    "resocialisation",
    "person_copy",
    "relay_test",
]


# The XML signature algorithms (gateway.security.signature_algorithms.ALGORITHMS), by name.
SignatureAlgorithmName = Literal[
    "rsa-sha256", "rsa-sha384", "rsa-sha512", "ecdsa-sha256", "ecdsa-sha384", "gost2015-256", "gost2015-512",
]

# When a signing certificate's revocation status cannot be established (gateway.security.revocation).
RevocationMode = Literal["soft-fail", "hard-fail"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    member_id: Name = "gateway"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    max_json_depth: int = Field(32, ge=2, le=256)
    # How a caller is identified. "header" trusts X-Member-Id and is for
    # development on loopback only; "mtls" listens on TLS only and takes the member
    # from the client certificate verified against [tls] (docs/security.md).
    identity: Literal["header", "mtls"] = "header"
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    # A SOAP messageDate or a JSON signature's iat further than this from the gateway's
    # clock is refused: an old message replayed, or one dated ahead to outlive its window.
    max_clock_skew_seconds: float = Field(300.0, gt=0, le=3600)
    # A request body that has not fully arrived within this is refused (408), and a
    # connection that sends no complete request within it is closed: a client trickling
    # bytes must not hold a handler and a connection for ever.
    receive_timeout_seconds: float = Field(30.0, gt=0, le=600)
    # Every member's rate per service unless its own [members.ID] rate_limit says otherwise;
    # absent: no limit.
    rate_limit: RateLimit | None = None
    # Where callers reach the gateway (scheme, host, optional port; no path), as published in
    # its WSDLs (soap:address, schemaLocation). Unset: the scheme, the configured host and
    # the port the listener is bound to. Never taken from a request's Host header.
    public_url: str | None = Field(None, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class StoreConfig(_Section):
    url: str = "sqlite:///var/gateway.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not re.match(r"^(sqlite:///|postgres(ql)?://)", url):
            raise ValueError("use sqlite:///path/to/file.db or postgresql://user@host:port/database")
        return url


class DeliveryConfig(_Section):
    concurrency: int = Field(64, ge=1, le=1024, description="the most requests in flight per destination")
    min_concurrency: int = Field(1, ge=1, le=1024, description="the least; the adaptive limit starts here")
    latency_tolerance: float = Field(
        2.0, gt=1, le=100,
        description="an answer this many times slower than the destination's recent least latency lowers its limit")
    claim_batch: int = Field(64, ge=1, le=1000)
    max_attempts: int = Field(12, ge=1, le=1000)
    max_age_seconds: float = Field(86_400.0, gt=0)
    backoff_base_seconds: float = Field(0.5, gt=0)
    backoff_cap_seconds: float = Field(300.0, gt=0)
    connect_timeout_seconds: float = Field(3.0, gt=0)
    request_timeout_seconds: float = Field(10.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0)
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_reset_seconds: float = Field(30.0, gt=0)
    poll_interval_seconds: float = Field(1.0, gt=0)
    retention_days: float = Field(30.0, gt=0, description="how long delivered payloads are kept")
    dedup_days: float = Field(90.0, gt=0, description="how long message ids are remembered")

    @model_validator(mode="after")
    def _lease_outlives_attempt(self) -> DeliveryConfig:
        # A lease shorter than an attempt would let a second worker re-send a
        # message that is still being delivered.
        if self.lease_seconds < 2 * self.request_timeout_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be at least twice "
                f"request_timeout_seconds ({self.request_timeout_seconds:g})"
            )
        if self.min_concurrency > self.concurrency:
            raise ValueError(
                f"min_concurrency ({self.min_concurrency}) must not be larger than concurrency ({self.concurrency})")
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_cap_seconds must not be smaller than backoff_base_seconds")
        if self.dedup_days < self.retention_days:
            raise ValueError("dedup_days must not be shorter than retention_days")
        return self


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class ServiceConfig(_Section):
    """A service a member offers: where the gateway delivers it (a member that pulls gives no path)."""

    path: str | None = Field(None, pattern=r"^/[\x21-\x7e]*$")
    ordered: bool = Field(False, description="deliver one message at a time per X-Ordering-Key")
    timeout_seconds: float | None = Field(None, gt=0)
    # The canonical document (a type of gateway.domain, in its JSON form) that members relay to
    # this service: the disclosure policy checks each relayed message as this document for
    # (this member's role, the purpose). A service without one takes no relayed messages.
    document: str | None = None

    @field_validator("document")
    @classmethod
    def _known_document(cls, document: str | None) -> str | None:
        if document is not None and document not in DOCUMENT_TYPES:
            raise ValueError(f"unknown document type {document!r} (known: {', '.join(sorted(DOCUMENT_TYPES))})")
        return document


class Grant(_Section):
    """Permission to call one service (``member/service``) for the listed purposes."""

    service: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*$")
    purposes: list[Purpose] = Field(min_length=1)


RecipientRole = Literal[
    "penal", "interior", "health", "social", "employment_centre", "court", "clinic", "probation",
    "health_authority", "operations", "oversight", "akimat_social", "adaptation_centre", "ngo",
    "person", "representative",
]


class CertificateConfig(_Section):
    """A member's certificate for XML signatures (PEM X.509), accepted within its own validity
    narrowed by ``not_before`` and ``not_after``. In members.toml a bare path says just ``path``."""

    path: Path
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None

    @model_validator(mode="after")
    def _window(self) -> CertificateConfig:
        if self.not_before and self.not_after and self.not_before >= self.not_after:
            raise ValueError("not_before must be earlier than not_after")
        return self


class RateLimit(_Section):
    """A token bucket: ``per_second`` requests on average, bursts of up to ``burst``."""

    per_second: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)


class MemberConfig(_Section):
    name: str
    # What kind of body the member is: the disclosure policy decides by (role, purpose).
    role: RecipientRole
    endpoint: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # How messages for the member's services reach it: "push", the gateway delivers them to
    # endpoint + the service's path; "pull", the member has no endpoint of its own and fetches
    # them with AsyncChannel getMessages, confirming each with sendDeliveryNotification.
    delivery: Literal["push", "pull"] = "push"
    roles: list[Literal["operator", "oversight"]] = []
    services: dict[Name, ServiceConfig] = {}
    may_call: list[Grant] = []
    # The certificates that verify the member's XML signatures, relative to the config folder;
    # two while its key is rotated. Unsigned SOAP from the member is refused when required.
    certificates: list[CertificateConfig] = []
    # Unsigned SOAP is refused from a member with pinned certificates unless this says false
    # (a development setting: `gateway config check` warns about it).
    require_signature: bool | None = None
    # The one algorithm the member signs with (the certificates must hold its kind of key);
    # any other is refused. Unset: any algorithm whose key a pinned certificate holds.
    signature_algorithm: SignatureAlgorithmName | None = None
    # JSON signed both ways (detached JWS in X-JWS-Signature): what the member relays is
    # verified with one of jws_keys (key id -> PEM public key, relative to the config
    # folder; two while a key is rotated), and what the gateway delivers to it is signed
    # with [jws] signing_key.
    sign_json: bool = False
    # Requests per service (each relay destination, each API route) this member may make;
    # absent: [server] rate_limit, if any.
    rate_limit: RateLimit | None = None
    jws_keys: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")], Path] = {}
    # What to do with this member's messages when the revocation status of its signing
    # certificate cannot be established; unset: [revocation] on_unreachable.
    revocation_unreachable: RevocationMode | None = None

    @model_validator(mode="after")
    def _keys_for_signed_json(self) -> MemberConfig:
        if self.sign_json and not self.jws_keys:
            raise ValueError("sign_json needs jws_keys: the public keys the member's JSON signatures verify with")
        return self

    @field_validator("certificates", mode="before")
    @classmethod
    def _bare_paths(cls, entries: Any) -> Any:
        if isinstance(entries, list):
            return [{"path": entry} if isinstance(entry, str) else entry for entry in entries]
        return entries

    @field_validator("role", mode="before")
    @classmethod
    def _not_an_access_role(cls, role: Any) -> Any:
        if role == "operator":
            raise ValueError('role = "operator" is not a kind of body: access is granted by roles = ["operator"], '
                             'and role names the kind (operations, say)')
        return role

    @model_validator(mode="after")
    def _access_in_roles(self) -> MemberConfig:
        # `roles` is the one place access is granted; `role` only says what kind of body the
        # member is (the disclosure policy's key). An oversight body without the oversight
        # access would pass one check and fail another: refuse it here.
        if self.role == "oversight" and "oversight" not in self.roles:
            raise ValueError('role = "oversight" says what kind of body the member is; access is granted by roles, '
                             'so add roles = ["oversight"] (or give the member another role)')
        return self

    @model_validator(mode="after")
    def _endpoint_for_services(self) -> MemberConfig:
        if self.delivery == "pull":
            if self.endpoint:
                raise ValueError('a member with delivery = "pull" fetches its messages and has no endpoint: '
                                 'remove endpoint, or set delivery = "push"')
            with_path = sorted(name for name, service in self.services.items() if service.path is not None)
            if with_path:
                raise ValueError(f'a member with delivery = "pull" is delivered nothing, so its services have no path '
                                 f'(remove path from: {", ".join(with_path)})')
            return self
        if self.services and not self.endpoint:
            raise ValueError('a member that offers services needs an endpoint (or delivery = "pull" to fetch '
                             'its messages over AsyncChannel getMessages)')
        without_path = sorted(name for name, service in self.services.items() if service.path is None)
        if without_path:
            raise ValueError(f"each service of a member the gateway delivers to needs a path "
                             f"(missing for: {', '.join(without_path)})")
        return self

    @model_validator(mode="after")
    def _certificates_for_signatures(self) -> MemberConfig:
        if self.require_signature and not self.certificates:
            raise ValueError("require_signature needs at least one certificate to verify the member's signatures with")
        return self

    @property
    def signature_required(self) -> bool:
        """Unsigned SOAP from this member is refused: the default wherever certificates are pinned."""
        return bool(self.certificates) if self.require_signature is None else self.require_signature


class Route(_Section):
    """Where a workflow sends one kind of notice: a member and one of its services."""

    member: Name
    service: Name


class PretrialConfig(_Section):
    interior: Name = "interior"
    penal: Name = "penal"
    health: Name = "health"
    social: Name = "social"
    court: Route = Route(member="court", service="pretrial-reports")
    source_timeout_seconds: float = Field(5.0, gt=0)
    source_attempts: int = Field(2, ge=1, le=10, description="tries per source within one gathering round")
    regather_interval_seconds: float = Field(60.0, gt=0, description="how soon a missing section is asked for again")
    max_due_days: int = Field(365, ge=1, le=3650, description="how far ahead a report's due date may be")


class ReleaseConfig(_Section):
    interior: Name = "interior"
    health: Name = "health"
    clinic: Route = Route(member="clinic", service="continuity-of-care")
    employment: Route = Route(member="employment", service="release-notices")
    social: Route = Route(member="social", service="referrals")
    probation: Route = Route(member="probation", service="release-notices")
    escalation: Route = Route(member="health-authority", service="escalations")
    hold_days_after_release: int = Field(90, ge=1, description="how long the attachment is held after release")
    acknowledge_within_seconds: float = Field(3 * 86_400.0, gt=0, description="the clinic's deadline")
    attachment_check_seconds: float = Field(86_400.0, gt=0, description="how often РПН is asked about the new attachment")
    attachment_watch_days: int = Field(60, ge=1, description="after release, how long to wait for the new attachment")
    retry_seconds: float = Field(60.0, gt=0, description="how soon a step is retried when a source is down")


class PlansConfig(_Section):
    """Where re-socialisation plans go, each version as it changes (docs/workflows.md)."""

    probation: Route = Route(member="probation", service="plans")
    """Post-release probation: the plan in full, assessment included."""
    partners: tuple[Route, ...] = ()
    """The adaptation-stage partners (akimat social services, adaptation centres, NGOs): what the
    disclosure policy gives their roles, the needs and the planned measures."""


class WorkflowsConfig(_Section):
    concurrency: int = Field(32, ge=1, le=1000, description="workflow steps running at once")
    timer_lease_seconds: float = Field(120.0, gt=0)
    poll_interval_seconds: float = Field(1.0, gt=0)
    pretrial: PretrialConfig = PretrialConfig()
    release: ReleaseConfig = ReleaseConfig()
    plans: PlansConfig | None = None
    """Re-socialisation plans taken in and routed; None leaves the plans services closed."""


class AuditConfig(_Section):
    """Keys of the audit log. Relative paths are relative to the configuration folder.

    Missing key files are generated (mode 0600) when the gateway starts; ``gateway audit``
    commands only read them.
    """

    signing_key: Path = Path("var/keys/audit-tree-head.pem")
    # Public keys of earlier signing keys: tree heads they signed still verify after rotation.
    retired_public_keys: list[Path] = []
    subject_key_secret: Path = Path("var/keys/audit-subject.key")
    tree_head_interval_seconds: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _separate_files(self) -> AuditConfig:
        if self.signing_key == self.subject_key_secret:
            raise ValueError("signing_key and subject_key_secret must be different files")
        return self


class IndicatorsConfig(_Section):
    """The Strategy's target indicators (docs/indicators.md). Relative paths are relative to the
    configuration folder; a missing secret is generated (mode 0600) when the gateway starts."""

    pseudonym_key_secret: Path = Path("var/keys/indicator-pseudonym.key")
    """The HMAC key of the indicator events' pseudonyms: never the audit subject key, so neither
    set of keyed hashes can be joined with the other without both secrets."""
    cache_seconds: int = Field(3600, ge=0, le=86_400, description="Cache-Control max-age of the published indicators")


class ConsoleConfig(_Section):
    """The console's sessions and sign-in throttling (docs/console.md), by the gateway's clock."""

    idle_seconds: float = Field(15 * 60.0, ge=60, le=86_400, description="a session ends after this long without a request")
    absolute_seconds: float = Field(8 * 3600.0, ge=60, le=7 * 86_400, description="a session ends this long after sign-in")
    throttle_window_seconds: float = Field(15 * 60.0, ge=1, le=86_400,
                                           description="the window failed sign-ins are counted over")
    throttle_per_account: int = Field(5, ge=1, le=1000, description="failed sign-ins of one account that block it")
    throttle_per_address: int = Field(20, ge=1, le=100_000, description="failed sign-ins from one address that block it")
    dashboard_refresh_seconds: int = Field(5, ge=1, le=3600, description="how often the dashboard's table refreshes")

    @model_validator(mode="after")
    def _idle_within_absolute(self) -> ConsoleConfig:
        if self.idle_seconds > self.absolute_seconds:
            raise ValueError("console.idle_seconds must not exceed console.absolute_seconds")
        return self


class TlsConfig(_Section):
    """The listener's TLS in ``identity = "mtls"`` mode, and the gateway's client certificate for
    https member endpoints. Relative paths are relative to the configuration folder; the
    defaults are where ``gateway pki init`` puts a development PKI."""

    ca_certificate: Path = Path("var/pki/ca.pem")
    """Client certificates must be issued by this CA; member servers too."""
    crl: Path = Path("var/pki/crl.pem")
    """Revoked certificates; re-read by the listener when the file changes."""
    certificate: Path = Path("var/pki/members/gateway.pem")
    private_key: Path = Path("var/pki/members/gateway.key")


class RevocationConfig(_Section):
    """Revocation of the certificates that verify members' XML and JSON signatures
    (gateway.security.revocation; docs/security.md, "Revocation"). Relative paths are relative
    to the configuration folder."""

    issuers: list[Path] = []
    """CA certificates (PEM) that issue members' signing certificates. A pinned certificate
    none of them issued is trusted as pinned, with no one to ask about it."""
    crls: list[Path] = []
    """CRLs (PEM or DER) of those CAs; re-read when the file changes, used until nextUpdate."""
    ocsp: bool = True
    """Ask the OCSP responder a certificate names (its AIA extension)."""
    on_unreachable: RevocationMode = "hard-fail"
    """Without a current answer (responder down, CRL past nextUpdate): refuse the message
    (hard-fail) or accept it with a warning and a metric (soft-fail). Per member:
    members.ID.revocation_unreachable."""
    timeout_seconds: float = Field(3.0, gt=0, le=30)
    max_response_bytes: int = Field(65_536, ge=1024, le=1_048_576)
    cache_seconds: float = Field(300.0, gt=0, le=86_400, description="how long an OCSP answer without nextUpdate is used")
    retry_seconds: float = Field(30.0, gt=0, le=3600, description="how soon an unreachable responder is asked again")


class JwsConfig(_Section):
    """The gateway's key for signing JSON delivered to members with ``sign_json``."""

    # None: no member signs JSON. A PEM private key, EC P-256 (ES256) or RSA (PS256).
    signing_key: Path | None = None
    key_id: str = Field("gateway-1", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # The longest a signature may be valid (exp - iat): a captured one expires soon.
    max_lifetime_seconds: float = Field(300.0, gt=0, le=3600)


class SigningConfig(_Section):
    """The gateway's key for the XML signatures on the SOAP it sends, and its certificate.

    Relative paths are relative to the configuration folder. Missing files are generated when
    the gateway starts: the key (mode 0600) and a self-signed certificate, for development.
    """

    key: Path = Path("var/keys/gateway-signing.pem")
    certificate: Path = Path("var/keys/gateway-signing.cert.pem")
    algorithm: SignatureAlgorithmName = "rsa-sha256"

    @model_validator(mode="after")
    def _separate_files(self) -> SigningConfig:
        if self.key == self.certificate:
            raise ValueError("key and certificate must be different files")
        return self


class LegalBasisEscalation(_Section):
    """More fields, allowed only when the request cites one of ``legal_bases``."""

    legal_bases: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    allow: list[str] = Field(min_length=1)


class DisclosureRule(_Section):
    """The field paths of one document type that one (role, purpose) may receive."""

    allow: list[str] = Field(min_length=1)
    with_legal_basis: LegalBasisEscalation | None = None


# [policy.ROLE.PURPOSE.DocumentType]; anything not listed is denied.
DisclosurePolicyConfig = dict[RecipientRole, dict[Purpose, dict[str, DisclosureRule]]]


class GatewayConfig(_Section):
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    logging: LoggingConfig = LoggingConfig()
    # Absent: the gateway is a relay only. Present: the pre-trial report and release
    # workflows run, and every member and service they name must exist.
    workflows: WorkflowsConfig | None = None
    members: dict[Name, MemberConfig] = {}
    audit: AuditConfig = AuditConfig()
    indicators: IndicatorsConfig = IndicatorsConfig()
    console: ConsoleConfig = ConsoleConfig()
    signing: SigningConfig = SigningConfig()
    tls: TlsConfig = TlsConfig()
    jws: JwsConfig = JwsConfig()
    revocation: RevocationConfig = RevocationConfig()
    policy: DisclosurePolicyConfig = {}
    # Where relative paths (the SQLite file) are resolved: the config folder.
    base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _pseudonyms_under_their_own_key(self) -> GatewayConfig:
        if self.indicators.pseudonym_key_secret in (self.audit.subject_key_secret, self.audit.signing_key):
            raise ValueError("indicators.pseudonym_key_secret must be a file of its own, not one of the audit keys")
        return self

    @field_validator("policy")
    @classmethod
    def _policy_names_real_fields(cls, policy: DisclosurePolicyConfig) -> DisclosurePolicyConfig:
        problems = policy_problems(policy)
        if problems:
            raise ValidationError.from_exception_data(
                "policy",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("policy", "{problem}", {"problem": message}), loc=location, input=None
                    )
                    for location, message in problems
                ],
            )
        return policy

    @model_validator(mode="after")
    def _grants_name_real_services(self) -> GatewayConfig:
        problems = []
        for member_id, member in self.members.items():
            for index, grant in enumerate(member.may_call):
                target, service = grant.service.split("/", 1)
                offered = self.members.get(target)
                if offered is None:
                    problems.append(
                        f"members.{member_id}.may_call[{index}].service: no member {target!r} "
                        f"(members are: {', '.join(sorted(self.members))})"
                    )
                elif service not in offered.services:
                    problems.append(
                        f"members.{member_id}.may_call[{index}].service: member {target!r} offers no "
                        f"service {service!r} (it offers: {', '.join(sorted(offered.services)) or 'none'})"
                    )
                else:
                    problems += self._grant_policy_problems(member_id, index, grant, offered)
        if self.workflows is not None:
            problems += self._workflow_problems(self.workflows)
        signing_json = sorted(member_id for member_id, member in self.members.items() if member.sign_json)
        if signing_json and self.jws.signing_key is None:
            problems.append(f"jws.signing_key: members {', '.join(signing_json)} sign JSON (sign_json), "
                            "so the gateway needs a key to sign what it delivers to them")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _grant_policy_problems(self, member_id: str, index: int, grant: Grant, offered: MemberConfig) -> list[str]:
        # A grant the disclosure policy could never let through is a configuration mistake:
        # say so at start, not with a refusal for every message.
        where = f"members.{member_id}.may_call[{index}]"
        document = offered.services[grant.service.split("/", 1)[1]].document
        if document is None:
            return [f"{where}.service: {grant.service} declares no document, so nothing relayed to it can "
                    "pass the disclosure policy: set the service's document (a canonical type)"]
        return [f"{where}.purposes: no rule [policy.{offered.role}.{purpose}.{document}] lets a {document} "
                f"relayed to {grant.service} reach it for {purpose}"
                for purpose in grant.purposes if document not in self.policy.get(offered.role, {}).get(purpose, {})]

    def _workflow_problems(self, workflows: WorkflowsConfig) -> list[str]:
        problems = []
        for section in (workflows.pretrial, workflows.release):
            prefix = f"workflows.{'pretrial' if section is workflows.pretrial else 'release'}"
            for key, value in section:
                if isinstance(value, Route):
                    member = self.members.get(value.member)
                    if member is None:
                        problems.append(f"{prefix}.{key}.member: no member {value.member!r}")
                    elif value.service not in member.services:
                        problems.append(f"{prefix}.{key}.service: member {value.member!r} offers no service {value.service!r}")
                elif isinstance(value, str) and key in ("interior", "penal", "health", "social") \
                        and value not in self.members:
                    problems.append(f"{prefix}.{key}: no member {value!r}")
        return problems

    def warnings(self) -> list[str]:
        """What is allowed but should not be in production."""
        found = [f"members.{member_id}.require_signature = false: unsigned SOAP from {member_id!r} is accepted "
                 "(a development setting; production agencies sign)"
                 for member_id, member in self.members.items() if member.require_signature is False]
        soft = sorted(member_id for member_id, member in self.members.items()
                      if (member.revocation_unreachable or self.revocation.on_unreachable) == "soft-fail")
        if self.revocation.issuers and soft:
            found.append(f"revocation: signatures of {', '.join(soft)} are accepted when their certificate's "
                         "status cannot be established (soft-fail): a revoked key is then accepted while its CA "
                         "cannot be reached")
        if self.server.identity == "header":
            found.append("server.identity = \"header\": callers are trusted by X-Member-Id (development on loopback "
                         "only; use \"mtls\" in production)")
        return found

    def grant(self, caller: str, recipient: str, service: str) -> Grant | None:
        member = self.members.get(caller)
        if member is None:
            return None
        wanted = f"{recipient}/{service}"
        return next((grant for grant in member.may_call if grant.service == wanted), None)


def default_config_dir() -> Path:
    """``$GATEWAY_CONFIG`` if set, else the ``config/`` shipped with the gateway."""
    configured = os.environ.get("GATEWAY_CONFIG")
    return Path(configured) if configured else resource_dir("config")


def load_config(directory: Path | None = None, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, merge and validate the configuration folder. Raises ``ConfigError``."""
    directory = Path(directory) if directory is not None else default_config_dir()
    environ = os.environ if environ is None else environ
    if not directory.is_dir():
        raise ConfigError(f"{directory}: the configuration folder does not exist")
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for filename in FILES:
        path = directory / filename
        if not path.exists():
            continue
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        for key, value in document.items():
            if key in merged:
                raise ConfigError(f"{path}: [{key}] is already set in {origin[key]}")
            merged[key] = value
            origin[key] = str(path)
    for variable, value in environ.items():
        if variable.startswith(ENV_PREFIX):
            _override(merged, origin, variable, value)
    merged["base_dir"] = directory.resolve()
    try:
        return GatewayConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, directory)) from None


def _override(merged: dict[str, Any], origin: dict[str, str], variable: str, value: str) -> None:
    path = variable[len(ENV_PREFIX):].lower().split("__")
    if len(path) < 2 or not all(path):
        raise ConfigError(f"environment {variable}: name a key as {ENV_PREFIX}SECTION__KEY")
    node = merged
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"environment {variable}: {part!r} is not a section")
    node[path[-1]] = _env_value(value)
    origin[".".join(path)] = f"environment {variable}"
    origin.setdefault(path[0], f"environment {variable}")


def _env_value(text: str) -> Any:
    """Environment values are TOML scalars when they parse as one, else strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _describe(exc: ValidationError, origin: Mapping[str, str], directory: Path) -> str:
    lines = [f"invalid configuration in {directory}:"]
    for error in exc.errors():
        location = error["loc"]
        where = next(
            (origin[key] for key in (".".join(map(str, location[:n])) for n in (2, 1)) if key in origin),
            str(directory / FILES[0]),
        )
        key = ".".join(str(part) for part in location) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against docs/configuration.md)"
        lines.append(f"  {where}: {key}: {message}")
    return "\n".join(lines)
