"""The oversight API under /api/v1/oversight: who saw what about whom, and the proofs.

For members with the oversight role — the prosecutor's office, the data-protection
authority, or a member granted ``roles = ["oversight"]`` — as Estonia's data tracker
shows citizens who looked at their data. A person's entries come with their leaf hashes,
so an auditor can ask for an inclusion proof of each and check it against a signed tree
head with any RFC 9162 verifier. Looking a person up is itself recorded in the audit log.
Hashes and signatures are lower-case hex.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from gateway.domain import InvalidIIN, validate_iin
from gateway.entrypoints.http.context import services_of
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.web.identity import member_with_role
from gateway.web.query import SEQUENCE_MAX, whole_number
from gateway.security.audit import AuditTampered
from gateway.services import oversight as oversight_service
from gateway.security.audit_keys import fingerprint
from gateway.store import TreeHead

PREFIX = "/api/v1/oversight"
_OVERSIGHT = "oversight"
_PAGE_MAX = 1000


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/subjects/{iin}/disclosures", subject_disclosures)
    app.router.add_get(PREFIX + "/tree-heads", tree_heads)
    app.router.add_get(PREFIX + "/tree-heads/latest", latest_tree_head)
    app.router.add_get(PREFIX + "/proofs/inclusion", inclusion_proof)
    app.router.add_get(PREFIX + "/proofs/consistency", consistency_proof)


class _AuditDamaged(GatewayError):
    slug, title = "audit-log-damaged", "The audit log does not match its signed tree heads"


def _gateway(request: web.Request):
    return services_of(request)


def _require_oversight(request: web.Request) -> str:
    return member_with_role(request, _gateway(request).config.members, _OVERSIGHT)


def _head(head: TreeHead) -> dict:
    return {
        "size": head.size,
        "root": head.root.hex(),
        "timestamp_ms": round(head.signed_at * 1000),
        "signed_at": dt.datetime.fromtimestamp(head.signed_at, dt.UTC).isoformat(timespec="milliseconds"),
        "signature": head.signature.hex(),
    }


async def subject_disclosures(request: web.Request) -> web.Response:
    """Every audit entry about one person, oldest first."""
    caller = _require_oversight(request)
    try:
        iin = validate_iin(request.match_info["iin"])
    except InvalidIIN as exc:
        raise BadRequest(str(exc)) from None
    gateway = _gateway(request)
    entries = await oversight_service.subject_disclosures(
        gateway.audit, iin, viewer=caller, viewer_role=gateway.config.members[caller].role,
        gateway_member=gateway.config.server.member_id, reason="oversight request",
        correlation_id=request.headers.get("X-Correlation-Id"),
    )
    return web.json_response({"subject": iin, "entries": [entry.as_json() for entry in entries]})


async def tree_heads(request: web.Request) -> web.Response:
    """Signed tree heads in size order, paged with ?after=&limit=, and the keys that check them."""
    _require_oversight(request)
    after = whole_number(request, "after", minimum=0, maximum=SEQUENCE_MAX, default=0)
    limit = whole_number(request, "limit", minimum=1, maximum=_PAGE_MAX, default=100)
    gateway = _gateway(request)
    heads = await gateway.store.tree_heads(after, limit)
    return web.json_response({
        "keys": _keys(gateway),
        "heads": [_head(head) for head in heads],
        "next_after": heads[-1].size if len(heads) == limit else None,
    })


async def latest_tree_head(request: web.Request) -> web.Response:
    """The newest signed tree head: what an auditor keeps to check the log never shrinks."""
    _require_oversight(request)
    gateway = _gateway(request)
    head = await gateway.audit.latest_tree_head()
    if head is None:
        raise NotFound("no tree head has been signed yet")
    return web.json_response({"keys": _keys(gateway), "head": _head(head)})


def _keys(gateway) -> list[dict]:
    return [
        {
            "algorithm": "Ed25519",
            "public_key": key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
            "fingerprint": fingerprint(key),
        }
        for key in gateway.audit.keys.verification_keys
    ]


async def inclusion_proof(request: web.Request) -> web.Response:
    """?seq=&tree_size=: the audit path of entry ``seq`` (leaf seq - 1) in that tree."""
    _require_oversight(request)
    seq = whole_number(request, "seq", minimum=1, maximum=SEQUENCE_MAX)
    tree_size = whole_number(request, "tree_size", minimum=1, maximum=SEQUENCE_MAX)
    audit = _gateway(request).audit
    try:
        proof = await audit.inclusion_proof(seq, tree_size)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    except AuditTampered as exc:
        raise _AuditDamaged(str(exc)) from None
    return web.json_response({
        "seq": seq, "leaf_index": seq - 1, "tree_size": tree_size, "proof": [node.hex() for node in proof],
    })


async def consistency_proof(request: web.Request) -> web.Response:
    """?old=&new=: the proof that the log of ``new`` entries extends the log of ``old``."""
    _require_oversight(request)
    old = whole_number(request, "old", minimum=1, maximum=SEQUENCE_MAX)
    new = whole_number(request, "new", minimum=1, maximum=SEQUENCE_MAX)
    audit = _gateway(request).audit
    try:
        proof = await audit.consistency_proof(old, new)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    except AuditTampered as exc:
        raise _AuditDamaged(str(exc)) from None
    return web.json_response({"old_size": old, "new_size": new, "proof": [node.hex() for node in proof]})
