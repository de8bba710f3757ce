"""The SOAP contracts as files: each service's WSDL with the XSDs it imports.

A ``Contract`` is read once at start-up: its operations (SOAPAction, request and response
elements) come from the WSDL, and its validator is one compiled ``lxml.etree.XMLSchema`` over
every XSD the WSDL imports. Validation reports the first problem with the path of the element,
what the schema expected and what it found — never the offending value, which may be personal
data. The XSD pattern for an IIN cannot check its check digit or birth date, so every element
the schemas type as an IIN is checked with ``validate_iin`` after validation.

The contract also publishes itself: ``GET /soap/{service}?wsdl`` serves the WSDL with each
schemaLocation pointing back at ``?xsd=NAME`` on the same URL, so a client that fetches from
the endpoint gets everything from it.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.domain import InvalidIIN, validate_iin
from gateway.resources import resource_dir
from gateway.soap.faults import SoapFault

__all__ = ["Contract", "Operation", "contract"]

_XS = "http://www.w3.org/2001/XMLSchema"
_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
_IIN_TYPE = "Iin"
_MESSAGE_LIMIT = 600
_SUB_ERRORS = 10


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    soap_action: str
    request: str
    """The Clark name of the request's Body element, ``{namespace}SendMessage``."""
    response: str


class Contract:
    """One service's WSDL and XSDs: what it accepts, how to validate it, how to publish it."""

    def __init__(self, wsdl: Path, *, also_validates: tuple[str, ...] = (), deprecated: tuple[str, ...] = ()) -> None:
        self.wsdl = wsdl
        self.name = wsdl.stem
        self._folder = wsdl.parent
        self._wsdl_document = _read_trusted(wsdl)
        imported = _schema_locations(self._wsdl_document)
        self.schemas = _closure(self._folder, [*imported, *also_validates])
        """Every XSD file the service uses, by file name."""
        self.published = _closure(self._folder, imported)
        self.operations = _operations(self._wsdl_document)
        self.deprecated = deprecated
        """Clark names of request elements of the deprecated envelope, accepted as the one operation."""
        self._validator = etree.XMLSchema(_driver(self._folder, self.schemas))
        self._iin_elements = tuple(sorted(_iin_elements(self._folder, self.schemas)))
        self._documents = _documents_by_type(self._folder, self.schemas)

    def document_for_type(self, type_name: str) -> str | None:
        """The Clark name of the global element whose type is ``type_name`` (a Clark name), if
        exactly one of the service's schemas declares one: ``data`` typed with xsi:type (as
        JAXB and zeep write an xs:anyType) is read as that document."""
        return self._documents.get(type_name)

    def operation_for(self, body: etree._Element) -> Operation | None:
        operation = next((op for op in self.operations.values() if op.request == body.tag), None)
        if operation is None and body.tag in self.deprecated and len(self.operations) == 1:
            operation = next(iter(self.operations.values()))
        return operation

    @property
    def deprecated_soap_action(self) -> str:
        """The SOAPAction of the deprecated envelope's WSDL, accepted with its requests."""
        return f"urn:reentry-gateway:{self.name}:SendMessage"

    def validate(self, element: etree._Element) -> None:
        """Raise a Client SoapFault naming the first problem, if ``element`` breaks the contract."""
        if not self._validator.validate(element):
            errors = list(self._validator.error_log)
            first = errors[0]
            more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
            raise SoapFault.client(
                "schema-violation",
                _without_values(first.message)[:_MESSAGE_LIMIT] + more,
                error_data=_where(first.path),
                sub_errors=[
                    SoapFault.client("schema-violation", _without_values(error.message)[:_MESSAGE_LIMIT],
                                     error_data=_where(error.path))
                    for error in errors[1:_SUB_ERRORS + 1]
                ],
            )
        # iter() without tags would walk every element: only look when the schemas have IINs.
        for node in element.iter(*self._iin_elements) if self._iin_elements else ():
            try:
                validate_iin(node.text or "")
            except InvalidIIN as error:
                raise SoapFault.client(
                    "invalid-iin", f"{etree.QName(node).localname}: {error}", error_data=_where(_path(node, element))
                ) from None

    def publish_wsdl(self, service_url: str) -> bytes:
        """The WSDL as served from ``service_url``: its address and schema locations point there."""
        document = copy.deepcopy(self._wsdl_document)
        for address in document.iter(f"{{{_WSDL_SOAP}}}address"):
            address.set("location", service_url)
        _point_imports_at(document, service_url)
        return etree.tostring(document, xml_declaration=True, encoding="UTF-8")

    def publish_xsd(self, name: str, service_url: str) -> bytes | None:
        """One of the service's XSDs as served from ``service_url``, or None if it has no such XSD."""
        if name not in self.published:
            return None
        document = _read_trusted(self._folder / name)
        _point_imports_at(document, service_url)
        return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


@functools.cache
def contract(wsdl_name: str, *, also_validates: tuple[str, ...] = (), deprecated: tuple[str, ...] = ()) -> Contract:
    """The contract of ``schemas/soap/<wsdl_name>``, compiled once per process.

    ``also_validates`` adds XSDs that the WSDL does not import but whose documents the service
    may carry in its ``data`` wildcard (processContents="lax"): a known document is then
    validated too. ``deprecated`` names the request elements of an earlier envelope still
    accepted (their XSDs go in ``also_validates``).
    """
    return Contract(resource_dir("schemas") / "soap" / wsdl_name, also_validates=also_validates, deprecated=deprecated)


