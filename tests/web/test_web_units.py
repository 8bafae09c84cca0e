"""Pure parts of the web layer: chart bands and tiers, the text catalogue, the same-origin
check, and the page shown when set-up has not installed the front-end assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from cloud.alerts.thresholds import Tier
from cloud.settings import CloudSettings
from cloud.web import charts, i18n, session
from cloud.web import pages as web_pages
from cloud.web.assets import NODE_MODULES, missing_assets
from protocols.metrics import Metric


def test_target_band_is_the_doctors_target_else_the_default_target_rules():
    default = charts.target_band(Metric.SYSTOLIC, ["hypertension"], None)
    assert (default.low, default.high, default.set_by_doctor) == (None, 135, False)
    assert charts.target_band(Metric.SYSTOLIC, [], None).high is None
    doctor = charts.target_band(Metric.SYSTOLIC, ["hypertension"], {"low": 100, "high": 140})
    assert (doctor.low, doctor.high, doctor.set_by_doctor) == (100, 140, True)


def test_point_tier_is_the_most_urgent_threshold_crossed():
    thresholds = charts.context_free_thresholds(Metric.SYSTOLIC, ["hypertension"])
    assert charts.tier_of(188, thresholds) is Tier.CRITICAL
    assert charts.tier_of(165, thresholds) is Tier.HIGH
    assert charts.tier_of(85, thresholds) is Tier.HIGH
    assert charts.tier_of(120, thresholds) is None
    copd = charts.context_free_thresholds(Metric.SPO2, ["copd"])
    assert charts.tier_of(89, copd) is not Tier.CRITICAL  # COPD has its own SpO2 targets


def test_chart_spec_leaves_context_dependent_glucose_targets_off_the_lines():
    spec = charts.chart_spec("glucose", ["diabetes"], {})
    values = {th["value"] for th in spec["series"][0]["thresholds"]}
    assert {3.0, 3.9, 16.7, 33.3} <= values and 7.0 not in values


def test_texts_default_to_chinese_and_fall_back_without_showing_keys():
    assert i18n.pick_language(None) == "zh-CN" and i18n.pick_language("fr") == "zh-CN"
    assert i18n.translator("en")("wb.title") == "Workbench"
    assert i18n.translator("zh-CN")("wb.page", page=2, total=9) == "第 2 页，共 9 项"
    assert i18n.translator("en")("action.something_new") == "something_new"
    assert set(i18n.CATALOGUE["en"]) <= set(i18n.CATALOGUE["zh-CN"])
    assert all(k.startswith("wb.") for k in i18n.client_texts("en", ("wb.",)))


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "headers": raw, "path": "/"})


def test_same_origin_needs_an_origin_or_referer_naming_this_host():
    assert session.same_origin(_request({"host": "a:8080", "origin": "http://a:8080"}))
    assert session.same_origin(_request({"host": "a:8080", "referer": "http://a:8080/x"}))
    assert not session.same_origin(_request({"host": "a:8080", "origin": "http://b:8080"}))
    assert not session.same_origin(_request({"host": "a:8080"}))


def test_pages_explain_missing_assets_instead_of_loading_without_charts(tmp_path: Path):
    app = FastAPI()
    app.state.settings = CloudSettings(web_node_modules=str(tmp_path))
    web_pages.install(app)
    client = TestClient(app)
    response = client.get("/login")
    assert response.status_code == 503
    assert "scripts/setup.sh" in response.text and "echarts.min.js" in response.text
    assert client.get("/assets/echarts.min.js").status_code == 404
    assert missing_assets(NODE_MODULES) == [], "set-up should have installed the npm packages"
