"""The gateway's OpenAPI 3.1 document, generated from the API models.

The generated document is also checked in as ``schemas/openapi/gateway.json``;
a test fails when the two drift (regenerate with ``gateway openapi``).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.entrypoints.http.schemas import (
    AcknowledgementRecorded,
    DeadLetter,
    DeadLetterPage,
    Health,
    MessageStatus,
    OutcomeRecorded,
    PersonCopies,
    PersonCopyView,
    PlanRecorded,
    PlanVersions,
    Problem,
    RelayAccepted,
    ReleaseAccepted,
    ReleaseCasePage,
    ReleaseCaseView,
    ReplayRequest,
    ReplayResult,
    ReportAccepted,
    ReportStatus,
)
from gateway.domain import ReoffenceSignal
from gateway.entrypoints.http.workflows import ReleaseNoticeEnvelope
from gateway.services.indicators import IndicatorReport
from gateway.services.outcomes import OutcomeReport, ReferralRegistration
from gateway.services.person_copies import HandOver
from gateway.services.plans import PlanSubmission
from gateway.security.jws import SIGNATURE_HEADER
from gateway.config import PURPOSES
from gateway.web.query import SEQUENCE_MAX
from gateway.workflows import pretrial, release
from gateway.workflows.pretrial import PretrialReportRequest
from gateway.workflows.release import ClinicAcknowledgement

_REF = "#/components/schemas/{model}"
_PROBLEM = "application/problem+json"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _problems(*statuses: tuple[int, str]) -> dict[str, Any]:
    return {
        str(status): {"description": text, "content": {_PROBLEM: {"schema": _ref(Problem)}}}
        for status, text in statuses
    }


_MEMBER = {"name": "X-Member-Id", "in": "header", "required": False,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:@/+=-]{1,128}$"},
           "description": "The calling member in `header` identity mode (loopback development). In `mtls` mode the "
                          "member is the client certificate's; if sent, this must match it"}
_JWS = {"name": SIGNATURE_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
        "description": "Detached JWS (header..signature) over the body bytes; required from members with "
                       "`sign_json` (ES256 or PS256; kid, iat, exp, jti = X-Message-Id, aud = gateway)"}


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:@/+=-]{1,128}$"}, "description": description}


def _purpose(*purposes: str, description: str | None = None) -> dict[str, Any]:
    """X-Purpose, required, as the values the route accepts: one for a workflow's route."""
    return {"name": "X-Purpose", "in": "header", "required": True, "schema": {"type": "string", "enum": list(purposes)},
            "description": description or f"Why the request is made: {', '.join(purposes)}"}


