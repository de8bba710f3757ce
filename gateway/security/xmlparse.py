"""The one way the gateway parses XML it did not write: SOAP requests and agency responses.

Any agency, or anyone who reaches an endpoint, can send XML. The classic attacks all ride on
features a data exchange never needs: a DOCTYPE with entity declarations expands into gigabytes
(billion laughs, quadratic blowup) or reads files and URLs (external and parameter entities),
XInclude pulls in other documents, deep nesting and huge attribute lists exhaust the stack or
the CPU. ``parse_untrusted`` refuses all of them, the DOCTYPE before parsing starts, and
everything else before the tree reaches the rest of the gateway.

No other module should call ``lxml.etree.fromstring`` or ``lxml.etree.parse`` on data from
outside.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

__all__ = [
    "DEFAULT_MAX_ATTRIBUTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MalformedXMLError",
    "UnsafeXMLError",
    "parse_untrusted",
]

# Defaults meant to be overridden from configuration per endpoint. Each bounds the work an
# attacker can make the parser do; none should come near an honest SOAP message.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# Deep nesting only serves to exhaust stacks in code that walks the tree recursively.
DEFAULT_MAX_DEPTH = 100
# Business data lives in elements; hundreds of attributes only serve to burn CPU.
DEFAULT_MAX_ATTRIBUTES = 64

# libxml2 refuses deeper documents by itself unless huge_tree is set, which it never is here.
_LIBXML2_MAX_DEPTH = 256

# The agencies send UTF-8, UTF-16 or windows-1251. Anything else (UTF-7, UTF-32, EBCDIC, ...)
# is refused: in those encodings "<!DOCTYPE" has other bytes, which the DOCTYPE scan would miss.
_ASCII_COMPATIBLE_ENCODINGS = frozenset({"utf-8", "ascii", "cp1251"})
_ACCEPTED_ENCODINGS_TEXT = "UTF-8, UTF-16 or windows-1251"

_XINCLUDE_TAGS = (
    "{http://www.w3.org/2001/XInclude}*",
    "{http://www.w3.org/2003/XInclude}*",  # the draft namespace libxml2 still honours
)

# The XML declaration, XML 1.0 §2.8 (XMLDecl) and §4.3.3 (EncodingDecl). It is matched whole,
# so that the encoding read here is the one libxml2 will read.
_XML_DECLARATION = re.compile(
    r"""<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')"""
    r"""(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*"""
    r"""(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?"""
    r"""(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?"""
    r"""[ \t\r\n]*\?>"""
)
_XML_DECLARATION_START = re.compile(r"<\?xml[ \t\r\n]")
# Far longer than any honest XML declaration; a longer one could hide its encoding from view.
_DECLARATION_PREFIX = 512


class UnsafeXMLError(ValueError):
    """The document uses a feature or size the gateway refuses from outside."""


class MalformedXMLError(ValueError):
    """The document is not well-formed XML, or its bytes do not match its declared encoding."""


def parse_untrusted(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_attributes: int = DEFAULT_MAX_ATTRIBUTES,
) -> etree._Element:
    """Parse XML received from outside the gateway and return its root element.

    Refused with UnsafeXMLError: more than max_bytes; a DOCTYPE (hence any entity
    declaration); an encoding other than UTF-8, UTF-16 or windows-1251; processing
    instructions; XInclude elements; elements nested deeper than max_depth; elements with
    more than max_attributes attributes. Refused with MalformedXMLError: anything that is not
    well-formed, including bytes that do not match the declared encoding.
    """
    if not isinstance(data, bytes):
        raise TypeError(
            f"parse_untrusted takes the bytes as received, not {type(data).__name__}: "
            "decoding first would bypass the encoding checks"
        )
    if not 1 <= max_depth < _LIBXML2_MAX_DEPTH:
        raise ValueError(
            f"max_depth must be between 1 and {_LIBXML2_MAX_DEPTH - 1}, got {max_depth}"
        )
    if len(data) > max_bytes:
        raise UnsafeXMLError(
            f"document is {len(data)} bytes, more than the limit of {max_bytes} bytes"
        )
    _refuse_dtd(data, _encoding_of(data))
    root = _build_tree(data)
    _check_tree(root, max_depth=max_depth, max_attributes=max_attributes)
    return root


# XML 1.0 Appendix F: the first bytes of a document tell its encoding family. The four-byte
# signatures are tested first, because the UTF-32 little-endian one begins like UTF-16's.
_REFUSED_SIGNATURES = {
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\x00\x3c": "UTF-32",
    b"\x3c\x00\x00\x00": "UTF-32",
    b"\x4c\x6f\xa7\x94": "EBCDIC",
}
_UTF16_SIGNATURES = {
    codecs.BOM_UTF16_LE: "utf-16-le",
    codecs.BOM_UTF16_BE: "utf-16-be",
    b"\x3c\x00\x3f\x00": "utf-16-le",
    b"\x00\x3c\x00\x3f": "utf-16-be",
}


