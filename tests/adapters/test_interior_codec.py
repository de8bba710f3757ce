"""The interior codec: persons, special records, cases and residence survive the ministry's XML."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.interior import codec
from gateway.soap.contracts import contract
from soap.strategies import addresses, convictions, iins, persons, pretrial_cases

INTERIOR = contract("interior.wsdl")


def _through_xml(element: etree._Element) -> etree._Element:
    INTERIOR.validate(element)
    return etree.fromstring(etree.tostring(element, encoding="UTF-8"))


@settings(max_examples=150, deadline=None)
@given(persons())
def test_person_survives_a_round_trip(person):
    assert codec.decode_person(_through_xml(codec.encode_person(person))) == person


@settings(max_examples=100, deadline=None)
@given(iins, st.lists(convictions, max_size=4))
def test_special_records_survive_a_round_trip_with_their_expunged_flags(iin, records):
    assert codec.decode_special_records(_through_xml(codec.encode_special_records(iin, records))) == (iin, records)


@settings(max_examples=100, deadline=None)
@given(pretrial_cases)
def test_pretrial_case_survives_a_round_trip(case):
    assert codec.decode_pretrial_case(_through_xml(codec.encode_pretrial_case(case))) == case


@settings(max_examples=100, deadline=None)
@given(iins, st.none() | addresses)
def test_registered_residence_survives_a_round_trip_even_when_there_is_none(iin, address):
    assert codec.decode_registered_residence(_through_xml(codec.encode_registered_residence(iin, address))) == (iin, address)


@settings(max_examples=50, deadline=None)
@given(iins)
def test_every_person_query_carries_its_iin(iin):
    for tag in codec.PERSON_QUERIES:
        assert codec.decode_person_query(_through_xml(codec.encode_person_query(tag, iin))) == iin
