"""Signing what the gateway delivers, at each attempt.

One step for every outbound delivery, applied by the transport just before the
request leaves: a WS-Security signature on SOAP the gateway has not signed yet
(relayed envelopes, which are stored unsigned so that a resend can be compared
byte for byte with what was first accepted), and the detached JWS header for
JSON recipients that require one. Signing at each attempt also keeps the
signature's time close to the moment of sending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.security.xmldsig import SECURITY, Signer
from gateway.security.xmlparse import parse_untrusted
from gateway.soap.envelope import serialise
from gateway.store import Message

_SOAP_MEDIA_TYPE = "text/xml"
_SOAP_HEADER = "{http://schemas.xmlsoap.org/soap/envelope/}Header"


class OutboundSeal:
    def __init__(self, soap_signer: Signer | None, json_headers: Callable[[Message], Mapping[str, str]]) -> None:
        self._soap_signer = soap_signer
        self._json_headers = json_headers

    def __call__(self, message: Message) -> tuple[bytes, Mapping[str, str]]:
        """The body and extra headers to send ``message`` with."""
        body = message.body
        if self._soap_signer is not None and message.content_type.startswith(_SOAP_MEDIA_TYPE):
            envelope = parse_untrusted(body)
            header = envelope.find(_SOAP_HEADER)
            # A codec that signed its own request (with its message date) is left as it is:
            # a second signature would be refused by a verifier that expects exactly one.
            if header is None or header.find(SECURITY) is None:
                body = serialise(self._soap_signer.sign(envelope))
        return body, self._json_headers(message)
