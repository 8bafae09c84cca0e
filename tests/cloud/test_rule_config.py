import copy

import pytest

from cloud.alerts.rule_config import (
    RuleSetError,
    default_rule_set_json,
    rule_set_from_json,
    rule_set_to_json,
)
from cloud.alerts.thresholds import DEFAULT_RULES, Tier, judge_value
from protocols.metrics import Metric


def test_the_default_rule_set_round_trips_through_json():
    assert rule_set_from_json(default_rule_set_json()) == DEFAULT_RULES
    assert rule_set_to_json(rule_set_from_json(default_rule_set_json())) == (
        default_rule_set_json()
    )


def test_a_hospital_can_tighten_a_threshold():
    data = copy.deepcopy(default_rule_set_json())
    data["name"], data["version"] = "cardiology", "2026-12"
    for rule in data["thresholds"]:
        if rule["rule_id"] == "bp.grade2.systolic":
            rule["value"] = 150
    rules = rule_set_from_json(data)
    assert judge_value(Metric.SYSTOLIC, 152, rules=rules).tier is Tier.HIGH
    assert judge_value(Metric.SYSTOLIC, 152) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["thresholds"].append(dict(d["thresholds"][0])), "unique"),
        (
            lambda d: d.update(
                thresholds=[t for t in d["thresholds"] if not t["rule_id"].startswith("spo2")]
            ),
            "critical rules for spo2",
        ),
        (lambda d: d["thresholds"][0].update(op="~"), "thresholds.0.op"),
        (lambda d: d.update(surprise=True), "surprise"),
    ],
)
def test_a_broken_rule_set_is_refused_with_the_reason(change, message):
    data = copy.deepcopy(default_rule_set_json())
    change(data)
    with pytest.raises(RuleSetError, match=message):
        rule_set_from_json(data)
