"""The gateway's OpenAPI 3.1 document, generated from the API models.

The generated document is also checked in as ``schemas/openapi/gateway.json``;
a test fails when the two drift (regenerate with ``gateway openapi``).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.http.schemas import DeadLetter, DeadLetterPage, Health, MessageStatus, Problem, RelayAccepted, ReplayRequest, ReplayResult

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


_MEMBER = {"name": "X-Member-Id", "in": "header", "required": True, "schema": {"type": "string"},
           "description": "The calling member (development identity mode; mTLS identifies members in production)"}


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:@/+=-]{1,128}$"}, "description": description}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


@functools.cache
def openapi_document() -> dict[str, Any]:
    models = [RelayAccepted, MessageStatus, DeadLetter, DeadLetterPage, ReplayRequest, ReplayResult, Problem, Health]
    _, schemas = models_json_schema([(m, "serialization") for m in models], ref_template=_REF)
    denied = _problems((401, "The caller is not identified"), (403, "The caller may not do this"))
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
                    "X-Message-Id returns the original answer and stores nothing new.",
                    "parameters": [
                        _path("recipient", "The receiving member's id"),
                        _path("service", "The service of the receiving member"),
                        _MEMBER,
                        _header("X-Purpose", "Why the message is sent; must be granted for this service", True),
                        _header("X-Message-Id", "The sender's id for this message: the idempotency key"),
                        _header("X-Correlation-Id", "Ties this message to a business process"),
                        _header("X-Ordering-Key", "Messages with the same key reach an ordered service in order"),
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
                    "responses": {
                        "202": _json(RelayAccepted, "Durably stored; delivery follows"),
                        **_problems(
                            (400, "Malformed JSON, duplicate keys, NaN, too deep, bad header or missing purpose"),
                            (404, "Unknown recipient or service"),
                            (413, "Body over the size limit"),
                            (415, "Not application/json"),
                            (422, "X-Message-Id reused for a different message"),
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
            "/api/v1/dlq": {
                "get": {
                    "operationId": "listDeadLetters",
                    "summary": "Dead letters, oldest first (operators)",
                    "parameters": [
                        _MEMBER,
                        {"name": "recipient", "in": "query", "schema": {"type": "string"}},
                        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
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
                                  **_problems((400, "Nothing named, or a malformed request")), **denied},
                }
            },
            "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness",
                                 "responses": {"200": _json(Health, "The process answers")}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness: store reachable, workers running",
                                "responses": {"200": _json(Health, "Ready"), "503": _json(Health, "Not ready")}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": schemas["$defs"]},
    }
