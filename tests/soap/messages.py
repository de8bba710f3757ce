"""Valid SOAP requests for the tests to send, and to break in the bad-input tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from adapters.penal import codec as penal_codec
from adapters.population import Population
from gateway.domain import ReleaseEvent, ReleaseNotice, Sex, make_iin
from gateway.soap.envelope import BusRequest, Channel, MessageType, build_envelope, build_request, serialise
from support import person_payload

POPULATION = Population(size=120)
PING = "urn:example:ping"
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "X-Member-Id": "penal"}


def held_person():
    return POPULATION.in_custody()[0]


def release_notice() -> ReleaseNotice:
    return held_person().release


_DATES: dict[str, dt.datetime] = {}


def sent_at(message_id: str) -> dt.datetime:
    """Now, as the messageDate of ``message_id`` — the same date when it is built again in the
    same test, so a resent message is byte for byte the first one (the gateway refuses dates far
    from now: tests/conftest.py forgets the dates before each test)."""
    return _DATES.setdefault(message_id, dt.datetime.now(dt.UTC).replace(microsecond=0))


def release_notice_request(
    notice: ReleaseNotice | None = None, *, message_id: str = "penal-0001", sender: str = "penal", event=ReleaseEvent.PLANNED,
    channel: Channel = Channel.SYNC,
) -> bytes:
    """A release notice on SyncChannel v10, or on the deprecated asynchronous envelope."""
    message = BusRequest(
        message_id=message_id,
        service_id="release-notices",
        message_type=MessageType.NOTIFICATION if channel is Channel.LEGACY_ASYNC else None,
        message_date=sent_at(message_id),
        sender_id=sender,
        data=penal_codec.encode_release_notice(event, notice or release_notice()),
        channel=channel,
    )
    return serialise(build_envelope(build_request(message)))


def document_element(document: Any, tag: str = "ProbationNotice", namespace: str = PING) -> etree._Element:
    """A canonical document (its JSON form) written as the relay reads XML: an element per
    field, a list's items repeated, null an empty element."""
    element = etree.Element(f"{{{namespace}}}{tag}", nsmap={"p": namespace})

    def fill(parent: etree._Element, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                for one in item if isinstance(item, list) else [item]:
                    fill(etree.SubElement(parent, f"{{{namespace}}}{key}"), one)
        elif value is not None:
            parent.text = str(value)

    fill(element, document)
    return element


def relay_request(
    *, message_id: str = "penal-0001", sender: str | None = "penal", service_id: str = "health/bulk",
    text: str = "Сәлем, әғқңөұүһі", channel: Channel = Channel.SYNC,
) -> bytes:
    """A relayed ProbationNotice whose destination is ``text``, on SyncChannel v10 or on the
    deprecated synchronous envelope."""
    payload = document_element(person_payload(text=text))
    message = BusRequest(
        message_id=message_id,
        service_id=service_id,
        message_date=sent_at(message_id),
        sender_id=sender,
        data=payload,
        properties=(("purpose", "relay_test"),),
        channel=channel,
    )
    return serialise(build_envelope(build_request(message)))


def stranger_iin(population: Population):
    """A valid IIN of nobody in ``population``."""
    return next(
        iin
        for serial in range(1, 10_000)
        if (iin := make_iin(dt.date(1999, 9, 9), Sex.MALE, serial)) is not None and population.by_iin(iin) is None
    )
