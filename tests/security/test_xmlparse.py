"""The hardened parser refuses hostile XML and keeps honest agency XML intact."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from lxml import etree

from gateway.security import xmlparse
from gateway.security.xmlparse import MalformedXMLError, UnsafeXMLError, parse_untrusted

SOAP_ENVELOPE = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                  xmlns:bus="urn:kz:gov:bus:v1">
  <soapenv:Header/>
  <soapenv:Body>
    <!-- relayed by the penal system -->
    <bus:SendMessage>
      <request>
        <requestInfo>
          <messageId>7f1c2a</messageId>
          <serviceId>release-notice</serviceId>
          <sender><senderId>kuis</senderId></sender>
        </requestInfo>
        <requestData><data><![CDATA[payload]]></data></requestData>
      </request>
    </bus:SendMessage>
  </soapenv:Body>
</soapenv:Envelope>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""

KAZAKH = "Қазақстан Республикасы: ә ғ қ ң ө ұ ү һ і"
# windows-1251 has і but none of ә ғ қ ң ө ұ ү һ, so legacy systems send Russian text.
RUSSIAN_WITH_I = "Республика Казахстан, Комитет УИС, і"

# "<!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>" in UTF-7: not one "<" byte in it, and
# libxml2 does decode UTF-7.
UTF7_DOCTYPE_BODY = (
    b"+ADw-!DOCTYPE a +AFsAPA-!ENTITY x +ACI-boom+ACIAPgBd-+AD4APA-a+AD4AJg-x+ADsAPA-/a+AD4-"
)


def _nested(depth: int) -> bytes:
    return b"<root>\n" + b"<e>" * (depth - 1) + b"x" + b"</e>" * (depth - 1) + b"\n</root>"


def _with_attributes(count: int) -> bytes:
    return b"<root><e " + b" ".join(b'a%d="v"' % i for i in range(count)) + b"/></root>"


class LoopbackListener:
    """A real TCP listener on 127.0.0.1 that counts who connects to it."""

    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen()
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            self._accepted += 1
            connection.close()  # so a fetching parser fails at once instead of waiting

    def connections(self) -> int:
        """Stop listening and count every connection, including any still in the backlog."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.setblocking(False)
        while True:
            try:
                connection, _ = self._server.accept()
            except BlockingIOError:
                break
            self._accepted += 1
            connection.close()
        return self._accepted

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def listener():
    server = LoopbackListener()
    yield server
    server.close()


def test_benign_soap_envelope_parses_with_comments_and_namespaces_intact():
    envelope = parse_untrusted(SOAP_ENVELOPE)
    namespaces = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "bus": "urn:kz:gov:bus:v1"}
    assert envelope.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
    assert envelope.xpath("string(//messageId)") == "7f1c2a"
    assert envelope.xpath("string(//data)") == "payload"
    assert envelope.find("s:Body/bus:SendMessage", namespaces) is not None
    assert len(envelope.xpath("//comment()")) == 1


def test_billion_laughs_is_refused_as_a_doctype():
    with pytest.raises(UnsafeXMLError, match="DOCTYPE declarations are not accepted"):
        parse_untrusted(BILLION_LAUGHS)


def test_quadratic_blowup_is_refused():
    document = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * 50_000 + b'">]><r>'
        + b"&a;" * 5_000
        + b"</r>"
    )
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_untrusted(document)


def test_external_entity_never_connects_to_its_url(listener):
    document = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{listener.port}/">]>\n'
        "<r>&x;</r>"
    ).encode()
    with pytest.raises(UnsafeXMLError, match="DOCTYPE declarations are not accepted \\(line 2\\)"):
        parse_untrusted(document)
    assert listener.connections() == 0


def test_external_dtd_is_never_fetched(listener):
    document = f'<!DOCTYPE r SYSTEM "http://127.0.0.1:{listener.port}/r.dtd"><r/>'.encode()
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_untrusted(document)
    assert listener.connections() == 0