_SEQUENCE = {"type": "integer", "minimum": 1, "maximum": SEQUENCE_MAX}
# What gateway.web.query.token accepts: an id, or empty (absent).
_ID_QUERY = {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{0,128}$"}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


@functools.cache
def openapi_document() -> dict[str, Any]:
    models = [RelayAccepted, MessageStatus, DeadLetter, DeadLetterPage, ReplayRequest, ReplayResult, Problem, Health,
              ReportAccepted, ReportStatus, ReleaseAccepted, ReleaseCaseView, ReleaseCasePage, AcknowledgementRecorded,
              OutcomeRecorded, PlanRecorded, PlanVersions, PersonCopyView, PersonCopies, IndicatorReport]
    inputs = [PretrialReportRequest, ReleaseNoticeEnvelope, ClinicAcknowledgement, ReferralRegistration,
              OutcomeReport, ReoffenceSignal, PlanSubmission, HandOver]
    _, schemas = models_json_schema([(m, "serialization") for m in models] + [(m, "validation") for m in inputs],
                                    ref_template=_REF)
    denied = _problems((401, "The caller is not identified"), (403, "The caller may not do this"))
    # In mtls identity mode a client certificate of no member is refused on every route.
    stranger = _problems((401, "mtls identity: the client certificate is not a member's"))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reentry-gateway",
            "version": "1",
            "description": "Interagency data-exchange gateway: store-and-forward relay, pre-trial reports, "
            "continuity of care. Errors are RFC 9457 problem details.",
        },
        "paths": {
            "/api/v1/relay/{recipient}/{service}": {
                "post": {
                    "operationId": "relay",
                    "summary": "Relay a JSON message to a member's service (store and forward)",
                    "description": "Answers 202 only after the message is durably stored. Resending the same "
                    "X-Message-Id returns the original answer and stores nothing new. The body is the canonical "
                    "document the service takes (its `document` in members.toml), under the disclosure policy for "
                    "the recipient's role and the purpose: a field the rule does not allow refuses the message "
                    "with 422 disclosure-exceeded, whose `fields` name the paths to remove.",
                    "parameters": [
                        _path("recipient", "The receiving member's id"),
                        _path("service", "The service of the receiving member"),
                        _MEMBER,
                        _purpose(*PURPOSES, description="Why the message is sent; must be one granted to you for "
                                 "this service (members.toml may_call)"),
                        _header("X-Message-Id", "The sender's id for this message: the idempotency key"),
                        _header("X-Correlation-Id", "Ties this message to a business process"),
                        _header("X-Ordering-Key", "Messages with the same key reach an ordered service in order"),
                        _JWS,
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
                    "responses": {
                        "202": _json(RelayAccepted, "Durably stored; delivery follows"),
                        **_problems(
                            (400, "Malformed JSON, duplicate keys, NaN, too deep, bad header or missing purpose"),
                            (404, "Unknown recipient or service"),
                            (413, "Body over the size limit"),
                            (408, "The body did not arrive within the receive timeout"),
                            (415, "Not application/json"),
                            (422, "X-Message-Id reused for a different message; the document carries fields the "
                                  "disclosure policy does not let the recipient receive (disclosure-exceeded, "
                                  "`fields` names them), or is not a valid document of the service's type"),
                            (503, "The store is unavailable; nothing was accepted, retry later"),
                        ),
                        **denied,
                    },
                }
            },
            "/api/v1/messages/{message_id}": {
                "get": {
                    "operationId": "messageStatus",
                    "summary": "Delivery status of a message you sent",
                    "parameters": [_path("message_id", "The id returned by the relay"), _MEMBER],
                    "responses": {"200": _json(MessageStatus, "Status, attempts and last error"),
                                  **_problems((404, "No such message sent by you")), **denied},
                }
            },
            "/api/v1/messages/{message_id}/evidence": {
                "get": {
                    "operationId": "messageEvidence",
                    "summary": "What the sender signed (sender or recipient): a signed SOAP request byte for byte "
                               "as it arrived, or signed JSON as the compact JWS with the body attached",
                    "parameters": [_path("message_id", "The gateway's message id (X-Message-Id of the delivery)"),
                                   _MEMBER],
                    "responses": {"200": {"description": "The signed document; Repr-Digest is its SHA-256",
                                          "content": {"text/xml": {"schema": {"type": "string"}},
                                                      "application/jose": {"schema": {"type": "string"}}}},
                                  **_problems((404, "No signed message with this id sent by you or to you")),
                                  **denied},
                }
            },
            "/api/v1/messages/{message_id}/evidence/certificate": {
                "get": {
                    "operationId": "messageEvidenceCertificate",
                    "summary": "The certificate that verified the evidence's signature when it arrived",
                    "parameters": [_path("message_id", "The gateway's message id"), _MEMBER],
                    "responses": {"200": {"description": "PEM certificate",
                                          "content": {"application/pem-certificate-chain": {"schema": {"type": "string"}}}},
                                  **_problems((404, "No signed message with this id sent by you or to you")),
                                  **denied},
                }
            },
            "/api/v1/dlq": {
                "get": {
                    "operationId": "listDeadLetters",
                    "summary": "Dead letters, oldest first (operators)",
                    "parameters": [
                        _MEMBER,
                        {"name": "recipient", "in": "query", "schema": _ID_QUERY},
                        {"name": "after", "in": "query",
                         "schema": {"type": "integer", "minimum": 0, "maximum": SEQUENCE_MAX}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    ],
                    "responses": {"200": _json(DeadLetterPage, "A page of dead letters"),
                                  **_problems((400, "Bad paging parameters")), **denied},
                }
            },
            "/api/v1/dlq/{message_id}": {
                "get": {
                    "operationId": "showDeadLetter",
                    "summary": "One dead letter with its attempt history (operators)",
                    "parameters": [_path("message_id", "The message id"), _MEMBER],
                    "responses": {"200": _json(DeadLetter, "The dead letter"),
                                  **_problems((404, "No such dead letter")), **denied},
                }
            },
            "/api/v1/dlq/replay": {
                "post": {
                    "operationId": "replayDeadLetters",
                    "summary": "Queue dead letters again with a fresh attempt budget (operators)",
                    "parameters": [_MEMBER],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(ReplayRequest)}}},
                    "responses": {"200": _json(ReplayResult, "What was replayed"),
                                  **_problems((400, "Nothing named, or a malformed request"),
                                              (413, "Body over the size limit"), (415, "Not application/json")),
                                  **denied},
                }
            },
            **_workflow_paths(denied),
            **_oversight_paths(denied),
            **_outcome_paths(denied),
            "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness",
                                 "responses": {"200": _json(Health, "The process answers"), **stranger}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness: store reachable, workers running",
                                "responses": {"200": _json(Health, "Ready"), "503": _json(Health, "Not ready"),
                                              **stranger}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}},
                                               **stranger}}},
        },
        "components": {"schemas": schemas["$defs"]},
    }


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _workflow_paths(denied: dict[str, Any]) -> dict[str, Any]:
    invalid = _problems((400, "Invalid body, a field out of range (named in detail), missing X-Message-Id or "
                              "X-Purpose"), (415, "Not application/json"))
    return {
        "/api/v1/pretrial-reports": {"post": {
            "operationId": "requestPretrialReport",
            "summary": "Ask for a pre-trial report on a suspect (probation)",
            "description": "Gathers identity, criminal history and the case (interior), custody history (penal), "
            "health (flags only unless a legal basis the policy accepts is cited) and the social situation, "
            "concurrently; delivers signed versions to the court. See docs/workflows.md.",
            "parameters": [_MEMBER, _purpose(pretrial.PURPOSE),
                           _header("X-Message-Id", "The same id again returns the same report", True), _JWS],
            "requestBody": _request_body(PretrialReportRequest),
            "responses": {"202": _json(ReportAccepted, "Stored; gathering has begun"), **invalid, **denied},
        }},
        "/api/v1/pretrial-reports/{report_id}": {"get": {
            "operationId": "pretrialReportStatus",
            "summary": "Status, versions, each section's provenance and the gaps",
            "parameters": [_path("report_id", "The id returned by the request"), _MEMBER],
            "responses": {"200": _json(ReportStatus, "The report's state"),
                          **_problems((404, "No such report requested by you")), **denied},
        }},
        "/api/v1/pretrial-reports/{report_id}/document": {"get": {
            "operationId": "pretrialReportDocument",
            "summary": "The latest version as a page a judge can read",
            "parameters": [_path("report_id", "The report"), _MEMBER,
                           {"name": "lang", "in": "query", "schema": {"enum": ["ru", "kk"], "default": "ru"}}],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                          **_problems((400, "lang is not ru or kk"), (404, "No version assembled yet")), **denied},
        }},
        "/api/v1/release-notices": {"post": {
            "operationId": "notifyRelease",
            "summary": "A planned, changed, cancelled or actual release (penal system); also over SOAP",
            "parameters": [_MEMBER, _purpose("continuity_of_care"),
                           _header("X-Message-Id", "Resending the same id is answered from the store", True), _JWS],
            "requestBody": _request_body(ReleaseNoticeEnvelope),
            "responses": {"202": _json(ReleaseAccepted, "Stored; the release case is open or updated"),
                          **invalid, **denied},
        }},
        "/api/v1/release-cases": {"get": {
            "operationId": "listReleaseCases",
            "summary": "Release cases by state (operators, oversight)",
            "parameters": [_MEMBER, {"name": "state", "in": "query",
                                      "schema": {"type": "string", "enum": [str(s) for s in release.ReleaseState]}},
                           {"name": "after", "in": "query", "schema": _ID_QUERY},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                      "maximum": 500}}],
            "responses": {"200": _json(ReleaseCasePage, "A page of cases"),
                          **_problems((400, "Unknown state or bad limit")), **denied},
        }},
        "/api/v1/release-cases/{case_id}": {"get": {
            "operationId": "releaseCase",
            "summary": "One release case: state, events, notices, acknowledgement, hold, escalations",
            "parameters": [_path("case_id", "The case"), _MEMBER],
            "responses": {"200": _json(ReleaseCaseView, "The case"), **_problems((404, "No such case")), **denied},
        }},
        "/api/v1/continuity-notices/{notice_id}/acknowledgement": {"post": {
            "operationId": "acknowledgeContinuityNotice",
            "summary": "A clinic acknowledges a continuity-of-care notice (its Bundle.identifier.value)",
            "parameters": [_path("notice_id", "Bundle.identifier.value of the notice's Bundle"), _MEMBER, _JWS],
            "requestBody": _request_body(ClinicAcknowledgement),
            "responses": {"200": _json(AcknowledgementRecorded, "Recorded"),
                          **_problems((404, "No such notice sent to this clinic")), **invalid, **denied},
        }},
    }


