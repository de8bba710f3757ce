"""One exception hierarchy for everything that can reach a client.

Each error knows its HTTP status and a stable problem type, so the HTTP layer
renders it as RFC 9457 ``application/problem+json`` (and the SOAP layer as a
Fault) without guessing. Messages are written for the person who has to fix the
request: what is wrong and what to do instead. They never carry personal data.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway reports to a caller."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        return f"urn:reentry-gateway:problem:{self.slug}"

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the problem (``Retry-After``, ``Allow``)."""
        return {}

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status < 500

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem object."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(GatewayError):
    status, slug, title = 400, "bad-request", "The request is not valid"


class InvalidJSON(BadRequest):
    slug, title = "invalid-json", "The body is not acceptable JSON"


class Unauthenticated(GatewayError):
    status, slug, title = 401, "unauthenticated", "The caller is not identified"


class Forbidden(GatewayError):
    status, slug, title = 403, "forbidden", "The caller may not do this"


class NotFound(GatewayError):
    status, slug, title = 404, "not-found", "No such resource"


class MethodNotAllowed(GatewayError):
    status, slug, title = 405, "method-not-allowed", "This method is not allowed on this resource"


class Conflict(GatewayError):
    status, slug, title = 409, "conflict", "The request conflicts with the current state"


class PayloadTooLarge(GatewayError):
    status, slug, title = 413, "payload-too-large", "The body is larger than allowed"


class UnsupportedMediaType(GatewayError):
    status, slug, title = 415, "unsupported-media-type", "The content type is not accepted here"


class IdempotencyKeyReused(GatewayError):
    # 422 as the IETF Idempotency-Key draft recommends for a key reused with another payload.
    status, slug, title = 422, "idempotency-key-reused", "The message id was used for a different message"


class InternalError(GatewayError):
    """The gateway's own fault: not the caller's, and not worth retrying as it stands."""

    status, slug, title = 500, "internal-error", "The gateway failed"


class TooManyRequests(GatewayError):
    """The caller used up its rate for this service; it may try again after ``retry_after`` seconds."""

    status, slug, title = 429, "too-many-requests", "Too many requests for this service"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(GatewayError):
    status, slug, title = 503, "unavailable", "The gateway cannot take this request now"


class ConfigError(Exception):
    """The configuration is invalid; the message names the file, the key and the problem."""
