"""The penal codec: canonical records survive the penal system's XML, Kazakh letters included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.penal import codec
from gateway.domain import ReleaseEvent
from gateway.soap.contracts import contract
from soap.strategies import KAZAKH_LETTERS, custody_episodes, iins, release_notices

NOTICES = contract("release-notices.wsdl")
PENAL = contract("penal.wsdl")


@settings(max_examples=150, deadline=None)
@given(release_notices())
def test_release_notice_survives_a_round_trip_through_valid_xml(event_and_notice):
    element = codec.encode_release_notice(*event_and_notice)
    NOTICES.validate(element)
    assert codec.decode_release_notice(etree.fromstring(etree.tostring(element))) == event_and_notice


@settings(max_examples=100, deadline=None)
@given(iins, st.lists(custody_episodes(), max_size=4))
def test_custody_history_survives_a_round_trip_through_valid_xml(iin, episodes):
    element = codec.encode_custody_history(iin, episodes)
    PENAL.validate(element)
    assert codec.decode_custody_history(etree.fromstring(etree.tostring(element, encoding="UTF-8"))) == (iin, episodes)


def test_kazakh_letters_are_written_as_letters_not_escaped(population):
    notice = population.in_custody()[0].release
    destination = notice.destination.model_copy(update={"street": f"Абай даңғылы {KAZAKH_LETTERS}"})
    xml = etree.tostring(codec.encode_release_notice(ReleaseEvent.ACTUAL, notice.model_copy(update={"destination": destination})), encoding="UTF-8")
    assert KAZAKH_LETTERS.encode() in xml


def test_decoding_another_element_is_refused_by_name():
    with pytest.raises(ValueError, match=r"expected the element \{urn:reentry-gateway:penal:v1\}releaseNotice"):
        codec.decode_release_notice(etree.Element("{urn:reentry-gateway:penal:v1}custodyHistoryRequest"))


@pytest.fixture(scope="module")
def population():
    from adapters.population import Population

    return Population(size=60)
