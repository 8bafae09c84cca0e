"""The metric vocabulary: one canonical UCUM unit and one LOINC code per metric."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Metric(StrEnum):
    GLUCOSE = "glucose"
    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    MEAN_ARTERIAL_PRESSURE = "mean_arterial_pressure"
    PULSE_RATE = "pulse_rate"
    SPO2 = "spo2"
    WEIGHT = "weight"
    HEIGHT = "height"
    BMI = "bmi"
    BODY_FAT = "body_fat"
    MUSCLE_MASS = "muscle_mass"
    BODY_WATER = "body_water"
    BASAL_METABOLISM = "basal_metabolism"
    IMPEDANCE = "impedance"


@dataclass(frozen=True, slots=True)
class MetricInfo:
    metric: Metric
    unit: str
    """Canonical unit, UCUM case-sensitive code."""
    loinc: str | None
    """LOINC code for FHIR Observation.code; None where no code has been reviewed."""
    name_zh: str
    name_en: str
    decimals: int
    """Decimals worth showing; storage keeps the full value."""


METRICS: dict[Metric, MetricInfo] = {
    info.metric: info
    for info in (
        MetricInfo(Metric.GLUCOSE, "mmol/L", "15074-8", "血糖", "Glucose", 1),
        MetricInfo(Metric.SYSTOLIC, "mm[Hg]", "8480-6", "收缩压", "Systolic pressure", 0),
        MetricInfo(Metric.DIASTOLIC, "mm[Hg]", "8462-4", "舒张压", "Diastolic pressure", 0),
        MetricInfo(
            Metric.MEAN_ARTERIAL_PRESSURE,
            "mm[Hg]",
            "8478-0",
            "平均动脉压",
            "Mean arterial pressure",
            0,
        ),
        MetricInfo(Metric.PULSE_RATE, "/min", "8867-4", "脉率", "Pulse rate", 0),
        MetricInfo(Metric.SPO2, "%", "59408-5", "血氧饱和度", "SpO2", 0),
        MetricInfo(Metric.WEIGHT, "kg", "29463-7", "体重", "Body weight", 2),
        MetricInfo(Metric.HEIGHT, "m", "8302-2", "身高", "Body height", 2),
        MetricInfo(Metric.BMI, "kg/m2", "39156-5", "体重指数", "BMI", 1),
        MetricInfo(Metric.BODY_FAT, "%", "41982-0", "体脂率", "Body fat", 1),
        MetricInfo(Metric.MUSCLE_MASS, "kg", "73964-9", "肌肉量", "Muscle mass", 1),
        MetricInfo(Metric.BODY_WATER, "kg", "73706-4", "身体水分", "Body water", 1),
        MetricInfo(Metric.BASAL_METABOLISM, "kcal/d", "83513-8", "基础代谢", "Basal metabolism", 0),
        MetricInfo(Metric.IMPEDANCE, "Ohm", None, "生物电阻抗", "Impedance", 1),
    )
}


def canonical_unit(metric: Metric) -> str:
    return METRICS[metric].unit