def test_parameter_entity_never_connects_to_its_url(listener):
    document = (
        f'<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:{listener.port}/evil.dtd">'
        " %remote;]><r/>"
    ).encode()
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_untrusted(document)
    assert listener.connections() == 0


def test_loopback_listener_counts_a_connection(listener):
    # Without this, the "never connects" tests above could pass with a deaf listener.
    socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    assert listener.connections() == 1


def test_external_file_entity_is_refused_although_plain_lxml_would_read_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("IIN 900101300123")
    document = (
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]><r>&x;</r>'
    ).encode()
    permissive = etree.XMLParser(resolve_entities=True, load_dtd=True)
    assert etree.fromstring(document, permissive).text == "IIN 900101300123"

    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_untrusted(document)


def test_parameter_entities_are_refused():
    document = b"""<!DOCTYPE r [
  <!ENTITY % inner "<!ENTITY leak 'x'>">
  %inner;
]><r>&leak;</r>"""
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_untrusted(document)


def test_entity_declaration_without_doctype_is_refused_before_parsing():
    # Not well-formed either, but it must be reported as hostile, not as a typo.
    with pytest.raises(UnsafeXMLError, match="entity declarations are not accepted"):
        parse_untrusted(b'<r><!ENTITY x "y"></r>')


def test_doctype_is_refused_before_the_parser_sees_the_document():
    # Malformed after the DOCTYPE: libxml2 would report the tag mismatch, the byte scan the DTD.
    with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
        parse_untrusted(b"<!DOCTYPE r><r></wrong>")


def test_doctype_missed_by_the_byte_scan_is_still_refused_after_parsing(monkeypatch):
    monkeypatch.setattr(xmlparse, "_refuse_dtd", lambda data, codec: None)
    with pytest.raises(UnsafeXMLError, match="DOCTYPE declarations are not accepted"):
        parse_untrusted(b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>')


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_doctype_in_utf16_is_refused(codec):
    document = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</wrong>'
    ).encode(codec)
    with pytest.raises(UnsafeXMLError, match="DOCTYPE declarations are not accepted \\(line 2\\)"):
        parse_untrusted(document)


def test_utf7_document_is_refused_so_its_hidden_doctype_cannot_slip_through():
    document = b'<?xml version="1.0" encoding="UTF-7"?>' + UTF7_DOCTYPE_BODY
    with pytest.raises(UnsafeXMLError, match="encoding 'utf-7' is not accepted"):
        parse_untrusted(document)


def test_encoding_declaration_pushed_out_of_view_is_refused():
    document = b'<?xml version="1.0"' + b" " * 600 + b'encoding="UTF-7"?>' + UTF7_DOCTYPE_BODY
    with pytest.raises(MalformedXMLError, match="XML declaration"):
        parse_untrusted(document)


def test_utf32_document_is_refused():
    document = '<?xml version="1.0" encoding="UTF-32"?><r/>'.encode("utf-32")
    with pytest.raises(UnsafeXMLError, match="UTF-32 documents are not accepted"):
        parse_untrusted(document)


def test_xinclude_is_refused():
    document = b"""<r xmlns:xi="http://www.w3.org/2001/XInclude">
  <xi:include href="file:///etc/passwd" parse="text"/>
</r>"""
    with pytest.raises(UnsafeXMLError, match="XInclude element 'include' at line 2"):
        parse_untrusted(document)


def test_nesting_at_the_depth_limit_is_accepted():
    assert parse_untrusted(_nested(100), max_depth=100).tag == "root"


def test_nesting_deeper_than_the_limit_is_refused_with_its_line():
    with pytest.raises(UnsafeXMLError, match="element nesting deeper than 100 levels at line 2"):
        parse_untrusted(_nested(101), max_depth=100)


def test_nesting_beyond_the_parser_ceiling_is_refused_as_unsafe():
    with pytest.raises(UnsafeXMLError, match="limits on nesting"):
        parse_untrusted(_nested(5_000))


def test_attribute_count_at_the_limit_is_accepted():
    assert len(parse_untrusted(_with_attributes(64), max_attributes=64)[0].attrib) == 64


def test_huge_attribute_count_is_refused():
    with pytest.raises(UnsafeXMLError, match="element <e> at line 1 has 10000 attributes"):
        parse_untrusted(_with_attributes(10_000), max_attributes=64)


def test_document_at_the_size_limit_is_accepted():
    document = b"<r>" + b"x" * 993 + b"</r>"
    assert len(document) == 1000
    assert parse_untrusted(document, max_bytes=1000).tag == "r"


def test_oversized_document_is_refused_before_parsing():
    document = b"<r>" + b"x" * 995 + b"</r"  # not even well-formed: never parsed
    with pytest.raises(UnsafeXMLError, match="1001 bytes, more than the limit of 1000"):
        parse_untrusted(document, max_bytes=1000)


def test_processing_instruction_in_the_prolog_is_refused():
    document = b'<?xml version="1.0"?>\n<?xml-stylesheet href="http://evil/x.xsl"?><r/>'
    refused = r"processing instruction <\?xml-stylesheet\?> at line 2"
    with pytest.raises(UnsafeXMLError, match=refused):
        parse_untrusted(document)


def test_processing_instruction_inside_the_body_is_refused():
    with pytest.raises(UnsafeXMLError, match="processing instruction"):
        parse_untrusted(b"<r><a><?php system('id'); ?></a></r>")


def test_invalid_utf8_under_a_utf8_declaration_is_malformed():
    document = f'<?xml version="1.0" encoding="UTF-8"?>\n<r>{RUSSIAN_WITH_I}</r>'.encode("cp1251")
    with pytest.raises(MalformedXMLError, match="line 2"):
        parse_untrusted(document)


def test_utf16_declaration_on_single_byte_text_is_malformed():
    with pytest.raises(MalformedXMLError, match="not UTF-16"):
        parse_untrusted(b'<?xml version="1.0" encoding="UTF-16"?><r/>')


def test_byte_order_mark_contradicting_the_declaration_is_malformed():
    document = b"\xef\xbb\xbf" + '<?xml version="1.0" encoding="windows-1251"?><r/>'.encode()
    with pytest.raises(MalformedXMLError, match="byte order mark"):
        parse_untrusted(document)


def test_windows_1251_document_decodes_to_the_same_cyrillic_text():
    document = (
        f'<?xml version="1.0" encoding="windows-1251"?>\n<r name="{RUSSIAN_WITH_I}">'
        f"{RUSSIAN_WITH_I}</r>"
    ).encode("cp1251")
    parsed = parse_untrusted(document)
    assert parsed.text == RUSSIAN_WITH_I
    assert parsed.get("name") == RUSSIAN_WITH_I


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_kazakh_letters_survive_the_round_trip(codec):
    declared = "UTF-8" if codec == "utf-8" else "UTF-16"
    document = f'<?xml version="1.0" encoding="{declared}"?><r>{KAZAKH}</r>'.encode(codec)
    assert parse_untrusted(document).text == KAZAKH


def test_malformed_document_reports_line_and_column():
    with pytest.raises(MalformedXMLError, match="line 3, column 5: Opening and ending tag"):
        parse_untrusted(b"<r>\n<a>\n</b></r>")


def test_undeclared_entity_is_malformed():
    with pytest.raises(MalformedXMLError, match="Entity 'x' not defined"):
        parse_untrusted(b"<r>&x;</r>")


def test_empty_input_is_malformed():
    with pytest.raises(MalformedXMLError, match="Document is empty"):
        parse_untrusted(b"")


def test_text_instead_of_bytes_is_a_programming_error():
    with pytest.raises(TypeError, match="bytes as received"):
        parse_untrusted(SOAP_ENVELOPE.decode())  # type: ignore[arg-type]


def test_threads_parsing_at_once_each_get_their_own_correct_tree():
    documents = [f"<r><n>{i}</n></r>".encode() for i in range(400)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parsed = list(pool.map(lambda d: parse_untrusted(d).findtext("n"), documents))
    assert parsed == [str(i) for i in range(400)]
