"""Log redaction: personal data never reaches a log line."""

from __future__ import annotations

import io
import json

from gateway.logs import configure_logging, get_logger, redact_personal_data
from support import PERSON_IIN, PERSON_NAMES


def test_iin_shaped_numbers_are_masked_anywhere_in_a_value():
    event = redact_personal_data(None, "info", {"event": f"lookup of {PERSON_IIN} failed", "ids": [PERSON_IIN]})
    assert event == {"event": "lookup of [iin] failed", "ids": ["[iin]"]}


def test_an_iin_as_an_integer_is_masked():
    assert redact_personal_data(None, "info", {"value": int(PERSON_IIN)})["value"] == "[iin]"


def test_values_under_personal_keys_are_masked_at_any_depth():
    event = redact_personal_data(None, "info", {"surname": PERSON_NAMES[0], "ctx": {"given_name": PERSON_NAMES[1]}})
    assert event == {"surname": "[redacted]", "ctx": {"given_name": "[redacted]"}}


def test_bytes_are_never_written_only_their_length():
    assert redact_personal_data(None, "info", {"data": "Ә".encode() * 3})["data"] == "<6 bytes>"


def test_longer_digit_runs_are_not_mistaken_for_iins():
    assert redact_personal_data(None, "info", {"event": "seq 1234567890123"})["event"] == "seq 1234567890123"


def test_the_configured_pipeline_writes_json_lines_with_the_redaction_applied():
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    get_logger("test").info("person seen", iin=PERSON_IIN, note=f"IIN {PERSON_IIN}")
    line = json.loads(buffer.getvalue().splitlines()[-1])
    assert line["iin"] == "[redacted]" and line["note"] == "IIN [iin]" and line["level"] == "info"


def test_standard_library_loggers_pass_through_the_same_redaction():
    import logging

    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    logging.getLogger("some.library").warning("bad request for %s", PERSON_IIN)
    assert PERSON_IIN not in buffer.getvalue() and "[iin]" in buffer.getvalue()
