from datetime import UTC, datetime

import pytest

from cloud.alerts.rules import Tier, evaluate
from simulators.readings import SimulatedCuff

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "alerts"),
    [(179, 109, 0), (180, 90, 1), (150, 110, 1), (185, 115, 1)],
)
def test_bp_crisis_boundaries(systolic, diastolic, alerts):
    readings = SimulatedCuff("C1").measure(systolic, diastolic, 80, patient_id="P1", at=NOW)
    found = evaluate(readings)
    assert len(found) == alerts
    if found:
        assert found[0].tier is Tier.CRITICAL
        assert found[0].rule_id == "bp.crisis"
        assert {r["metric"] for r in found[0].explanation["readings"]} == {"systolic", "diastolic"}


def test_unassigned_centre_reading_raises_no_alert_until_it_has_a_patient():
    readings = SimulatedCuff("C1").measure(200, 120, 80, patient_id=None, at=NOW)
    assert evaluate(readings) == []
