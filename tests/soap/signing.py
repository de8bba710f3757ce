"""Keys, certificates, gateways and signed requests for the XML-signature tests.

Keys are generated once per test run (RSA key generation takes tens of milliseconds each).
``resign`` rewrites a signature's algorithms and signs it again with a given key, to make the
signatures an honest signer never makes (SHA-1, HMAC, an XSLT transform) but that would
otherwise verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from gateway.entrypoints.http.server import build
from gateway.config import load_config
from gateway.security.keys import new_private_key, self_signed_certificate
from gateway.security.xmldsig import DS, SOAP11, WSSE, WSU, PinnedCertificate, PrivateKey, Verifier, WsSecuritySigner
from gateway.soap.envelope import parse_envelope
from gateway.soap.faults import SoapFault, read_fault
from soap.messages import relay_request
from support import write_config

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
BODY = f"{{{SOAP11}}}Body"
HEADER = f"{{{SOAP11}}}Header"
WSU_ID = f"{{{WSU}}}Id"
NS = {"ds": DS, "soap": SOAP11, "wsu": WSU}


@dataclass(frozen=True)
class Credentials:
    key: PrivateKey
    certificate: x509.Certificate
    algorithm: str

    @property
    def signer(self) -> WsSecuritySigner:
        return WsSecuritySigner(self.key, self.certificate, algorithm=self.algorithm)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def pinned(self, **window) -> PinnedCertificate:
        return PinnedCertificate.of(self.certificate, f"{self.certificate.subject.rfc4514_string()}.pem", **window)


@functools.cache
def credentials(name: str, *, algorithm: str = "rsa-sha256", starts_in_days: int = -1, days: int = 365) -> Credentials:
    """A key and a self-signed certificate valid ``days`` from ``starts_in_days`` from today."""
    key = new_private_key(algorithm)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=starts_in_days)
    return Credentials(key, self_signed_certificate(key, name, not_before=start, days=days), algorithm)


def penal() -> Credentials:
    return credentials("penal")


def penal_next() -> Credentials:
    """The penal system's next key, pinned beside the current one while it is rotated."""
    return credentials("penal-next")


def expired() -> Credentials:
    return credentials("penal-expired", starts_in_days=-400, days=30)


def not_yet_valid() -> Credentials:
    return credentials("penal-future", starts_in_days=30)


def stranger() -> Credentials:
    return credentials("stranger")


def verifier(*pinned: Credentials, sender: str = "penal", required: bool = True) -> Verifier:
    return Verifier(sender, [c.pinned() for c in pinned], required=required)


def signed(request: bytes, by: Credentials) -> bytes:
    return serialise(by.signer.sign(etree.fromstring(request)))


def serialise(document: etree._Element) -> bytes:
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def resign(
    document: etree._Element,
    by: Credentials,
    *,
    signature_method: str,
    digest_method: str = "http://www.w3.org/2001/04/xmlenc#sha256",
    transforms: Sequence[str] = (EXC_C14N,),
    hmac_secret: bytes | None = None,
) -> None:
    """Rewrite the signature's algorithms and transforms, then sign again with ``by``'s key (or
    with ``hmac_secret`` for an HMAC method), so that only the algorithm check can refuse it."""
    signature = document.find(".//ds:Signature", NS)
    signed_info = signature.find("ds:SignedInfo", NS)
    signed_info.find("ds:SignatureMethod", NS).set("Algorithm", signature_method)
    reference = signed_info.find("ds:Reference", NS)
    transforms_element = reference.find("ds:Transforms", NS)
    transforms_element.clear()
    for algorithm in transforms:
        transform = etree.SubElement(transforms_element, f"{{{DS}}}Transform", Algorithm=algorithm)
        if algorithm == XSLT:
            stylesheet = etree.SubElement(transform, "{http://www.w3.org/1999/XSL/Transform}stylesheet", version="1.0")
            etree.SubElement(stylesheet, "{http://www.w3.org/1999/XSL/Transform}template", match="/")
    reference.find("ds:DigestMethod", NS).set("Algorithm", digest_method)
    body = document.find(BODY)
    digest = hashlib.new(_hash_name(digest_method), etree.tostring(body, method="c14n", exclusive=True)).digest()
    reference.find("ds:DigestValue", NS).text = base64.b64encode(digest).decode()
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True)
    hash_name = _hash_name(signature_method)
    if hmac_secret is not None:
        value = hmac.new(hmac_secret, canonical, hash_name).digest()
    else:
        value = by.key.sign(canonical, padding.PKCS1v15(), getattr(hashes, hash_name.upper())())
    signature.find("ds:SignatureValue", NS).text = base64.b64encode(value).decode()