def _oversight_paths(denied: dict[str, Any]) -> dict[str, Any]:
    json_object = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "/api/v1/oversight/subjects/{iin}/disclosures": {"get": {
            "operationId": "subjectDisclosures",
            "summary": "Every disclosure about one person: who, when, which fields, why (oversight role)",
            "parameters": [{"name": "iin", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9]{12}$", "format": "iin"},
                            "description": "The person's IIN: 12 digits whose last is the check digit "
                                           "(format iin; validated, and the look-up is itself audited)"}, _MEMBER],
            "responses": {"200": {"description": "The audit entries", **json_object},
                          **_problems((400, "Not a valid IIN")), **denied},
        }},
        "/api/v1/oversight/tree-heads": {"get": {
            "operationId": "treeHeads", "summary": "Signed tree heads of the audit log (RFC 9162)",
            "parameters": [_MEMBER, {"name": "after", "in": "query",
                                     "schema": {"type": "integer", "minimum": 0, "maximum": SEQUENCE_MAX}},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": {"description": "Tree heads", **json_object},
                          **_problems((400, "Bad paging parameters")), **denied},
        }},
        "/api/v1/oversight/tree-heads/latest": {"get": {
            "operationId": "latestTreeHead", "summary": "The latest signed tree head and the verification keys",
            "parameters": [_MEMBER], "responses": {"200": {"description": "The head", **json_object},
                                                   **_problems((404, "No tree head has been signed yet")), **denied},
        }},
        "/api/v1/oversight/proofs/inclusion": {"get": {
            "operationId": "inclusionProof", "summary": "An RFC 9162 inclusion proof of one entry",
            "parameters": [_MEMBER, {"name": "seq", "in": "query", "required": True, "schema": _SEQUENCE},
                           {"name": "tree_size", "in": "query", "required": True, "schema": _SEQUENCE}],
            "responses": {"200": {"description": "The proof", **json_object}, **_problems((400, "Bad sizes")),
                          **denied},
        }},
        "/api/v1/oversight/proofs/consistency": {"get": {
            "operationId": "consistencyProof", "summary": "An RFC 9162 consistency proof between two sizes",
            "parameters": [_MEMBER, {"name": "old", "in": "query", "required": True, "schema": _SEQUENCE},
                           {"name": "new", "in": "query", "required": True, "schema": _SEQUENCE}],
            "responses": {"200": {"description": "The proof", **json_object}, **_problems((400, "Bad sizes")),
                          **denied},
        }},
    }


