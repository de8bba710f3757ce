"""The court codec: a pre-trial report, every section and its provenance, survives the court's XML."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from adapters.court import codec
from gateway.domain import ReportSection, SourceStatus
from gateway.soap.contracts import contract
from soap.strategies import moments, pretrial_reports, text

COURT = contract("court.wsdl")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pretrial_reports())
def test_pretrial_report_survives_a_round_trip_through_valid_xml(report):
    element = codec.encode_pretrial_report(report)
    COURT.validate(element)
    assert codec.decode_pretrial_report(etree.fromstring(etree.tostring(element, encoding="UTF-8"))) == report


@settings(max_examples=50, deadline=None)
@given(text, moments)
def test_court_receipt_survives_a_round_trip(number, registered_at):
    receipt = codec.CourtReceipt(report_id="report-1", version=2, registration_number=number, registered_at=registered_at)
    element = codec.encode_court_receipt(receipt)
    COURT.validate(element)
    assert codec.decode_court_receipt(element) == receipt


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pretrial_reports())
def test_unavailable_section_is_absent_and_an_empty_history_is_present(report):
    element = codec.encode_pretrial_report(report)
    sections = element.find(f"{{{codec.COURT}}}sections")
    for section, origin in report.provenance.items():
        local = "".join(word.capitalize() if i else word for i, word in enumerate(section.value.split("_")))
        present = sections.find(f"{{{codec.COURT}}}{local}") is not None
        assert present == (origin.status is SourceStatus.OK), section


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pretrial_reports())
def test_a_report_with_a_provenance_entry_twice_is_invalid(report):
    element = codec.encode_pretrial_report(report)
    provenance = element.find(f"{{{codec.COURT}}}provenance")
    provenance[1].find(f"{{{codec.COURT}}}name").text = ReportSection.IDENTITY.value
    with pytest.raises(Exception, match="Duplicate value"):
        COURT.validate(element)


def test_registered_at_keeps_its_time_zone():
    registered_at = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    receipt = codec.CourtReceipt("r", 1, "ДД-1", registered_at)
    assert codec.decode_court_receipt(codec.encode_court_receipt(receipt)).registered_at.utcoffset() == dt.timedelta(hours=5)
