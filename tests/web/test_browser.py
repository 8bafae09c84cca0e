"""Issue 7's acceptance in headless Chromium (Debian's, driven by Playwright): a case
manager signs in, a critical reading published by a simulated device appears on the open
workbench without a reload, a call about it is logged, it is resolved with an outcome, the
reading shows on the patient's chart, and a case manager of another team cannot open the
patient. Screenshots are saved under test-artifacts/web/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from protocols.reading import Source
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter
from tests.conftest import PASSWORD
from tests.web.conftest import WebStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Browser, stack: WebStack, username: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{stack.base_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.keyboard.press("Enter")
    return page


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter(el => el.type !== 'hidden')
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML.slice(0, 80))"""


def assert_labelled(page: Page) -> None:
    """Every control has a label (or, for a button, its text): keyboard and screen-reader
    users can tell what each one is."""
    assert page.evaluate(UNLABELLED) == []


def test_critical_reading_reaches_the_open_workbench_is_resolved_and_charted(
    browser: Browser, web_stack: WebStack
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = sign_in(browser, web_stack, "cm-a")
    expect(page).to_have_url(f"{web_stack.base_url}/workbench")
    expect(page.locator("#live")).to_have_text("实时更新已连接", timeout=10_000)
    page.evaluate("window.__sameDocument = true")

    cuff = SimulatedCuff("WEB-BP-CRISIS")
    web_stack.publish(cuff.measure(188, 114, 96, patient_id="P-100"))

    row = page.locator("tr[data-patient='P-100']", has_text="危急")
    expect(row).to_be_visible(timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(row.locator(".due")).to_contain_text("剩余")
    assert_labelled(page)
    page.screenshot(path=str(SCREENSHOTS / "workbench.png"), full_page=True)

    alert_id = row.get_attribute("data-alert")
    row.get_by_role("button", name="记录联系").click()
    contact = page.locator("#contact-dialog")
    contact.get_by_label("结果").select_option("reached")
    contact.get_by_label("备注").fill("患者头痛，已嘱休息后复测")
    contact.get_by_role("button", name="保存").click()
    expect(page.locator("#toast")).to_have_text("已保存")

    row.get_by_role("button", name="解决").click()
    dialog = page.locator("#resolve-dialog")
    dialog.get_by_label("处理结果").select_option("sent_to_clinic")
    dialog.get_by_label("备注").fill("已电话联系，安排今日门诊")
    dialog.get_by_role("button", name="保存").click()
    expect(page.locator(f"tr[data-alert='{alert_id}']")).to_have_count(0, timeout=10_000)
    ((status, outcome),) = web_stack.sql(
        "SELECT status, outcome_code FROM alerts WHERE alert_id = %s", alert_id
    )
    assert (status, outcome) == ("resolved", "sent_to_clinic")

    page.goto(f"{web_stack.base_url}/patients/P-100")
    expect(page.locator("#charts")).to_have_attribute("data-ready", "1", timeout=10_000)
    charted = page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById('chart-blood_pressure'))
                 .getOption().series[0].data.filter(d => d.value[1] === 188)
                 .map(d => d.tier)"""
    )
    assert charted == ["critical"]
    expect(page.locator("table.readings")).to_contain_text("WEB-BP-CRISIS")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("已安排门诊")
    expect(timeline).to_contain_text("患者头痛，已嘱休息后复测")
    assert_labelled(page)
    page.screenshot(path=str(SCREENSHOTS / "patient.png"), full_page=True)
    page.goto(f"{web_stack.base_url}/patients/P-100/summary")
    expect(page.locator("#charts")).to_have_attribute("data-ready", "1", timeout=10_000)
    pdf = page.pdf(format="A4")
    (SCREENSHOTS / "summary.pdf").write_bytes(pdf)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1, "the summary is not one page"
    print(f"screenshots in {SCREENSHOTS}")

    other = sign_in(browser, web_stack, "cm-b")
    expect(other).to_have_url(f"{web_stack.base_url}/workbench")
    response = other.goto(f"{web_stack.base_url}/patients/P-100")
    assert response is not None and response.status == 404
    expect(other.locator("main")).to_contain_text("没有这个患者")
    expect(other.locator("#queue")).to_have_count(0)


def test_centre_station_confirms_an_unassigned_reading_to_the_chosen_patient(
    browser: Browser, web_stack: WebStack
):
    cuff = SimulatedCuff("WEB-BP-CENTRE", source=Source.CENTRE)
    web_stack.publish(cuff.measure(128, 82, 70, patient_id=None), edge_id="centre-web")
    page = sign_in(browser, web_stack, "hm-a")
    expect(page).to_have_url(f"{web_stack.base_url}/centre")
    page.get_by_label("患者编号（可扫码）").fill("P-100")
    page.keyboard.press("Enter")
    expect(page.locator("#current-patient")).to_contain_text("P-100")
    waiting = page.locator("#unassigned tr", has_text="WEB-BP-CENTRE")
    expect(waiting).to_be_visible(timeout=15_000)
    waiting.get_by_role("button", name="确认归属到当前患者").click()
    expect(page.locator("#patient-readings")).to_contain_text("WEB-BP-CENTRE", timeout=10_000)
    expect(page.locator("#unassigned tr", has_text="WEB-BP-CENTRE")).to_have_count(0)
    assert_labelled(page)
    page.screenshot(path=str(SCREENSHOTS / "centre.png"), full_page=True)


def test_centre_station_shows_new_readings_from_the_event_stream_without_polling(
    browser: Browser, web_stack: WebStack
):
    page = sign_in(browser, web_stack, "hm-a")
    expect(page).to_have_url(f"{web_stack.base_url}/centre")
    # No timers at all: whatever appears after the first load came through /centre/events.
    page.add_init_script("window.setInterval = () => 0; window.setTimeout = () => 0;")
    page.goto(f"{web_stack.base_url}/centre?patient=P-100")
    expect(page.locator("#centre-live")).to_have_attribute("data-state", "on", timeout=10_000)
    expect(page.locator("#unassigned")).not_to_contain_text("加载中")
    cuff = SimulatedCuff("WEB-BP-LIVE", source=Source.CENTRE)
    web_stack.publish(cuff.measure(131, 84, 71, patient_id=None), edge_id="centre-web")
    expect(page.locator("#unassigned tr", has_text="WEB-BP-LIVE")).to_be_visible(timeout=10_000)
    mine = SimulatedCuff("WEB-BP-MINE", source=Source.CENTRE)
    web_stack.publish(mine.measure(126, 80, 69, patient_id="P-100"), edge_id="centre-web")
    expect(page.locator("#patient-readings")).to_contain_text("WEB-BP-MINE", timeout=10_000)


def test_an_alert_raised_before_the_live_stream_opens_shows_once_it_opens(
    browser: Browser, web_stack: WebStack
):
    """Notices are not replayed: the workbench reloads its list when its stream opens, so
    an alert raised between rendering the page and the stream's start is not missed."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    held: list[Route] = []
    page.route("**/api/v1/queue/events", lambda route: held.append(route))  # until released
    page.goto(f"{web_stack.base_url}/login")
    page.get_by_label("用户名").fill("cm-a")
    page.get_by_label("密码").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{web_stack.base_url}/workbench")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the workbench did not open its event stream"

    web_stack.publish(SimulatedGlucoseMeter("WEB-GLU-GAP").measure(2.4, patient_id="P-100"))
    alert_id = None
    for _ in range(150):
        found = web_stack.sql(
            "SELECT a.alert_id FROM alerts a JOIN readings r ON r.reading_id = ANY(a.reading_ids) "
            "WHERE r.device_serial = 'WEB-GLU-GAP' AND a.status = 'open'"
        )
        if found:
            alert_id = found[0][0]
            break
        page.wait_for_timeout(100)
    assert alert_id is not None, "the glucose reading raised no alert"
    row = page.locator(f"tr[data-alert='{alert_id}']")
    expect(row).to_have_count(0)  # raised after the page was rendered: not in its list

    held[0].continue_()
    expect(page.locator("#live")).to_have_text("实时更新已连接", timeout=10_000)
    expect(row).to_be_visible(timeout=10_000)