def _outcome_paths(denied: dict[str, Any]) -> dict[str, Any]:
    unprocessable = _problems(
        (400, "Malformed JSON"), (415, "Not application/json"),
        (422, "Well-formed but not recordable: an unknown category or state, a date in the future or before the "
              "release, an unknown region or provider"))
    # Years 2000-2200, as gateway.domain.outcomes.Quarter takes them.
    quarter = {"type": "string", "pattern": "^(20[0-9]{2}|21[0-9]{2}|2200)-?[Qq][1-4]$"}
    return {
        "/api/v1/referrals": {"post": {
            "operationId": "registerReferral",
            "summary": "Record a referral a probation office made, for the indicators (probation)",
            "description": "The referral reaches its provider through the relay; this records it as sent, "
            "pseudonymously. Registering the same referral again is answered 200 with duplicate true.",
            "parameters": [_MEMBER, _JWS],
            "requestBody": _request_body(ReferralRegistration),
            "responses": {"201": _json(OutcomeRecorded, "Recorded as sent"),
                          "200": _json(OutcomeRecorded, "Recorded before: nothing changed"),
                          **_problems((409, "The referral id is registered for another referral")),
                          **unprocessable, **denied},
        }},
        "/api/v1/referrals/{referral_id}/outcomes": {"post": {
            "operationId": "reportReferralOutcome",
            "summary": "Where a referral sent to you stands: accepted, provided, refused_by_person, not_reached, "
                       "not_eligible (the provider)",
            "description": "Idempotent by referral and outcome: the same outcome with the same date again changes "
            "nothing. An outcome the referral's history contradicts (provided before accepted, a second final "
            "outcome, a date before the previous state) is 409 and nothing changes. The referral id of an "
            "employment notice is its X-Message-Id; of a social referral, its referral_id. See docs/workflows.md.",
            "parameters": [_path("referral_id", "The referral"), _MEMBER, _JWS],
            "requestBody": _request_body(OutcomeReport),
            "responses": {"200": _json(OutcomeRecorded, "Recorded, or recorded before (duplicate)"),
                          **_problems((404, "No referral with this id was sent to you"),
                                      (409, "The outcome contradicts the referral's history")),
                          **unprocessable, **denied},
        }},
        "/api/v1/plans": {"post": {
            "operationId": "submitPlan",
            "summary": "A version of a person's re-socialisation plan and RNR assessment (probation, penal system)",
            "description": "Stored with its version number and sent, through the disclosure policy and the audit "
            "log, to post-release probation (in full) and to the adaptation partners (needs and measures only). "
            "Measures whose responsible body is a member become referrals. The same version with the same "
            "content again is 200 with duplicate true; a lower version than the stored one, or a stored version "
            "number with other content, is 409; an X-Message-Id reused for other content is 422. See "
            "docs/workflows.md.",
            "parameters": [_MEMBER, _JWS, _header("X-Message-Id", "Optional: resending the same id with the same "
                                                                  "version is answered as before")],
            "requestBody": _request_body(PlanSubmission),
            "responses": {"201": _json(PlanRecorded, "Stored and sent"),
                          "200": _json(PlanRecorded, "Stored before: nothing sent again"),
                          **_problems((404, "No release of this person is known"),
                                      (409, "A stale version, or the version number is used for other content"),
                                      (400, "Malformed JSON"), (415, "Not application/json"),
                                      (422, "Not recordable: an unknown category, band or instrument, a score out "
                                            "of range, a date in the future or before the release, a message id "
                                            "reused, the plan of another person")),
                          **denied},
        }},
        "/api/v1/pretrial-reports/{report_id}/person-copies": {
            "post": {
                "operationId": "recordPersonCopy",
                "summary": "Record that the person (or their representative) was handed a copy of the report (probation)",
                "description": "The copy is the latest version as the disclosure policy lets the person or the "
                "representative see it (purpose person_copy: health as flags only); the disclosure is written to "
                "the audit log with the record. The same hand-over twice is 409.",
                "parameters": [_path("report_id", "The report"), _MEMBER, _JWS],
                "requestBody": _request_body(HandOver),
                "responses": {"201": _json(PersonCopyView, "Recorded, and the disclosure audited"),
                              **_problems((404, "No such report requested by you, or none assembled yet"),
                                          (409, "This hand-over is recorded already"),
                                          (422, "A date in the future or before the request, an unknown language "
                                                "or form, a representative without name and basis")),
                              **denied},
            },
            "get": {
                "operationId": "personCopies",
                "summary": "The hand-overs of a report's copy recorded (probation)",
                "parameters": [_path("report_id", "The report"), _MEMBER],
                "responses": {"200": _json(PersonCopies, "The hand-overs, oldest first"),
                              **_problems((404, "No such report requested by you")), **denied},
            },
        },
        "/api/v1/pretrial-reports/{report_id}/person-copies/{copy_id}/document": {"get": {
            "operationId": "personCopyDocument",
            "summary": "The copy as its recipient may see it, for a representative who asks again (probation)",
            "description": "HTML in the hand-over's language; filtered by the disclosure policy and audited each time.",
            "parameters": [_path("report_id", "The report"), _path("copy_id", "The hand-over"), _MEMBER],
            "responses": {"200": {"description": "The report", "content": {"text/html": {"schema": {"type": "string"}}}},
                          **_problems((404, "No such report or hand-over")), **denied},
        }},
        "/api/v1/plans/{plan_id}": {"get": {
            "operationId": "planVersions",
            "summary": "The stored versions of a plan: who sent each, when, where it went (probation)",
            "parameters": [_path("plan_id", "The plan"), _MEMBER],
            "responses": {"200": _json(PlanVersions, "The versions, oldest first"),
                          **_problems((404, "No such plan")), **denied},
        }},
        "/api/v1/reoffence-signals": {"post": {
            "operationId": "signalReoffence",
            "summary": "A new pre-trial case or conviction of a person released in the last 36 months (interior)",
            "description": "Stored only as a pseudonymous event for indicator 1; relayed to nobody.",
            "parameters": [_MEMBER, _JWS],
            "requestBody": _request_body(ReoffenceSignal),
            "responses": {"200": _json(OutcomeRecorded, "Recorded, or recorded before (duplicate)"),
                          **_problems((404, "No release of this person is recorded: not watched")),
                          **unprocessable, **denied},
        }},
        "/api/v1/indicators": {"get": {
            "operationId": "indicators",
            "summary": "The Strategy's target indicators by release cohort or quarter and region (open data)",
            "description": "No credentials. Aggregates only: a count of 1-4 persons is <5, and cells that would "
            "let one be worked out from the national totals are x. Each indicator comes with its definition and "
            "the date computed. Re-offence rates appear for a cohort only when its window has closed. Cached: "
            "ETag and Cache-Control; If-None-Match gives 304. See docs/indicators.md.",
            "security": [],
            "parameters": [
                {"name": "from", "in": "query", "schema": quarter, "description": "First quarter, e.g. 2026Q1"},
                {"name": "to", "in": "query", "schema": quarter, "description": "Last quarter"},
                {"name": "region", "in": "query", "schema": {"type": "string", "pattern": "^([0-9]{2}|KZ)$"},
                 "description": "КАТО region code, or KZ for the national figures"},
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"], "default": "json"}},
                {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "The indicators",
                        "headers": {"ETag": {"schema": {"type": "string"}},
                                    "Cache-Control": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": _ref(IndicatorReport)},
                                    "text/csv": {"schema": {"type": "string"}}}},
                "304": {"description": "Not modified since the ETag sent"},
                **_problems((400, "An unknown region, a quarter not begun yet, from after to, or an unknown "
                                  "parameter; the detail lists what is valid"),
                            (401, "mtls identity: the client certificate is not a member's")),
            },
        }},
    }
