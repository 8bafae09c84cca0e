from datetime import UTC, datetime

import pytest

from protocols.metrics import Metric
from protocols.plausibility import LIMITS, Verdict, assess_measurement, assess_value
from protocols.reading import DeviceKind, DeviceRef, Reading, Source, StatusFlag


@pytest.mark.parametrize(
    ("metric", "value", "verdict"),
    [
        (Metric.SYSTOLIC, 900, Verdict.REJECT),
        (Metric.SYSTOLIC, 300, Verdict.FLAG),
        (Metric.SYSTOLIC, 300.1, Verdict.REJECT),
        (Metric.SYSTOLIC, 260, Verdict.ACCEPT),
        (Metric.SYSTOLIC, 261, Verdict.FLAG),
        (Metric.SYSTOLIC, 60, Verdict.ACCEPT),
        (Metric.SYSTOLIC, 59, Verdict.FLAG),
        (Metric.SYSTOLIC, 39, Verdict.REJECT),
        (Metric.SPO2, 100, Verdict.ACCEPT),
        (Metric.SPO2, 101, Verdict.REJECT),
        (Metric.SPO2, 69, Verdict.FLAG),
        (Metric.SPO2, 49, Verdict.REJECT),
        (Metric.GLUCOSE, 33.3, Verdict.ACCEPT),
        (Metric.GLUCOSE, 36.0, Verdict.FLAG),  # a mg/dL value sent as mmol/L looks like this
        (Metric.GLUCOSE, 0, Verdict.REJECT),
        (Metric.WEIGHT, 0, Verdict.REJECT),
        (Metric.WEIGHT, 20, Verdict.FLAG),
        (Metric.PULSE_RATE, 0, Verdict.REJECT),
    ],
)
def test_value_verdicts_on_both_sides_of_each_boundary(metric, value, verdict):
    assert assess_value(metric, value).verdict is verdict


def test_rejection_names_the_value_and_the_range():
    assessment = assess_value(Metric.SYSTOLIC, 900)
    assert assessment.reason == "systolic 900 is outside what a person can have (40–300)"


def test_meter_lo_hi_are_real_extremes_never_rejected():
    assert assess_value(Metric.GLUCOSE, 0.0, [StatusFlag.VALUE_LO]).verdict is Verdict.ACCEPT
    assert assess_value(Metric.GLUCOSE, 200.0, [StatusFlag.VALUE_HI]).verdict is Verdict.ACCEPT


def test_every_metric_has_ordered_limits():
    for metric in Metric:
        lim = LIMITS[metric]
        assert lim.reject_below <= lim.low < lim.high <= lim.reject_above


def _cuff(sys_, dia):
    device = DeviceRef(kind=DeviceKind.BLOOD_PRESSURE_MONITOR, model="m", serial="s")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Reading.create(
            device=device,
            record_key="seq:1",
            metric=m,
            value=v,
            unit="mmHg",
            measured_at=now,
            received_at=now,
            source=Source.HOME,
        )
        for m, v in ((Metric.SYSTOLIC, sys_), (Metric.DIASTOLIC, dia))
    ]


def test_systolic_not_above_diastolic_rejects_the_cuff_measurement():
    result = assess_measurement(_cuff(80, 90))
    assert {a.verdict for a in result.values()} == {Verdict.REJECT}
    assert "not above diastolic" in next(iter(result.values())).reason


def test_narrow_pulse_pressure_is_flagged_not_rejected():
    result = assess_measurement(_cuff(100, 90))
    assert {a.verdict for a in result.values()} == {Verdict.FLAG}


def test_ordinary_cuff_measurement_is_accepted():
    result = assess_measurement(_cuff(128, 82))
    assert {a.verdict for a in result.values()} == {Verdict.ACCEPT}
