"""Pathway templates: the shipped ones validate; bad ones fail naming the problem; an
enrolment date becomes dated tasks cut to the package's course."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from cloud.programmes.errors import PathwayInvalid
from cloud.programmes.instantiate import instantiate
from cloud.programmes.packages import load_packages, measurement_plan
from cloud.programmes.pathway import ActionKind, parse_pathway, shipped_pathways

TZ = "Asia/Shanghai"
# 10:00 in Shanghai on Monday 2 November 2026.
ENROLLED = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_three_pathways_ship_and_validate():
    pathways = shipped_pathways()
    assert set(pathways) == {"hypertension", "type2_diabetes", "heart_failure"}
    for p in pathways.values():
        kinds = {a.kind for phase in p.phases for a in phase.actions}
        assert {
            ActionKind.FOLLOW_UP_CALL,
            ActionKind.QUESTIONNAIRE,
            ActionKind.EDUCATION,
            ActionKind.MEASUREMENT_PLAN,
            ActionKind.REVISIT_REMINDER,
            ActionKind.LIFESTYLE_CHECK_IN,
        } == kinds
        assert p.thresholds and p.warning_signs


def test_hypertension_enrolment_gives_dated_tasks():
    tasks = instantiate(shipped_pathways()["hypertension"], ENROLLED, 90, TZ)
    by_key = {t.action_key: t for t in tasks}
    assert by_key["bp_plan_intensive"].due_at == ENROLLED  # in force from enrolment
    assert by_key["call_first"].due_at.isoformat() == "2026-11-03T09:00:00+08:00"
    assert by_key["form_week1"].due_at.isoformat() == "2026-11-05T09:00:00+08:00"
    assert by_key["revisit_month1"].due_at.isoformat() == "2026-11-30T09:00:00+08:00"
    assert by_key["bp_plan_maintain"].due_at.isoformat() == "2026-12-02T00:00:00+08:00"
    # Repeating calls every 14 days from day 30 up to day 89.
    assert [t.due_at.day for t in tasks if t.action_key.startswith("call_maintain#")] == [
        2,
        16,
        30,
        13,
        27,
    ]
    assert by_key["bp_plan_intensive"].detail["ends_at"] == "2026-11-16T00:00:00+08:00"
    assert by_key["call_first"].detail["script"][0].startswith("核对身份")


def test_a_two_week_package_gets_only_the_first_two_weeks():
    tasks = instantiate(shipped_pathways()["hypertension"], ENROLLED, 14, TZ)
    assert max(t.due_at for t in tasks).isoformat() == "2026-11-10T09:00:00+08:00"
    assert {t.phase for t in tasks} == {"stabilise"}


def _valid() -> dict:
    return copy.deepcopy(shipped_pathways()["hypertension"].model_dump(mode="json"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["phases"][0]["actions"][2].pop("script"), "needs `script`"),
        (lambda d: d["phases"][0]["actions"][0].update(kind="telepathy"), "kind"),
        (lambda d: d["phases"][0]["actions"][1].update(key="call_first"), "unique"),
        (lambda d: d["phases"][1].update(start_day=10), "overlap"),
        (lambda d: d["phases"][0]["actions"][2].update(day=30), "falls after the phase"),
        (lambda d: d.update(colour="blue"), "Extra inputs"),
        (
            lambda d: d["phases"][0]["actions"][3].update(questionnaire="nope"),
            "unknown questionnaires",
        ),
    ],
)
def test_invalid_templates_are_refused_with_the_reason(change, message):
    data = _valid()
    change(data)
    with pytest.raises(PathwayInvalid, match=message):
        parse_pathway(data, {"htn_follow_up", "dm_follow_up", "hf_follow_up"})


def test_seed_001_packages_load_with_their_measurement_plans():
    packages = load_packages()
    assert len(packages) == 10
    assert [p.price_cents for p in packages][:3] == [4900, 9900, 29500]
    assert {p.pathway_id for p in packages} <= set(shipped_pathways())
    two_weeks = measurement_plan(shipped_pathways()["hypertension"], 14)
    assert [(m["metric"], m["times_per_day"]) for m in two_weeks] == [("systolic", 2)]
