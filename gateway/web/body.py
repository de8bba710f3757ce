"""Reading request bodies strictly: size, media type, and JSON that means one thing.

Python's ``json`` accepts things a gateway must not pass on: duplicate keys
(two parsers downstream may pick different values), ``NaN``/``Infinity`` and
numbers that overflow to infinity (not JSON, RFC 8259 §6), integers longer
than Python converts (``sys.get_int_max_str_digits``, 4,300 digits: ``int()``
would raise ``ValueError``), and arbitrary nesting. Each is refused with a
message that says where and what.
"""

from __future__ import annotations

import json
import math
import sys
import zlib
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest, InvalidJSON, PayloadTooLarge, UnsupportedMediaType

SUPPORTED_ENCODINGS = ("gzip", "deflate", "identity")


class UnreadableBody(BadRequest):
    slug, title = "unreadable-body", "The body cannot be decoded"


def require_json_media_type(request: web.Request) -> str:
    """The request's media type if it is JSON (``application/json`` or ``*+json``)."""
    media_type = request.content_type
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (Content-Type was {media_type or 'missing'!r})"
        )
    charset = request.charset
    if charset and charset.lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"JSON must be UTF-8 (charset was {charset!r})")
    return media_type


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, refusing early (by Content-Length) or as soon as it passes ``max_bytes``.

    A ``Content-Encoding`` other than gzip, deflate or identity is a 415 listing those. When the
    server leaves bodies as sent (the gateway's listener: aiohttp would answer an encoding it
    cannot decode, br or zstd, with a plain-text 400 of its own before any handler ran), the body
    is inflated here in bounded steps, so ``max_bytes`` counts inflated bytes and a decompression
    bomb is a 413 like any other large body.
    """
    encoding = _content_encoding(request)
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body has {request.content_length} bytes; the limit is {max_bytes}")
    # aiohttp sets total_compressed_bytes when it inflated the body itself.
    inflate = None
    if encoding != "identity" and request.content.total_compressed_bytes is None:
        inflate = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        pieces = [chunk] if inflate is None else _inflated(inflate, chunk, max_bytes - size)
        for piece in pieces:
            size += len(piece)
            if size > max_bytes:
                raise PayloadTooLarge(f"the body is larger than the limit of {max_bytes} bytes")
            chunks.append(piece)
    if inflate is not None and not inflate.eof:
        raise UnreadableBody(f"the body ends before its {encoding} stream does: send it whole, as declared")
    return b"".join(chunks)


def _content_encoding(request: web.Request) -> str:
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    if encoding not in SUPPORTED_ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:20]!r} is not supported; send the body as one of: "
            f"{', '.join(SUPPORTED_ENCODINGS)}", supported_encodings=list(SUPPORTED_ENCODINGS))
    return encoding


def _inflated(inflate, chunk: bytes, room: int) -> list[bytes]:
    """Inflate ``chunk`` in steps of at most ``room + 1`` bytes, stopping once past ``room``."""
    pieces, data = [], chunk
    try:
        while data and not inflate.eof:
            piece = inflate.decompress(data, max(room, 0) + 1)
            pieces.append(piece)
            room -= len(piece)
            if room < 0:
                break
            data = inflate.unconsumed_tail
    except zlib.error:
        raise UnreadableBody("the body cannot be decoded as its Content-Encoding says; send it as declared") from None
    return pieces


def parse_json(body: bytes, max_depth: int) -> Any:
    if not body:
        raise InvalidJSON("the body is empty: send a JSON value")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"the body is not valid UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise InvalidJSON("remove the byte-order mark at the start of the body")
    try:
        value = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise InvalidJSON(f"the JSON is nested deeper than {max_depth} levels") from None
    # Nesting needs an opening bracket per level: a body with no more of them than the limit
    # (the usual case, counted at C speed) cannot be too deep, and is not walked.
    if text.count("{") + text.count("[") <= max_depth:
        return value
    depth = _depth(value)
    if depth > max_depth:
        raise InvalidJSON(f"the JSON is nested {depth} levels deep; the limit is {max_depth}")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise InvalidJSON(f"the key {duplicate!r} appears twice in one object")
    return result


def _no_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number: send a finite number or null")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidJSON(f"the number {text[:40]} is too large to represent")
    return value


# Python's own limit on converting digits to an int (0 would mean none; keep a bound anyway).
_MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise InvalidJSON(f"an integer has {digits} digits; the limit is {_MAX_INT_DIGITS}")
    return int(text)


def _depth(value: Any) -> int:
    """Nesting depth of containers, computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest
