"""Helpers for the AsyncChannel tests: a gateway with a member that pulls, and posting envelopes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from support import person_payload

from soap.messages import PING, document_element

TYPES = "http://bip.bee.kz/AsyncChannel/v10/Types"
ACTION = "http://bip.bee.kz/AsyncChannel/v10/Interfaces/IAsyncChannel/"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

# probation pulls (no endpoint); court may send to it; health (pushed) stays as in support.write_config.
# The inbox takes a ProbationNotice, as the test services do (support.person_payload).
PULL_MEMBERS = """
[members.probation]
name = "Probation service"
role = "probation"
delivery = "pull"
services.inbox = { document = "ProbationNotice" }

[members.court]
name = "Court"
role = "court"
may_call = [{ service = "probation/inbox", purposes = ["relay_test"] }, { service = "health/bulk", purposes = ["relay_test"] }]
"""

# What probation may receive from the relay for relay_test: all of a ProbationNotice, as
# support.TEST_POLICY lets health receive it.
PULL_POLICY = """
[policy.probation.relay_test.ProbationNotice]
allow = ["event", "person.**", "release_type", "release_date", "facility.**", "destination.**", "probation_office.**"]
"""

PULL_CONFIG = {"extra_members": PULL_MEMBERS, "extra_policy": PULL_POLICY}
"""The keyword arguments of ``support.write_config`` (and ``start_gateway``) for the pull member."""


def notice_xml(text: str = "Сәлем", **changes) -> str:
    """A ProbationNotice (``support.person_payload``, its destination ``text``, with ``changes``)
    as the XML a sendMessage's data carries."""
    return etree.tostring(document_element({**person_payload(text=text), **changes}), encoding="unicode")


def destination_of(data: etree._Element) -> str | None:
    """The destination a relayed ProbationNotice in ``data`` names."""
    return data.findtext(f"{{{PING}}}ProbationNotice/{{{PING}}}destination/{{{PING}}}raw")


def now_text(offset_seconds: float = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_seconds)).isoformat(timespec="seconds")


@dataclass
class Answer:
    status: int
    root: etree._Element

    @property
    def body(self) -> etree._Element:
        return self.root.find(f"{{{SOAP}}}Body")[0]

    @property
    def fault(self) -> tuple[str, str, str | None, str | None]:
        """(faultcode, errorCode, errorData, errorMessage)."""
        body = self.body
        assert body.tag == f"{{{SOAP}}}Fault", etree.tostring(body)
        info = body.find(f"detail/{{{TYPES}}}AsyncChannelFault/ErrorInfo")
        return (body.findtext("faultcode"), info.findtext("errorCode"), info.findtext("errorData"),
                info.findtext("errorMessage"))

    def find(self, path: str) -> etree._Element | None:
        return self.body.find(path)

    def texts(self, path: str) -> list[str]:
        return [node.text for node in self.body.iterfind(path)]


async def post(http, gateway, operation: str, xml: str | bytes, *, member: str) -> Answer:
    data = xml.encode() if isinstance(xml, str) else xml
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}{operation}"', "X-Member-Id": member}
    async with http.post(f"{gateway.url}/soap/async-channel", data=data, headers=headers) as response:
        return Answer(response.status, etree.fromstring(await response.read()))


def send_message(message_id: str, *, sender: str = "court", service_id: str = "probation/inbox",
                 message_type: str = "REQUEST", date: str | None = None, text: str = "Сәлем",
                 password: str = "bus-password", data: str | None = None) -> str:
    """A sendMessage as an integrator writes it by hand: its data ``data``, by default a
    ProbationNotice whose destination is ``text``."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="{TYPES}">
  <soap:Body>
    <t:sendMessage>
      <request>
        <messageInfo>
          <messageId>{message_id}</messageId>
          <serviceId>{service_id}</serviceId>
          <messageType>{message_type}</messageType>
          <messageDate>{date or now_text()}</messageDate>
          <sender><senderId>{sender}</senderId><password>{password}</password></sender>
          <properties><key>purpose</key><value>relay_test</value></properties>
        </messageInfo>
        <messageData><data>{notice_xml(text) if data is None else data}</data></messageData>
      </request>
    </t:sendMessage>
  </soap:Body>
</soap:Envelope>"""


def ids_request(operation: str, sender: str, *message_ids: str) -> str:
    ids = "".join(f"<messageId>{message_id}</messageId>" for message_id in message_ids)
    return f"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <t:{operation} xmlns:t="{TYPES}">
      <request><sender><senderId>{sender}</senderId></sender>{ids}</request>
    </t:{operation}>
  </soap:Body>
</soap:Envelope>"""


def get_messages(sender: str, page_size: str | int, cursor: str | None = None) -> str:
    cursor_element = f"<cursor>{cursor}</cursor>" if cursor is not None else ""
    return f"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <t:getMessages xmlns:t="{TYPES}">
      <request><sender><senderId>{sender}</senderId><password>x</password></sender><pageSize>{page_size}</pageSize>{cursor_element}</request>
    </t:getMessages>
  </soap:Body>
</soap:Envelope>"""