def _read_trusted(path: Path) -> etree._Element:
    # Our own files, shipped with the gateway: no DTD, no network, like everything else.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False)
    return etree.parse(str(path), parser).getroot()


def _schema_locations(document: etree._Element) -> list[str]:
    return [
        node.get("schemaLocation")
        for node in document.iter(f"{{{_XS}}}import", f"{{{_XS}}}include")
        if node.get("schemaLocation")
    ]


def _closure(folder: Path, names: list[str]) -> tuple[str, ...]:
    """The named XSDs and everything they import, in the order first met."""
    seen: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        if "/" in name or not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: imported schema is missing")
        seen.append(name)
        pending.extend(_schema_locations(_read_trusted(folder / name)))
    return tuple(seen)


def _driver(folder: Path, names: tuple[str, ...]) -> etree._Element:
    """One schema document importing every XSD of the service, for one compiled validator."""
    driver = etree.Element(f"{{{_XS}}}schema", nsmap={"xs": _XS})
    for name in names:
        target = _read_trusted(folder / name).get("targetNamespace")
        etree.SubElement(driver, f"{{{_XS}}}import", namespace=target, schemaLocation=(folder / name).resolve().as_uri())
    return driver


def _iin_elements(folder: Path, names: tuple[str, ...]) -> set[str]:
    """Clark names of the elements typed as an IIN (``*:Iin``) in the service's XSDs.

    All our schemas declare their elements locally with elementFormDefault="qualified", so an
    element's name is in its schema's target namespace.
    """
    found = set()
    for name in names:
        schema = _read_trusted(folder / name)
        target = schema.get("targetNamespace")
        for element in schema.iter(f"{{{_XS}}}element"):
            type_name = element.get("type")
            if type_name and element.get("name") and type_name.rpartition(":")[2] == _IIN_TYPE:
                found.add(f"{{{target}}}{element.get('name')}")
    return found


def _documents_by_type(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Type Clark name -> the one global element of that type, over the service's XSDs."""
    found: dict[str, list[str]] = {}
    for name in names:
        schema = _read_trusted(folder / name)
        target = schema.get("targetNamespace")
        for element in schema.iterfind(f"{{{_XS}}}element"):
            type_name = element.get("type")
            if type_name and element.get("name"):
                prefix, _, local = type_name.rpartition(":")
                namespace = element.nsmap.get(prefix or None)
                found.setdefault(f"{{{namespace}}}{local}", []).append(f"{{{target}}}{element.get('name')}")
    return {type_name: elements[0] for type_name, elements in found.items() if len(elements) == 1}


def _operations(document: etree._Element) -> dict[str, Operation]:
    """Operation name -> Operation, from the WSDL's messages, port type and SOAP binding."""
    prefixes = document.nsmap

    def resolve(qname: str) -> str:
        prefix, _, local = qname.rpartition(":")
        return f"{{{prefixes[prefix or None]}}}{local}"

    elements = {
        message.get("name"): resolve(message.find(f"{{{_WSDL}}}part").get("element"))
        for message in document.iterfind(f"{{{_WSDL}}}message")
    }
    actions = {
        op.get("name"): op.find(f"{{{_WSDL_SOAP}}}operation").get("soapAction", "")
        for op in document.iterfind(f"{{{_WSDL}}}binding/{{{_WSDL}}}operation")
    }
    operations = {}
    for op in document.iterfind(f"{{{_WSDL}}}portType/{{{_WSDL}}}operation"):
        name = op.get("name")
        request = elements[op.find(f"{{{_WSDL}}}input").get("message").rpartition(":")[2]]
        response = elements[op.find(f"{{{_WSDL}}}output").get("message").rpartition(":")[2]]
        operations[name] = Operation(name, actions.get(name, ""), request, response)
    return operations


def _point_imports_at(document: etree._Element, service_url: str) -> None:
    for node in document.iter(f"{{{_XS}}}import", f"{{{_XS}}}include"):
        location = node.get("schemaLocation")
        if location:
            node.set("schemaLocation", f"{service_url}?xsd={location}")


# libxml2 quotes the offending value in some messages; the value may be an IIN or a name.
_QUOTED_VALUE = (
    (re.compile(r"The value '.*' is not (accepted|an element|a valid)"), r"The value is not \1"),
    (re.compile(r"^(Element '[^']*': )'.*' is not a valid value"), r"\1The value is not a valid value"),
    (re.compile(r"Duplicate key-sequence \[.*\] in"), "Duplicate value in"),
)


def _without_values(message: str) -> str:
    message = message.strip()
    for pattern, replacement in _QUOTED_VALUE:
        message = pattern.sub(replacement, message)
    return message


def _where(path: str | None) -> str:
    return "/Envelope/Body" + (path or "")


def _path(node: etree._Element, root: etree._Element) -> str:
    """``/prefix:name/...`` from ``root`` down to ``node``, as libxml2 writes its paths."""
    steps = []
    while node is not None:
        steps.append(f"{node.prefix}:{etree.QName(node).localname}" if node.prefix else etree.QName(node).localname)
        if node is root:
            break
        node = node.getparent()
    return "/" + "/".join(reversed(steps))
