"""JSON Schemas of every message, generated from the models.

`python -m protocols.schema_export` rewrites `protocols/schemas/`; the test suite fails when
the checked-in files differ from what the models generate, so a third-party gateway can
trust them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from protocols.messages import (
    Ack,
    AssignmentResult,
    EdgeConfig,
    EdgeStatus,
    MeasurementAssignment,
    PatientNotification,
    QuestionnaireAnswers,
    QuestionnaireAnswersResult,
    ReadingsBatch,
)
from protocols.reading import Reading

SCHEMA_DIR = Path(__file__).with_name("schemas")

MODELS: dict[str, type[BaseModel]] = {
    "reading": Reading,
    "readings_batch": ReadingsBatch,
    "ack": Ack,
    "edge_status": EdgeStatus,
    "edge_config": EdgeConfig,
    "patient_notification": PatientNotification,
    "measurement_assignment": MeasurementAssignment,
    "assignment_result": AssignmentResult,
    "questionnaire_answers": QuestionnaireAnswers,
    "questionnaire_answers_result": QuestionnaireAnswersResult,
}


def render(name: str) -> str:
    schema = MODELS[name].model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"carebridge/v1/{name}.schema.json"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for name in MODELS:
        path = directory / f"{name}.schema.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_all():
        sys.stdout.write(f"wrote {written_path}\n")
