import pytest

from protocols.errors import UnknownUnitError
from protocols.metrics import METRICS, Metric
from protocols.units import to_canonical


@pytest.mark.parametrize(
    ("metric", "value", "unit", "expected"),
    [
        # Anchors from clinical_rules.md §2.
        (Metric.GLUCOSE, 54, "mg/dL", 3.0),
        (Metric.GLUCOSE, 70, "mg/dL", 3.9),
        (Metric.GLUCOSE, 180, "mg/dL", 10.0),
        (Metric.GLUCOSE, 250, "mg/dL", 13.9),
        (Metric.GLUCOSE, 600, "mg/dL", 33.3),
        (Metric.GLUCOSE, 0.0054, "mol/L", 5.4),
        (Metric.GLUCOSE, 0.00099, "kg/L", 5.5),  # 99 mg/dL as BLE sends it
        (Metric.SYSTOLIC, 16.0, "kPa", 120.0),
        (Metric.DIASTOLIC, 80, "mmHg", 80.0),
        (Metric.WEIGHT, 154.0, "lb", 69.85),
        (Metric.WEIGHT, 130, "斤", 65.0),
        (Metric.HEIGHT, 172, "cm", 1.72),
        (Metric.BASAL_METABOLISM, 6276, "kJ", 1500.0),
    ],
)
def test_converts_device_units_to_canonical(metric, value, unit, expected):
    assert round(to_canonical(metric, value, unit), 2) == pytest.approx(expected, abs=0.05)


def test_unit_of_another_quantity_is_refused_with_the_reason():
    with pytest.raises(UnknownUnitError, match="cannot express glucose"):
        to_canonical(Metric.GLUCOSE, 5.0, "kg")


def test_every_metric_has_a_canonical_unit_that_converts_to_itself():
    for metric, info in METRICS.items():
        assert to_canonical(metric, 42.0, info.unit) == 42.0
