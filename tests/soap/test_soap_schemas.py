"""The SOAP contracts: lxml and the independent ``xmlschema`` package agree on every fixture,
the documented examples are valid, and the XSD enumerations are the domain's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from gateway import domain
from gateway.resources import resource_dir
from gateway.soap.contracts import contract
from gateway.soap.envelope import parse_envelope
from gateway.soap.faults import SoapFault, read_fault
from soap.messages import release_notice_request, relay_request

SCHEMAS = resource_dir("schemas") / "soap"
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "soap"
# Which service each documented example belongs to.
EXAMPLE_SERVICES = {
    "relay-": "relay.wsdl",
    "release-notice-": "release-notices.wsdl",
    "custody-history-": "penal.wsdl",
    "special-records-": "interior.wsdl",
    "pretrial-report-": "court.wsdl",
    "court-receipt-": "court.wsdl",
}
ALL_XSDS = ("sync-channel-v10.xsd", "penal.xsd", "interior.xsd", "court.xsd")


@pytest.fixture(scope="module")
def independent():
    """All the XSDs loaded by the xmlschema package, which shares no code with libxml2."""
    return xmlschema.XMLSchema10([str(SCHEMAS / name) for name in ALL_XSDS])


def _lxml_valid(element: etree._Element) -> bool:
    try:
        contract("relay.wsdl", also_validates=("penal.xsd", "interior.xsd", "court.xsd")).validate(element)
    except SoapFault as fault:
        assert fault.error_code == "schema-violation", fault.message
        return False
    return True


def _body(document: bytes) -> etree._Element:
    return parse_envelope(document).body


def _examples() -> list[Path]:
    return sorted(path for path in EXAMPLES.glob("*.xml") if not path.name.startswith("fault-"))


VALID = {path.name: path.read_bytes() for path in _examples()} | {
    "relay request": relay_request(),
    "release notice request": release_notice_request(),
}


def _broken(document: bytes, old: bytes, new: bytes) -> bytes:
    assert old in document
    return document.replace(old, new, 1)


INVALID = {
    "messageId with a space": _broken(relay_request(), b">penal-0001<", b">penal 0001<"),
    "unknown element in requestInfo": _broken(relay_request(), b"</requestInfo>", b"<x>1</x></requestInfo>"),
    "missing serviceId": _broken(relay_request(), b"<serviceId>health/bulk</serviceId>", b""),
    "qualified requestInfo": _broken(relay_request(), b"<requestInfo>", b"<v10:requestInfo>").replace(b"</requestInfo>", b"</v10:requestInfo>"),
    "missing responseData": _broken((EXAMPLES / "relay-response.xml").read_bytes(), b"<data/>", b"").replace(b"<responseData>", b"").replace(b"</responseData>", b""),
    "33 properties": _broken(relay_request(), b"</requestInfo>", b"<properties><key>k</key><value>v</value></properties>" * 32 + b"</requestInfo>"),
    "release type not in the enumeration": _broken(release_notice_request(), b"<pen:releaseType>", b"<pen:releaseType>PARDON"),
    "planned date that is not a date": _broken(release_notice_request(), b"<pen:plannedDate>", b"<pen:plannedDate>soon "),
    "eleven-digit IIN": _broken(release_notice_request(), b"<pen:iin>", b"<pen:iin>x"),
    "messageDate without a time": re.sub(rb"<messageDate>[^<]*<", b"<messageDate>2026-12-04<", relay_request()),
    "KATO code with a letter": _broken(release_notice_request(), b"<pen:kato>", b"<pen:kato>x"),
    "admission date with a time": _broken(
        (EXAMPLES / "custody-history-response.xml").read_bytes(), b"</pen:admissionDate>", b"T10:00:00</pen:admissionDate>"),
    "report without provenance": _broken(
        (EXAMPLES / "pretrial-report-request.xml").read_bytes(), b"<court:provenance>", b"<court:provenanceX>"),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_fixture_is_valid_under_lxml_and_under_xmlschema(independent, name):
    body = _body(VALID[name])
    assert _lxml_valid(body)
    independent.validate(body)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_fixture_is_invalid_under_lxml_and_under_xmlschema(independent, name):
    try:
        body = _body(INVALID[name])
    except SoapFault as fault:  # not even well-formed: both would refuse it
        assert fault.error_code == "invalid-xml"
        return
    assert not _lxml_valid(body)
    assert not independent.is_valid(body)


@pytest.mark.parametrize("path", _examples(), ids=lambda path: path.name)
def test_documented_example_is_valid_for_its_service(path):
    service = next(wsdl for prefix, wsdl in EXAMPLE_SERVICES.items() if path.name.startswith(prefix))
    contract(service).validate(_body(path.read_bytes()))


@pytest.mark.parametrize("name", ["fault-client.xml", "fault-server.xml"])
def test_documented_fault_carries_error_info(independent, name):
    fault = read_fault(_body((EXAMPLES / name).read_bytes()))
    assert fault is not None and fault.error_code and fault.message
    detail = _body((EXAMPLES / name).read_bytes()).find("detail/{http://bip.bee.kz/SyncChannel/v10/Types}SendMessageFault")
    independent.validate(detail)


@pytest.mark.parametrize(
    ("xsd", "simple_type", "enum"),
    [
        ("penal.xsd", "ReleaseEvent", domain.ReleaseEvent),
        ("penal.xsd", "ReleaseType", domain.ReleaseType),
        ("penal.xsd", "CustodyBasis", domain.CustodyBasis),
        ("penal.xsd", "HousingKind", domain.HousingKind),
        ("penal.xsd", "IdentityDocument", domain.IdentityDocument),
        ("penal.xsd", "Education", domain.Education),
        ("interior.xsd", "Sex", domain.Sex),
        ("interior.xsd", "SentenceKind", domain.SentenceKind),
        ("court.xsd", "Programme", domain.Programme),
        ("court.xsd", "DrugSusceptibility", domain.DrugSusceptibility),
        ("court.xsd", "MaritalStatus", domain.MaritalStatus),
        ("court.xsd", "EmploymentStatus", domain.EmploymentStatus),
        ("court.xsd", "RiskBand", domain.RiskBand),
        ("court.xsd", "NeedLevel", domain.NeedLevel),
        ("court.xsd", "ReportSection", domain.ReportSection),
        ("court.xsd", "SourceStatus", domain.SourceStatus),
    ],
)
def test_xsd_enumeration_is_the_domain_enumeration(xsd, simple_type, enum):
    schema = etree.parse(str(SCHEMAS / xsd))
    values = schema.xpath(
        f"//xs:simpleType[@name='{simple_type}']//xs:enumeration/@value", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}
    )
    assert values == [member.value for member in enum]


def test_every_wsdl_loads_in_zeep_from_local_files_only():
    from gateway.soap.client import zeep_client

    for wsdl in sorted(path.name for path in SCHEMAS.glob("*.wsdl")):
        operations = next(iter(zeep_client(wsdl).wsdl.bindings.values()))._operations
        assert {"SendMessage", "sendMessage"} & set(operations), wsdl  # SyncChannel's, AsyncChannel's


def test_a_service_without_iin_elements_checks_no_element_as_an_iin():
    # The relay's own contract types no element as an IIN: other text must not be read as one.
    contract("relay.wsdl").validate(_body(relay_request(text="not an IIN")))
