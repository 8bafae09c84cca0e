"""Service packages (服务套餐) as configuration: the file format and its validation. Pure.

A hospital's packages are a JSON file (`packages/seed001.json` is seed 001's ten packages,
the demo configuration). The measurement plan a package shows comes from its pathway, so
the two cannot disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.programmes.errors import PathwayInvalid
from cloud.programmes.pathway import ActionKind, Pathway

SEED_PACKAGES = Path(__file__).with_name("packages") / "seed001.json"


class Package(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    name: str = Field(min_length=1)
    name_en: str = ""
    duration_days: int = Field(ge=1, le=366)
    price_cents: int = Field(ge=0)
    disease: str = Field(min_length=1)
    pathway_id: str
    care_team_roles: list[str] = []
    description: str = ""


def load_packages(path: Path = SEED_PACKAGES) -> list[Package]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    try:
        return [Package.model_validate(item) for item in data["packages"]]
    except (ValidationError, KeyError) as exc:
        raise PathwayInvalid(f"{path.name}: {exc}") from exc


def measurement_plan(pathway: Pathway, duration_days: int) -> list[dict[str, Any]]:
    """What the patient measures in each phase the package's course reaches."""
    plan = []
    for phase in pathway.phases:
        if phase.start_day >= duration_days:
            continue
        for action in phase.actions:
            if action.kind is ActionKind.MEASUREMENT_PLAN:
                plan += [
                    {
                        "phase": phase.key,
                        "from_day": phase.start_day + action.day,
                        "to_day": min(phase.end_day, duration_days),
                        "metric": m.metric.value,
                        "times_per_day": m.times_per_day,
                        "how": m.how,
                    }
                    for m in action.measurements
                ]
    return plan
