"""The checked-in JSON Schemas are the models' own, and accept what the models write."""

from __future__ import annotations

import json

import jsonschema

from adapters.canonical_schema import MODELS, canonical_schemas, schema_text
from adapters.population import Population
from gateway.resources import resource_dir

DIRECTORY = resource_dir("schemas") / "jsonschema"
REGENERATE = "regenerate with: .venv/bin/python -m adapters.canonical_schema"


def test_the_checked_in_schemas_match_the_models():
    for name, schema in canonical_schemas().items():
        path = DIRECTORY / name
        assert path.is_file(), f"schemas/jsonschema/{name} is missing; {REGENERATE}"
        assert path.read_text(encoding="utf-8") == schema_text(schema), (
            f"schemas/jsonschema/{name} differs from the model; {REGENERATE}"
        )


def test_no_schema_is_checked_in_for_a_model_that_is_not_generated():
    stray = {path.name for path in DIRECTORY.glob("*.json")} - set(canonical_schemas())
    assert not stray, f"schemas/jsonschema has files no model generates: {sorted(stray)}; delete them"


def test_one_schema_per_model_on_the_wire():
    assert {model.__name__ for model in MODELS} >= {
        "ReleaseNotice", "EmploymentNotice", "ContinuityOfCareNotice", "PreTrialReport",
        "HealthSummary", "SocialStatus", "AssistanceReferral", "Attachment",
    }


def test_the_schemas_accept_what_the_models_write_for_the_whole_population():
    validators = {
        name.removesuffix(".json"): jsonschema.Draft202012Validator(
            json.loads((DIRECTORY / name).read_text(encoding="utf-8")),
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        for name in canonical_schemas()
    }
    for person in Population(size=300):
        records = {"HealthSummary": person.health, "SocialStatus": person.social, "Attachment": person.attachment,
                   "ReleaseNotice": person.release}
        for model, record in records.items():
            if record is not None:
                validators[model].validate(record.model_dump(mode="json"))


def test_the_schemas_refuse_an_unknown_field_and_a_malformed_iin():
    schema = json.loads((DIRECTORY / "HealthSummary.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"iin": "900215300028", "history": []})
    assert not validator.is_valid({"iin": "90021530002"})
    assert validator.is_valid({"iin": "900215300028"})