def _encoding_of(data: bytes) -> str:
    """Decide the codec of the document from its first bytes and its XML declaration.

    A declaration that contradicts the byte signature is malformed (XML 1.0 §4.3.3); an
    encoding outside the accepted few is refused.
    """
    refused = _REFUSED_SIGNATURES.get(data[:4])
    if refused:
        raise UnsafeXMLError(
            f"{refused} documents are not accepted; send {_ACCEPTED_ENCODINGS_TEXT}"
        )
    family = _UTF16_SIGNATURES.get(data[:2]) or _UTF16_SIGNATURES.get(data[:4])
    if family is not None:
        prefix = data[:_DECLARATION_PREFIX].decode(family, errors="replace")
        declared = _declared_encoding(prefix.lstrip("\ufeff"))
        if declared not in (None, "utf-16", family):
            raise MalformedXMLError(
                f"document is encoded in UTF-16 but declares encoding {declared!r}"
            )
        return family
    has_utf8_bom = data.startswith(codecs.BOM_UTF8)
    prefix = data[len(codecs.BOM_UTF8) if has_utf8_bom else 0 :][:_DECLARATION_PREFIX]
    declared = _declared_encoding(prefix.decode("latin-1"))
    if declared is None or declared == "utf-8":
        return "utf-8"
    if has_utf8_bom:
        raise MalformedXMLError(
            f"document starts with a UTF-8 byte order mark but declares encoding {declared!r}"
        )
    if declared.startswith("utf-16"):
        raise MalformedXMLError(
            f"document declares encoding {declared!r} but its bytes are not UTF-16"
        )
    if declared not in _ASCII_COMPATIBLE_ENCODINGS:
        raise UnsafeXMLError(
            f"encoding {declared!r} is not accepted; send {_ACCEPTED_ENCODINGS_TEXT}"
        )
    return declared


def _declared_encoding(prefix: str) -> str | None:
    """The codec named by the XML declaration, normalised (``windows-1251`` -> ``cp1251``)."""
    if not _XML_DECLARATION_START.match(prefix):
        return None
    match = _XML_DECLARATION.match(prefix)
    if match is None:
        raise MalformedXMLError(
            f"the XML declaration on line 1 is not well-formed or longer than "
            f"{_DECLARATION_PREFIX} bytes"
        )
    name = match.group(1) or match.group(2)
    if name is None:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UnsafeXMLError(
            f"encoding {name!r} is not accepted; send {_ACCEPTED_ENCODINGS_TEXT}"
        ) from None


def _refuse_dtd(data: bytes, codec: str) -> None:
    """Refuse a DOCTYPE before libxml2 sees it, so no entity is ever declared or expanded.

    Entity declarations can only live inside a DOCTYPE, so refusing it refuses billion laughs,
    quadratic blowup, external and parameter entities at once. The scan is over raw bytes and
    also hits the same text inside a comment or CDATA section; such documents are refused too,
    which is cheaper and safer than tokenising XML twice.
    """
    for keyword, what in (("<!DOCTYPE", "DOCTYPE"), ("<!ENTITY", "entity")):
        offset = data.find(keyword.encode(codec))
        if offset >= 0:
            line = data.count("\n".encode(codec), 0, offset) + 1
            raise UnsafeXMLError(
                f"{what} declarations are not accepted (line {line}); "
                "send the document without a DTD"
            )


_per_thread = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's parser: built once, because lxml parsers must not be shared by threads."""
    parser = getattr(_per_thread, "parser", None)
    if parser is None:
        parser = _per_thread.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,
            remove_pis=False,
        )
    return parser


def _build_tree(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        line, column = error.position
        reason = error.error_log.last_error.message if error.error_log else error.msg
        if error.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            raise UnsafeXMLError(
                f"document exceeds the parser's limits on nesting or size at line {line}, "
                f"column {column}"
            ) from None
        raise MalformedXMLError(
            f"XML is not well-formed at line {line}, column {column}: {reason}"
        ) from None


class _TreeChecks:
    """Compiled XPath queries, one set per thread and depth limit (XPath objects hold state)."""

    def __init__(self, max_depth: int) -> None:
        self.too_deep = etree.XPath("(" + "/*" * (max_depth + 1) + ")[1]")
        # The first attribute beyond the limit on any element; several times faster than
        # comparing count(@*) on every element.
        self.attribute_beyond = etree.XPath("(//@*[position() > $limit])[1]")
        self.processing_instruction = etree.XPath("(//processing-instruction())[1]")


def _tree_checks(max_depth: int) -> _TreeChecks:
    cache = getattr(_per_thread, "checks", None)
    if cache is None:
        cache = _per_thread.checks = {}
    checks = cache.get(max_depth)
    if checks is None:
        checks = cache[max_depth] = _TreeChecks(max_depth)
    return checks


def _check_tree(root: etree._Element, *, max_depth: int, max_attributes: int) -> None:
    """Refuse what the byte scan cannot see, before anyone else touches the tree."""
    document = root.getroottree()
    # The byte scan has already refused any DOCTYPE. Looking again costs nothing and still
    # holds if an encoding trick ever slips one past the scan. Entity references need no
    # check of their own: without a DOCTYPE nothing declares them, and libxml2 refuses
    # references to undeclared entities as not well-formed.
    if document.docinfo.doctype:
        raise UnsafeXMLError(
            "DOCTYPE declarations are not accepted; send the document without a DTD"
        )
    checks = _tree_checks(max_depth)
    if found := checks.processing_instruction(document):
        raise UnsafeXMLError(
            f"processing instruction <?{found[0].target}?> at line {found[0].sourceline} "
            "is not accepted"
        )
    xinclude = next(root.iter(*_XINCLUDE_TAGS), None)
    if xinclude is not None:
        raise UnsafeXMLError(
            f"XInclude element {etree.QName(xinclude).localname!r} "
            f"at line {xinclude.sourceline} is not accepted"
        )
    if found := checks.too_deep(document):
        raise UnsafeXMLError(
            f"element nesting deeper than {max_depth} levels at line {found[0].sourceline}"
        )
    if found := checks.attribute_beyond(document, limit=max_attributes):
        node = found[0].getparent()
        raise UnsafeXMLError(
            f"element <{etree.QName(node).localname}> at line {node.sourceline} has "
            f"{len(node.attrib)} attributes, more than the limit of {max_attributes}"
        )