def _hash_name(uri: str) -> str:
    return uri.rpartition("#")[2].rpartition("-")[2]


def fault_of(status: int, body: bytes) -> SoapFault:
    """The fault in an answer, which comes with HTTP 500 as every SOAP 1.1 fault does."""
    fault = read_fault(parse_envelope(body).body)
    assert fault is not None, f"HTTP {status} without a fault"
    assert status == 500, f"a fault with HTTP {status}"
    return fault


# ----------------------------------------------------------------- a gateway that verifies


def write_pins(directory: Path, pins: Sequence[Credentials]) -> list[str]:
    """Write each certificate to ``directory/keys`` and return the paths as members.toml names them."""
    (directory / "keys").mkdir(parents=True, exist_ok=True)
    names = []
    for index, credential in enumerate(pins):
        name = f"keys/penal-{index}.pem"
        (directory / name).write_bytes(credential.pem())
        names.append(name)
    return names


@pytest.fixture
async def start_signed_gateway(tmp_path):
    """Start a gateway whose member ``penal`` pins ``pins`` and must sign (unless not
    ``required``), with ``algorithm`` as its signature_algorithm. ``entries`` lists the certificates as members.toml does, ``{0}``, ``{1}`` …
    standing for the files of ``pins``; ``options`` go to ``build``. The relay's recipient
    ``health`` answers 200."""
    async def accept(request: web.Request) -> web.Response:
        return web.Response(status=200)

    recipient = web.Application()
    recipient.router.add_post("/{path:.*}", accept)
    runner = web.AppRunner(recipient, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recipient_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    started = []

    async def start(
        pins: Sequence[Credentials] = (), *, entries: Sequence[str] | None = None, required: bool = True,
        algorithm: str | None = None, **options
    ):
        directory = write_config(tmp_path / f"gw{len(started)}", receiver_url=recipient_url)
        names = write_pins(directory, pins)
        listed = [f'"{name}"' for name in names] if entries is None else [entry.format(*names) for entry in entries]
        environ = {
            "GATEWAY__MEMBERS__PENAL__CERTIFICATES": "[" + ", ".join(listed) + "]",
            "GATEWAY__MEMBERS__PENAL__REQUIRE_SIGNATURE": "true" if required else "false",
        }
        if algorithm is not None:
            environ["GATEWAY__MEMBERS__PENAL__SIGNATURE_ALGORITHM"] = f'"{algorithm}"'
        gateway = build(load_config(directory, environ=environ), **options)
        await gateway.start(port=0)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()
    await runner.cleanup()


# ----------------------------------------------------------------- the independent verifier

XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(
    XMLSEC1 is None, reason="xmlsec1 is not installed (Debian package xmlsec1): the independent verifier is missing"
)


def xmlsec1_verifies(document: bytes, certificate: bytes, directory: Path) -> subprocess.CompletedProcess:
    """Run ``xmlsec1 --verify`` pinned to ``certificate``, the Body's Id resolved as an ID.

    ``--id-attr:Id`` names the attribute by its local name and the element by its namespace
    and name: the Body's ``wsu:Id`` is ``Id`` on ``{soap}Body``.
    """
    (directory / "signed.xml").write_bytes(document)
    (directory / "certificate.pem").write_bytes(certificate)
    return subprocess.run(
        [XMLSEC1, "--verify", "--pubkey-cert-pem", str(directory / "certificate.pem"),
         "--id-attr:Id", f"{SOAP11}:Body", str(directory / "signed.xml")],
        capture_output=True, text=True, timeout=30,
    )


async def refused(gateway, http, request: bytes, headers: dict[str, str], *, signer: Credentials | None = None) -> SoapFault:
    """Send ``request`` to the relay; it must be refused with a Client fault, nothing may
    be stored, and the gateway must still accept a genuine request signed by ``signer``
    (default: the penal system's current key) afterwards."""
    async with http.post(f"{gateway.url}/soap/relay", data=request, headers=headers) as response:
        fault = fault_of(response.status, await response.read())
    assert fault.is_client_fault, fault.error_code
    assert await gateway.store.list_messages(limit=10) == []
    async with http.post(f"{gateway.url}/soap/relay", data=genuine(signer or penal()), headers=headers) as response:
        assert response.status == 200, await response.read()
    return fault


def genuine(signer: Credentials) -> bytes:
    return signed(relay_request(message_id="penal-genuine"), signer)


def penal_gost(bits: int = 256) -> Credentials:
    """The penal system's GOST 34.10-2015 key of ``bits`` and its self-signed certificate."""
    return credentials(f"penal-gost-{bits}", algorithm=f"gost2015-{bits}")


def timestamped(
    request: bytes,
    by: Credentials,
    *,
    created: dt.datetime,
    expires: dt.datetime | None,
    references: Sequence[str] = ("#id-body", "#TS-1"),
    inclusive_prefixes: Sequence[str] = (),
) -> etree._Element:
    """``request`` signed as WSS4J and WCF sign by default: a ``wsu:Timestamp`` (``TS-1``) in the
    Security header and one signature whose references cover the Body (``id-body``) and the
    Timestamp, exclusive C14N, RSA-SHA256. Built here with lxml and ``cryptography`` alone, not
    with the gateway's signer. ``inclusive_prefixes``: an InclusiveNamespaces PrefixList on the
    canonicalisation and on each transform, as WSS4J writes it."""
    document = etree.fromstring(request)
    header = document.find(HEADER)
    if header is None:
        header = etree.Element(HEADER)
        document.insert(0, header)
    security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
    timestamp = etree.SubElement(security, f"{{{WSU}}}Timestamp")
    timestamp.set(WSU_ID, "TS-1")
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if expires is not None:
        etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = document.find(BODY)
    body.set(WSU_ID, "id-body")
    signature = etree.SubElement(security, f"{{{DS}}}Signature", nsmap={"ds": DS})
    signed_info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    def exclusive(parent: etree._Element, tag: str) -> None:
        method = etree.SubElement(parent, tag, Algorithm=EXC_C14N)
        if inclusive_prefixes:
            etree.SubElement(method, f"{{{EXC_C14N}}}InclusiveNamespaces", nsmap={"ec": EXC_C14N},
                             PrefixList=" ".join(inclusive_prefixes))

    prefixes = list(inclusive_prefixes) or None
    exclusive(signed_info, f"{{{DS}}}CanonicalizationMethod")
    etree.SubElement(signed_info, f"{{{DS}}}SignatureMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    for uri in references:
        target = document.xpath("//*[@wsu:Id=$id]", namespaces={"wsu": WSU}, id=uri[1:])[0]
        reference = etree.SubElement(signed_info, f"{{{DS}}}Reference", URI=uri)
        exclusive(etree.SubElement(reference, f"{{{DS}}}Transforms"), f"{{{DS}}}Transform")
        etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
        digest = hashlib.sha256(
            etree.tostring(target, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)).digest()
        etree.SubElement(reference, f"{{{DS}}}DigestValue").text = base64.b64encode(digest).decode()
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)
    value = by.key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(signature, f"{{{DS}}}SignatureValue").text = base64.b64encode(value).decode()
    return document
