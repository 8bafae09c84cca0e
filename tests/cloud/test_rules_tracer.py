"""Alert evaluation over readings: BP sessions, single values, data quality."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.alerts.rules import PatientProfile, blood_pressure, evaluate
from cloud.alerts.thresholds import Cohort, Tier
from protocols.reading import MealContext, StatusFlag
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "rule", "tier"),
    [
        (179, 109, "bp.grade2", Tier.HIGH),
        (180, 90, "bp.crisis", Tier.CRITICAL),
        (150, 110, "bp.crisis", Tier.CRITICAL),
        (130, 80, None, None),
    ],
)
def test_a_single_cuff_measurement(systolic, diastolic, rule, tier):
    readings = SimulatedCuff("C1").measure(systolic, diastolic, 80, patient_id="P1", at=NOW)
    found = evaluate(readings)
    assert [(a.rule_id, a.tier) for a in found] == ([(rule, tier)] if rule else [])
    if tier is Tier.CRITICAL:
        assert found[0].explanation["repeat_due_minutes"] == 15
        assert {r["metric"] for r in found[0].explanation["readings"]} == {"systolic", "diastolic"}


def test_the_session_average_decides_and_a_repeat_clears_the_repeat_request():
    cuff = SimulatedCuff("C1")
    first = cuff.measure(184, 100, 80, patient_id="P1", at=NOW)
    second = cuff.measure(170, 96, 80, patient_id="P1", at=NOW + timedelta(minutes=6))
    found = evaluate(second, history=first)
    assert [(a.rule_id, a.tier) for a in found] == [("bp.grade2", Tier.HIGH)]
    session = found[0].explanation["session"]
    assert session == {
        "measurements": 2,
        "window_minutes": 10.0,
        "systolic_mean": 177.0,
        "diastolic_mean": 98.0,
    }
    assert "repeat_due_minutes" not in found[0].explanation


def test_readings_older_than_the_session_window_do_not_count():
    cuff = SimulatedCuff("C1")
    earlier = cuff.measure(120, 70, 80, patient_id="P1", at=NOW - timedelta(minutes=11))
    found = evaluate(cuff.measure(182, 95, 80, patient_id="P1", at=NOW), history=earlier)
    assert found[0].explanation["session"]["measurements"] == 1


def test_glucose_uses_its_meal_context_and_the_patients_cohort():
    meter = SimulatedGlucoseMeter("G1")
    fasting = meter.measure(7.5, patient_id="P2", meal=MealContext.FASTING, at=NOW)
    diabetic = {"P2": PatientProfile("P2", frozenset({Cohort.DIABETES}))}
    assert [a.rule_id for a in evaluate(fasting, profiles=diabetic)] == [
        "glucose.fasting.above_target"
    ]
    assert evaluate(fasting) == []
    (hypo,) = evaluate(meter.measure(2.6, patient_id="P2", at=NOW))
    assert (hypo.rule_id, hypo.tier) == ("glucose.hypo.level2", Tier.CRITICAL)
    assert hypo.explanation["summary"] == "glucose 2.6 < 3"


def test_device_problems_become_a_data_quality_task_not_a_clinical_alert():
    readings = SimulatedCuff("C1").measure(128, 80, 70, patient_id="P3", at=NOW)
    flagged = [r.model_copy(update={"flags": frozenset({StatusFlag.CUFF_LOOSE})}) for r in readings]
    (task,) = evaluate(flagged)
    assert (task.kind, task.rule_id, task.tier) == (
        "data_quality",
        "data_quality.check_device",
        Tier.LOW,
    )
    assert "cuff_loose" in task.explanation["summary"]


def test_unassigned_centre_reading_raises_no_alert_until_it_has_a_patient():
    readings = SimulatedCuff("C1").measure(200, 120, 80, patient_id=None, at=NOW)
    assert evaluate(readings) == []


def test_a_session_split_inside_one_batch_is_still_averaged():
    cuff = SimulatedCuff("C1")
    first = cuff.measure(184, 100, 80, patient_id="P1", at=NOW)
    second = cuff.measure(170, 96, 80, patient_id="P1", at=NOW + timedelta(minutes=2))
    found = evaluate(first + second)
    sessions = sorted(a.explanation["session"]["measurements"] for a in found)
    assert sessions == [1, 2]  # the first alone, then both together


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["P1", "P2"]),
            st.integers(min_value=0, max_value=40),  # minutes after NOW, ties included
            st.integers(min_value=110, max_value=200),
            st.booleans(),  # stored before the flush, or in it
        ),
        min_size=1,
        max_size=14,
    )
)
def test_a_flush_judges_each_cuff_session_as_the_whole_history_would(plan):
    """Each measurement's session is looked up by time; the reference hands every cuff
    reading of the patient to `blood_pressure`, which keeps the window's own."""
    cuff = SimulatedCuff("C1")
    stored: list = []
    flush: list = []
    for patient, minute, systolic, earlier in plan:
        readings = cuff.measure(
            systolic, 85, 80, patient_id=patient, at=NOW + timedelta(minutes=minute)
        )
        (stored if earlier else flush).extend(readings)
    everything = stored + flush
    expected = []
    for measurement in _measurements(flush):
        patient = measurement[0].patient_id
        own = [r for r in everything if r.patient_id == patient]
        found = blood_pressure(measurement, own, PatientProfile(patient))
        expected += [found] if found else []
    assert evaluate(flush, history=stored) == expected


def _measurements(readings):
    groups: dict = {}
    for r in readings:
        groups.setdefault(r.measurement_id, []).append(r)
    return list(groups.values())
