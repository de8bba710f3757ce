"""The JSON services' OpenAPI contracts: valid documents, examples that follow them, codecs that do too."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from fhir.resources.R4B.bundle import Bundle
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from adapters import rpn
from adapters.continuity_fhir import notice_from_bundle
from adapters.employment.codec import employment_notice_from_json
from adapters.health import codec as health_codec
from adapters.population import Population
from adapters.probation.codec import probation_notice_from_json
from adapters.social import codec as social_codec
from gateway.domain import ContinuityHold
from gateway.resources import resource_dir

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = resource_dir("schemas") / "openapi"
EXAMPLES = ROOT / "docs" / "examples"
SERVICES = ("health", "social", "employment", "probation", "clinic", "health-authority")
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.json"))


def _retrieve(uri: str) -> Resource:
    # Contracts refer to one another by relative file paths; everything is read from the checkout.
    return DRAFT202012.create_resource(json.loads(Path(uri.removeprefix("file://")).read_text(encoding="utf-8")))


@cache
def _document(service: str) -> tuple[str, dict]:
    path = OPENAPI / f"{service}.json"
    return path.as_uri(), json.loads(path.read_text(encoding="utf-8"))


def _validator(service: str, pointer: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at ``pointer`` inside the service's OpenAPI document."""
    uri, _ = _document(service)
    return jsonschema.Draft202012Validator(
        {"$ref": f"{uri}#{pointer}"},
        registry=Registry(retrieve=_retrieve),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _operation(service: str, operation_id: str) -> tuple[str, dict]:
    _, document = _document(service)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("operationId") == operation_id:
                return f"/paths/{_escape(path)}/{method}", operation
    raise AssertionError(f"{service}.json has no operation {operation_id!r}")


def _example_schema(service: str, name: str) -> str:
    """The pointer to the schema an example follows, from its name: ``<operationId>.<part>``.

    ``request`` is the request body, ``response-<status>`` an answer, ``callback-<name>``
    the body of a callback the operation makes.
    """
    operation_id, part = name.split(".", 1)
    pointer, operation = _operation(service, operation_id)
    if part == "request":
        (media_type, *_) = operation["requestBody"]["content"]
        return f"{pointer}/requestBody/content/{_escape(media_type)}/schema"
    if part.startswith("response-"):
        status = part.removeprefix("response-")
        (media_type, *_) = operation["responses"][status]["content"]
        return f"{pointer}/responses/{status}/content/{_escape(media_type)}/schema"
    if part.startswith("callback-"):
        callback = part.removeprefix("callback-")
        (expression,) = operation["callbacks"][callback]
        return f"{pointer}/callbacks/{callback}/{_escape(expression)}/post/requestBody/content/application~1json/schema"
    raise AssertionError(f"example {name!r} is not named <operationId>.request|response-<status>|callback-<name>")


@pytest.mark.parametrize("service", SERVICES)
def test_the_openapi_document_is_valid(service):
    uri, document = _document(service)
    validate_openapi(document, base_uri=uri)


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_documented_example_follows_its_contract(example):
    service = example.parent.name
    assert service in SERVICES, f"{example} is in a folder that names no service"
    payload = json.loads(example.read_text(encoding="utf-8"))
    _validator(service, _example_schema(service, example.stem)).validate(payload)


def test_every_operation_has_a_documented_example():
    # An operation served by two systems (the employment reception) is documented once.
    documented = {path.stem.split(".")[0] for path in EXAMPLE_FILES}
    for service in SERVICES:
        _, document = _document(service)
        for item in document["paths"].values():
            for operation in item.values():
                assert operation["operationId"] in documented, (
                    f"docs/examples/ has no example for {service}: {operation['operationId']}"
                )


def test_the_fhir_example_is_a_valid_bundle_that_the_codec_reads():
    bundle = json.loads((EXAMPLES / "clinic" / "receiveContinuityNotice.request.json").read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert notice_from_bundle(bundle).person.iin == patient["identifier"][0]["value"]


def test_the_receiving_examples_decode_with_their_codecs():
    def example(service: str, name: str):
        return json.loads((EXAMPLES / service / f"{name}.json").read_text(encoding="utf-8"))

    employment_notice_from_json(example("employment", "receiveEmploymentNotice.request"))
    probation_notice_from_json(example("probation", "receiveProbationNotice.request"))
    social_codec.referral_from_json(example("social", "receiveReferral.request"))


def test_what_the_health_and_social_codecs_write_follows_the_contracts():
    checks = {
        ("health", "AttachmentAnswer"): lambda p: rpn.attachment_json(p.iin, p.attachment),
        ("health", "Registrations"): lambda p: health_codec.registrations_json(p.health),
        ("health", "DisabilityAnswer"): lambda p: health_codec.disability_json(p.iin, p.health.disability),
        ("health", "ServiceArea"): lambda p: rpn.clinic_json(p.district.kato, p.district.clinic),
        ("health", "ContinuityHold"): lambda p: rpn.hold_json(
            ContinuityHold(id="H00000001", until=dt.date(2027, 1, 1)), iin=p.iin, reference="case-1", released=False
        ),
        ("social", "SocialStatus"): lambda p: social_codec.social_status_json(p.social),
    }
    validators = {key: _validator(key[0], f"/components/schemas/{key[1]}") for key in checks}
    for person in Population(size=200):
        for key, encode in checks.items():
            validators[key].validate(encode(person))


def test_the_escalation_example_is_a_valid_bundle_addressed_to_the_authority_saying_why():
    bundle = json.loads((EXAMPLES / "health-authority" / "receiveEscalation.request.json").read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    notice = notice_from_bundle(bundle)
    assert notice.escalation_reason
    header = bundle["entry"][0]
    assert header["fullUrl"] == f"urn:uuid:{header['resource']['id']}"
    assert header["resource"]["destination"][0]["endpoint"] == "urn:reentry-gateway:member:health-authority"


def test_the_clinic_contract_refuses_an_escalation_and_the_authority_contract_a_clinic_notice():
    clinic = json.loads((EXAMPLES / "clinic" / "receiveContinuityNotice.request.json").read_text(encoding="utf-8"))
    authority = json.loads((EXAMPLES / "health-authority" / "receiveEscalation.request.json").read_text(encoding="utf-8"))
    assert not _validator("clinic", "/components/schemas/MessageBundle").is_valid(authority)
    assert not _validator("health-authority", "/components/schemas/MessageBundle").is_valid(clinic)
