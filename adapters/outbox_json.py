"""Bodies the outbox stores as JSON: one document per message, compact UTF-8.

``JsonOutboundCodec`` is the ``gateway.workflows.egress.OutboundCodec`` of every member that
takes a JSON document per message (employment centres, probation offices, special social
services): a subclass says how its item becomes the document (``document``). What is left
in each member's ``client`` module — its service name, content type, codec class and body
function — is declaration only, alike from one member to the next by design.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.workflows.egress import Envelope

__all__ = ["JsonOutboundCodec", "json_body"]


def json_body(document: Any) -> bytes:
    """``document`` as compact UTF-8 JSON, letters as they are (Kazakh and Russian included)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class JsonOutboundCodec:
    """Encodes each item as ``json_body(document(item))``; the envelope adds nothing to the body."""

    content_type: str = "application/json"

    @staticmethod
    def document(item: Any) -> Any:
        raise NotImplementedError

    def body(self, item: Any) -> bytes:
        return json_body(self.document(item))

    def encode(self, item: Any, envelope: Envelope) -> bytes:
        return self.body(item)
