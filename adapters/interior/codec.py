"""The interior ministry's native XML (schemas/soap/interior.xsd) to and from the canonical model.

Pure functions on lxml elements, as in ``adapters.penal.codec``. Convictions travel with their
``expunged`` flag: the interior ministry holds them all, and withholding expunged ones is the
gateway's job (Criminal Code art. 79), not the codec's. The building blocks for persons,
convictions and cases are public because the court's pre-trial report uses these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree

from gateway.domain import (
    IIN,
    Address,
    Conviction,
    CriminalCodeArticle,
    Person,
    PretrialCase,
    Sentence,
)

__all__ = [
    "INTERIOR",
    "decode_person",
    "decode_person_query",
    "decode_pretrial_case",
    "decode_pretrial_case_request",
    "decode_registered_residence",
    "decode_special_records",
    "encode_person",
    "encode_person_query",
    "encode_pretrial_case",
    "encode_pretrial_case_request",
    "encode_registered_residence",
    "encode_special_records",
    "read_conviction",
    "read_person",
    "read_pretrial_case",
    "write_conviction",
    "write_person",
    "write_pretrial_case",
]

INTERIOR = "urn:reentry-gateway:interior:v1"
_NSMAP = {"int": INTERIOR}


def _q(local: str) -> str:
    return f"{{{INTERIOR}}}{local}"


PERSON_REQUEST = _q("personRequest")
PERSON_RESPONSE = _q("personResponse")
SPECIAL_RECORDS_REQUEST = _q("specialRecordsRequest")
SPECIAL_RECORDS_RESPONSE = _q("specialRecordsResponse")
PRETRIAL_CASE_REQUEST = _q("pretrialCaseRequest")
PRETRIAL_CASE_RESPONSE = _q("pretrialCaseResponse")
RESIDENCE_REQUEST = _q("registeredResidenceRequest")
RESIDENCE_RESPONSE = _q("registeredResidenceResponse")
PERSON_QUERIES = (PERSON_REQUEST, SPECIAL_RECORDS_REQUEST, RESIDENCE_REQUEST)


# ---------------------------------------------------------------- documents


def encode_person_query(tag: str, iin: IIN) -> etree._Element:
    """A request about one person: ``tag`` is one of PERSON_QUERIES."""
    if tag not in PERSON_QUERIES:
        raise ValueError(f"{tag} is not a request about a person")
    root = etree.Element(tag, nsmap=_NSMAP)
    _put(root, "iin", iin)
    return root


def decode_person_query(element: etree._Element) -> IIN:
    if element.tag not in PERSON_QUERIES:
        raise ValueError(f"expected one of {', '.join(PERSON_QUERIES)}, found {element.tag}")
    return IIN(_get(element, "iin"))


def encode_person(person: Person) -> etree._Element:
    root = etree.Element(PERSON_RESPONSE, nsmap=_NSMAP)
    write_person(etree.SubElement(root, _q("person")), person)
    return root


def decode_person(element: etree._Element) -> Person:
    _expect(element, PERSON_RESPONSE)
    return read_person(element.find(_q("person")))


def encode_special_records(iin: IIN, convictions: Sequence[Conviction]) -> etree._Element:
    root = etree.Element(SPECIAL_RECORDS_RESPONSE, nsmap=_NSMAP)
    _put(root, "iin", iin)
    for conviction in convictions:
        write_conviction(etree.SubElement(root, _q("conviction")), conviction)
    return root


def decode_special_records(element: etree._Element) -> tuple[IIN, list[Conviction]]:
    """The IIN the answer is about, and every conviction, expunged ones included."""
    _expect(element, SPECIAL_RECORDS_RESPONSE)
    return IIN(_get(element, "iin")), [read_conviction(node) for node in element.iterfind(_q("conviction"))]


def encode_pretrial_case_request(erdr_number: str) -> etree._Element:
    root = etree.Element(PRETRIAL_CASE_REQUEST, nsmap=_NSMAP)
    _put(root, "erdrNumber", erdr_number)
    return root


def decode_pretrial_case_request(element: etree._Element) -> str:
    _expect(element, PRETRIAL_CASE_REQUEST)
    return _get(element, "erdrNumber")


def encode_pretrial_case(case: PretrialCase) -> etree._Element:
    root = etree.Element(PRETRIAL_CASE_RESPONSE, nsmap=_NSMAP)
    write_pretrial_case(etree.SubElement(root, _q("case")), case)
    return root


def decode_pretrial_case(element: etree._Element) -> PretrialCase:
    _expect(element, PRETRIAL_CASE_RESPONSE)
    return read_pretrial_case(element.find(_q("case")))


def encode_registered_residence(iin: IIN, address: Address | None) -> etree._Element:
    root = etree.Element(RESIDENCE_RESPONSE, nsmap=_NSMAP)
    _put(root, "iin", iin)
    if address is not None:
        address_element = etree.SubElement(root, _q("address"))
        for part in _ADDRESS_PARTS:
            _put(address_element, part, getattr(address, part))
    return root


def decode_registered_residence(element: etree._Element) -> tuple[IIN, Address | None]:
    """The IIN the answer is about, and the registered address, or None when there is none."""
    _expect(element, RESIDENCE_RESPONSE)
    node = element.find(_q("address"))
    address = None if node is None else Address.model_validate({part: _get(node, part) for part in _ADDRESS_PARTS})
    return IIN(_get(element, "iin")), address


# ---------------------------------------------------------------- building blocks

_ADDRESS_PARTS = ("kato", "region", "locality", "street", "house", "flat", "raw")


def write_person(element: etree._Element, person: Person) -> None:
    _put(element, "iin", person.iin)
    _put(element, "surname", person.surname)
    _put(element, "givenName", person.given_name)
    _put(element, "patronymic", person.patronymic)
    _put(element, "birthDate", person.birth_date.isoformat())
    _put(element, "sex", person.sex.value)
    _put(element, "citizenship", person.citizenship)


def read_person(element: etree._Element) -> Person:
    return Person.model_validate(
        {
            "iin": _get(element, "iin"),
            "surname": _get(element, "surname"),
            "given_name": _get(element, "givenName"),
            "patronymic": _get(element, "patronymic"),
            "birth_date": _get(element, "birthDate"),
            "sex": _get(element, "sex"),
            "citizenship": _get(element, "citizenship"),
        }
    )


def _write_article(element: etree._Element, article: CriminalCodeArticle) -> None:
    _put(element, "article", article.article)
    _put(element, "part", _number(article.part))
    _put(element, "paragraph", _number(article.paragraph))


def _read_article(element: etree._Element) -> CriminalCodeArticle:
    return CriminalCodeArticle.model_validate(
        {"article": _get(element, "article"), "part": _get(element, "part"), "paragraph": _get(element, "paragraph")}
    )


def write_conviction(element: etree._Element, conviction: Conviction) -> None:
    for article in conviction.articles:
        _write_article(etree.SubElement(element, _q("article")), article)
    _put(element, "court", conviction.court)
    _put(element, "judgmentDate", conviction.judgment_date.isoformat())
    sentence = etree.SubElement(element, _q("sentence"))
    _put(sentence, "kind", conviction.sentence.kind.value)
    _put(sentence, "termMonths", _number(conviction.sentence.term_months))
    _put(sentence, "suspended", _boolean(conviction.sentence.suspended))
    _put(element, "expunged", _boolean(conviction.expunged))


def read_conviction(element: etree._Element) -> Conviction:
    sentence = element.find(_q("sentence"))
    return Conviction.model_validate(
        {
            "articles": tuple(_read_article(node) for node in element.iterfind(_q("article"))),
            "court": _get(element, "court"),
            "judgment_date": _get(element, "judgmentDate"),
            "sentence": Sentence.model_validate(
                {
                    "kind": _get(sentence, "kind"),
                    "term_months": _get(sentence, "termMonths"),
                    "suspended": _get(sentence, "suspended"),
                }
            ),
            "expunged": _get(element, "expunged"),
        }
    )


def write_pretrial_case(element: etree._Element, case: PretrialCase) -> None:
    _put(element, "erdrNumber", case.erdr_number)
    _put(element, "registrationDate", case.registration_date and case.registration_date.isoformat())
    for article in case.articles:
        _write_article(etree.SubElement(element, _q("article")), article)


def read_pretrial_case(element: etree._Element) -> PretrialCase:
    return PretrialCase.model_validate(
        {
            "erdr_number": _get(element, "erdrNumber"),
            "registration_date": _get(element, "registrationDate"),
            "articles": tuple(_read_article(node) for node in element.iterfind(_q("article"))),
        }
    )


# ---------------------------------------------------------------- text


def _put(parent: etree._Element, local: str, value: str | None) -> None:
    if value is not None:
        etree.SubElement(parent, _q(local)).text = value


def _get(parent: etree._Element, local: str) -> Any:
    node = parent.find(_q(local))
    # The schema's simple types collapse whitespace around dates, numbers and codes.
    return None if node is None else (node.text or "").strip()


def _number(value: int | None) -> str | None:
    return None if value is None else str(value)


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _expect(element: etree._Element, tag: str) -> None:
    if element.tag != tag:
        raise ValueError(f"expected the element {tag}, found {element.tag}")
