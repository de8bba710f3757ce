"""The penal system's native XML (schemas/soap/penal.xsd) to and from the canonical model.

Pure functions on lxml elements: no I/O, no envelope. ``encode_*`` builds a document element,
``decode_*`` reads one that has passed schema validation and returns canonical records;
whatever the schema cannot check (an IIN's check digit, a release date before admission, an
address that says nowhere) is refused by the canonical model with a ``ValueError`` naming the
field, never the value.

The building blocks for organisations, addresses, housing and custody episodes are public
because the court's pre-trial report uses the penal system's types for them.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain import (
    IIN,
    Address,
    CustodyEpisode,
    Housing,
    IdentityDocument,
    Organisation,
    ReleaseEvent,
    ReleaseNotice,
)

__all__ = [
    "PENAL",
    "RELEASE_NOTICE",
    "decode_custody_history",
    "decode_custody_history_request",
    "decode_release_notice",
    "decode_release_notice_receipt",
    "encode_custody_history",
    "encode_custody_history_request",
    "encode_release_notice",
    "encode_release_notice_receipt",
    "read_address",
    "read_custody_episode",
    "read_housing",
    "read_organisation",
    "write_address",
    "write_custody_episode",
    "write_housing",
    "write_organisation",
]

PENAL = "urn:reentry-gateway:penal:v1"
RELEASE_NOTICE = f"{{{PENAL}}}releaseNotice"
RELEASE_NOTICE_RECEIPT = f"{{{PENAL}}}releaseNoticeReceipt"
CUSTODY_HISTORY_REQUEST = f"{{{PENAL}}}custodyHistoryRequest"
CUSTODY_HISTORY_RESPONSE = f"{{{PENAL}}}custodyHistoryResponse"
_NSMAP = {"pen": PENAL}


def _q(local: str) -> str:
    return f"{{{PENAL}}}{local}"


# ---------------------------------------------------------------- documents


def encode_release_notice(event: ReleaseEvent, notice: ReleaseNotice) -> etree._Element:
    root = etree.Element(RELEASE_NOTICE, nsmap=_NSMAP)
    _put(root, "event", event.value)
    _put(root, "iin", notice.iin)
    write_organisation(etree.SubElement(root, _q("facility")), notice.facility)
    _put(root, "releaseType", notice.release_type.value)
    _put(root, "plannedDate", notice.planned_date.isoformat())
    _put(root, "actualDate", notice.actual_date and notice.actual_date.isoformat())
    write_address(etree.SubElement(root, _q("destination")), notice.destination)
    write_housing(etree.SubElement(root, _q("housing")), notice.housing)
    for document in notice.identity_documents:
        _put(root, "identityDocument", document.value)
    _put(root, "education", notice.education and notice.education.value)
    _put(root, "specialty", notice.specialty)
    if notice.probation_office is not None:
        write_organisation(etree.SubElement(root, _q("probationOffice")), notice.probation_office)
    return root


def decode_release_notice(element: etree._Element) -> tuple[ReleaseEvent, ReleaseNotice]:
    _expect(element, RELEASE_NOTICE)
    probation_office = element.find(_q("probationOffice"))
    notice = ReleaseNotice.model_validate(
        {
            "iin": _get(element, "iin"),
            "facility": _organisation_fields(element.find(_q("facility"))),
            "release_type": _get(element, "releaseType"),
            "planned_date": _get(element, "plannedDate"),
            "actual_date": _get(element, "actualDate"),
            "destination": _address_fields(element.find(_q("destination"))),
            "housing": _housing_fields(element.find(_q("housing"))),
            "identity_documents": tuple(IdentityDocument(_strip(node.text)) for node in element.iterfind(_q("identityDocument"))),
            "education": _get(element, "education"),
            "specialty": _get(element, "specialty"),
            "probation_office": None if probation_office is None else _organisation_fields(probation_office),
        }
    )
    return ReleaseEvent(_get(element, "event")), notice


def encode_release_notice_receipt(case_id: str) -> etree._Element:
    root = etree.Element(RELEASE_NOTICE_RECEIPT, nsmap=_NSMAP)
    _put(root, "caseId", case_id)
    return root


def decode_release_notice_receipt(element: etree._Element) -> str:
    _expect(element, RELEASE_NOTICE_RECEIPT)
    return _get(element, "caseId")


def encode_custody_history_request(iin: IIN) -> etree._Element:
    root = etree.Element(CUSTODY_HISTORY_REQUEST, nsmap=_NSMAP)
    _put(root, "iin", iin)
    return root


def decode_custody_history_request(element: etree._Element) -> IIN:
    _expect(element, CUSTODY_HISTORY_REQUEST)
    return IIN(_get(element, "iin"))


def encode_custody_history(iin: IIN, episodes: list[CustodyEpisode] | tuple[CustodyEpisode, ...]) -> etree._Element:
    root = etree.Element(CUSTODY_HISTORY_RESPONSE, nsmap=_NSMAP)
    _put(root, "iin", iin)
    for episode in episodes:
        write_custody_episode(etree.SubElement(root, _q("episode")), episode)
    return root


def decode_custody_history(element: etree._Element) -> tuple[IIN, list[CustodyEpisode]]:
    """The IIN the answer is about, and its episodes in the order sent."""
    _expect(element, CUSTODY_HISTORY_RESPONSE)
    return IIN(_get(element, "iin")), [read_custody_episode(node) for node in element.iterfind(_q("episode"))]


# ---------------------------------------------------------------- building blocks


def write_organisation(element: etree._Element, organisation: Organisation) -> None:
    _put(element, "code", organisation.code)
    _put(element, "name", organisation.name)


def read_organisation(element: etree._Element) -> Organisation:
    return Organisation.model_validate(_organisation_fields(element))


# The *_fields readers give plain values, so that a refusal names the field's whole path
# ("destination: ...") when the enclosing record is validated.
def _organisation_fields(element: etree._Element) -> dict[str, Any]:
    return {"code": _get(element, "code"), "name": _get(element, "name")}


_ADDRESS_PARTS = ("kato", "region", "locality", "street", "house", "flat", "raw")


def write_address(element: etree._Element, address: Address) -> None:
    for part in _ADDRESS_PARTS:
        _put(element, part, getattr(address, part))


def read_address(element: etree._Element) -> Address:
    return Address.model_validate(_address_fields(element))


def _address_fields(element: etree._Element) -> dict[str, Any]:
    return {part: _get(element, part) for part in _ADDRESS_PARTS}


def write_housing(element: etree._Element, housing: Housing) -> None:
    _put(element, "available", _boolean(housing.available))
    _put(element, "kind", housing.kind and housing.kind.value)


def read_housing(element: etree._Element) -> Housing:
    return Housing.model_validate(_housing_fields(element))


def _housing_fields(element: etree._Element) -> dict[str, Any]:
    return {"available": _get(element, "available"), "kind": _get(element, "kind")}


def write_custody_episode(element: etree._Element, episode: CustodyEpisode) -> None:
    write_organisation(etree.SubElement(element, _q("facility")), episode.facility)
    _put(element, "basis", episode.basis.value)
    _put(element, "admissionDate", episode.admission_date.isoformat())
    _put(element, "releaseDate", episode.release_date and episode.release_date.isoformat())
    _put(element, "releaseType", episode.release_type and episode.release_type.value)


def read_custody_episode(element: etree._Element) -> CustodyEpisode:
    return CustodyEpisode.model_validate(
        {
            "facility": _organisation_fields(element.find(_q("facility"))),
            "basis": _get(element, "basis"),
            "admission_date": _get(element, "admissionDate"),
            "release_date": _get(element, "releaseDate"),
            "release_type": _get(element, "releaseType"),
        }
    )


# ---------------------------------------------------------------- text


def _put(parent: etree._Element, local: str, value: str | None) -> None:
    """Add ``<pen:local>value</pen:local>``, or nothing for None (the element is optional)."""
    if value is not None:
        etree.SubElement(parent, _q(local)).text = value


def _get(parent: etree._Element, local: str) -> Any:
    node = parent.find(_q(local))
    return None if node is None else _strip(node.text)


def _strip(text: str | None) -> str:
    # The schema's simple types collapse whitespace around dates, numbers and codes.
    return (text or "").strip()


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _expect(element: etree._Element, tag: str) -> None:
    if element.tag != tag:
        raise ValueError(f"expected the element {tag}, found {element.tag}")
