"""Issue 8's acceptance in headless Chromium: on the README demo's data, qc01 opens 质控 and
sees last month's score (the API's figure) with its charts drawn, every control labelled,
a sampled case's review dialog opened and closed from the keyboard and a review saved
through the API; 项目与入组 lists the enrolled patients with their pathway progress.
Screenshots: test-artifacts/web/."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from devstack.demo import DEMO_PASSWORD
from tests.web.conftest import WebStack
from tests.web.test_browser import SCREENSHOTS, assert_labelled
from tests.web.test_browser import browser as browser  # the module's Chromium fixture


def test_qc01_sees_last_months_score_with_charts_and_the_enrolled_patients(
    browser: Browser, web_stack: WebStack, demo_programmes: dict[str, object]
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{web_stack.base_url}/login")
    page.get_by_label("用户名").fill("qc01")
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{web_stack.base_url}/workbench")
    page.get_by_role("link", name="质控", exact=True).click()
    expect(page.locator("h1")).to_contain_text(str(demo_programmes["month"]))
    expect(page.locator('[data-figure="total"]')).to_have_text(f"{demo_programmes['total']:g}")
    for chart in ("chart-components", "chart-trend"):
        expect(page.locator(f"#{chart} canvas")).to_have_count(1)
    assert_labelled(page)

    score = page.locator("button.score-case").first
    score.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#review-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("结论")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    enrolment = score.get_attribute("data-enrolment")
    score.click()
    dialog.get_by_label("结论").select_option("true")
    dialog.get_by_label("复核意见").fill("复核：随访记录完整")
    dialog.get_by_role("button", name="保存").click()
    review = page.locator(f"#sample-cases tr[data-enrolment='{enrolment}'] td.review")
    expect(review).to_contain_text("复核：随访记录完整", timeout=10_000)
    page.screenshot(path=str(SCREENSHOTS / "qc.png"), full_page=True)

    page.get_by_role("link", name="项目与入组", exact=True).click()
    expect(page.locator("#enrolments tbody tr")).to_have_count(18)
    expect(page.locator("#enrolments")).to_contain_text("已完成")
    assert_labelled(page)
    page.screenshot(path=str(SCREENSHOTS / "programmes.png"), full_page=True)
