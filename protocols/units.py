"""Conversions from the units devices report to each metric's canonical unit.

Factors follow `shared/docs/clinical_rules.md` §2. Glucose uses the molar mass
180.16 g/mol (mg/dL ÷ 18.016), not the rounded 18 some meters use.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols.errors import UnknownUnitError
from protocols.metrics import Metric, canonical_unit

GLUCOSE_MG_DL_PER_MMOL_L = 18.016
MMHG_PER_KPA = 7.50062
KG_PER_LB = 0.45359237
KG_PER_JIN = 0.5
KJ_PER_KCAL = 4.184

_Converter = Callable[[float], float]

# Keys are lower-cased unit spellings as devices and vendors write them.
_MASS_CONCENTRATION: dict[str, _Converter] = {
    "mmol/l": lambda v: v,
    "mg/dl": lambda v: v / GLUCOSE_MG_DL_PER_MMOL_L,
    # BLE Glucose Measurement carries kg/L or mol/L (0x2A18 flag bit 2).
    "kg/l": lambda v: v * 1e5 / GLUCOSE_MG_DL_PER_MMOL_L,
    "mol/l": lambda v: v * 1000.0,
}
_PRESSURE: dict[str, _Converter] = {
    "mm[hg]": lambda v: v,
    "mmhg": lambda v: v,
    "kpa": lambda v: v * MMHG_PER_KPA,
}
_MASS: dict[str, _Converter] = {
    "kg": lambda v: v,
    "g": lambda v: v / 1000.0,
    "[lb_av]": lambda v: v * KG_PER_LB,
    "lb": lambda v: v * KG_PER_LB,
    "jin": lambda v: v * KG_PER_JIN,
    "斤": lambda v: v * KG_PER_JIN,
}
_LENGTH: dict[str, _Converter] = {
    "m": lambda v: v,
    "cm": lambda v: v / 100.0,
    "mm": lambda v: v / 1000.0,
    "[in_i]": lambda v: v * 0.0254,
    "in": lambda v: v * 0.0254,
}
_RATE: dict[str, _Converter] = {"/min": lambda v: v, "bpm": lambda v: v, "1/min": lambda v: v}
_PERCENT: dict[str, _Converter] = {"%": lambda v: v}
_BMI: dict[str, _Converter] = {"kg/m2": lambda v: v}
_ENERGY_PER_DAY: dict[str, _Converter] = {
    "kcal/d": lambda v: v,
    "kcal": lambda v: v,
    "kj/d": lambda v: v / KJ_PER_KCAL,
    "kj": lambda v: v / KJ_PER_KCAL,
}
_RESISTANCE: dict[str, _Converter] = {"ohm": lambda v: v, "Ω": lambda v: v}

_BY_METRIC: dict[Metric, dict[str, _Converter]] = {
    Metric.GLUCOSE: _MASS_CONCENTRATION,
    Metric.SYSTOLIC: _PRESSURE,
    Metric.DIASTOLIC: _PRESSURE,
    Metric.MEAN_ARTERIAL_PRESSURE: _PRESSURE,
    Metric.PULSE_RATE: _RATE,
    Metric.SPO2: _PERCENT,
    Metric.WEIGHT: _MASS,
    Metric.HEIGHT: _LENGTH,
    Metric.BMI: _BMI,
    Metric.BODY_FAT: _PERCENT,
    Metric.MUSCLE_MASS: _MASS,
    Metric.BODY_WATER: _MASS,
    Metric.BASAL_METABOLISM: _ENERGY_PER_DAY,
    Metric.IMPEDANCE: _RESISTANCE,
}


def to_canonical(metric: Metric, value: float, unit: str) -> float:
    """Convert `value` given in `unit` to `metric`'s canonical unit.

    Raises UnknownUnitError when the unit does not measure this metric (e.g. kg for glucose).
    """
    table = _BY_METRIC[metric]
    key = unit.strip()
    converter = table.get(key) or table.get(key.lower())
    if converter is None:
        raise UnknownUnitError(
            f"unit {unit!r} cannot express {metric.value}; "
            f"expected one of {sorted(table)} (canonical {canonical_unit(metric)!r})"
        )
    return converter(value)


def accepted_units(metric: Metric) -> list[str]:
    return sorted(_BY_METRIC[metric])
