"""JSON Schema for the canonical records that travel as JSON, generated from the models.

The files under ``schemas/jsonschema/`` are checked in so that integration
engineers can validate payloads without Python; a test fails when they drift from
the models. Regenerate them with::

    .venv/bin/python -m adapters.canonical_schema

The schemas describe what the gateway accepts (pydantic's validation mode):
strict objects (no unknown fields), IINs as 12-digit strings, dates as ISO 8601.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.domain import PlanNotice, ProbationNotice
from gateway.domain import (
    AssistanceReferral,
    Attachment,
    ContinuityOfCareNotice,
    EmploymentNotice,
    HealthSummary,
    PreTrialReport,
    ReleaseNotice,
    SocialStatus,
)
from gateway.resources import resource_dir

__all__ = ["MODELS", "canonical_schemas", "schema_text", "write_canonical_schemas"]

MODELS: tuple[type[BaseModel], ...] = (
    ReleaseNotice,
    EmploymentNotice,
    ContinuityOfCareNotice,
    PreTrialReport,
    HealthSummary,
    SocialStatus,
    AssistanceReferral,
    Attachment,
    ProbationNotice,
    PlanNotice,
)
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def canonical_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, one self-contained schema per model."""
    return {
        f"{model.__name__}.json": {"$schema": _DIALECT, **model.model_json_schema(mode="validation")}
        for model in MODELS
    }


def schema_text(schema: dict[str, Any]) -> str:
    """The checked-in form: indented, Cyrillic kept as written, one trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_canonical_schemas(directory: Path | None = None) -> list[Path]:
    directory = directory or resource_dir("schemas") / "jsonschema"
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in canonical_schemas().items():
        path = directory / name
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_canonical_schemas():
        print(path)
