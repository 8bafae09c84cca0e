"""Answering a questionnaire on the phone, without a window and without a cloud."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mobile_app.phone import Phone
from mobile_app.viewmodels.display import DISPLAY
from mobile_app.viewmodels.questionnaire import QuestionnaireViewModel
from protocols.messages import EdgeConfig, EdgeMode
from tests.edge_agent.test_answer_sync import HTN
from tests.mobile_app.conftest import running_app, until
from tests.mobile_app.fakes import FakeProvisioner


async def _phone_with_forms(data_dir: Path) -> Phone:
    """A bound phone whose agent holds a configuration with the hypertension form."""
    phone = Phone(
        data_dir, cloud_url="http://127.0.0.1:9", provisioner=FakeProvisioner({"ABCD-2345": "P-1"})
    )
    await phone.bind("ABCD-2345")
    assert phone.edge is not None
    config = EdgeConfig(
        edge_id=phone.edge.settings.edge_id,
        issued_at=datetime(2026, 12, 1, tzinfo=UTC),
        mode=EdgeMode.HOME,
        questionnaires=[HTN],
    )
    assert await phone.edge.agent.downlink.apply_config(config)
    return phone


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    phone = await _phone_with_forms(tmp_path)
    yield phone
    await phone.stop()
    phone.close()


def _ids(vm: QuestionnaireViewModel) -> list[str]:
    return [q["id"] for q in vm.questions]


async def test_the_patient_answers_with_skip_logic_and_the_answers_wait_offline(
    phone: Phone, tmp_path: Path
) -> None:
    vm = QuestionnaireViewModel(phone)
    await vm.refresh()
    assert vm.forms == [
        {
            "questionnaire_id": "htn_follow_up",
            "title": "高血压随访表",
            "state": "",
            "state_text": "待填写",
        }
    ]
    assert not vm.open("no_such_form")
    assert vm.open("htn_follow_up") and vm.title == "高血压随访表"
    assert _ids(vm) == ["symptoms", "medication", "salt", "exercise_days"]

    vm.choose("medication", "stopped")  # shows the follow-up question
    assert _ids(vm) == ["symptoms", "medication", "stop_reason", "salt", "exercise_days"]
    vm.choose("stop_reason", "side_effect")
    vm.choose("medication", "always")  # hides it again, and its answer goes with it
    assert "stop_reason" not in _ids(vm) and "stop_reason" not in vm.answers

    vm.choose("symptoms", "headache")
    vm.choose("symptoms", "chest_pain")
    vm.choose("symptoms", "headache")  # a second tap un-ticks a multiple choice
    assert vm.answers["symptoms"] == ["chest_pain"]
    assert [o["chosen"] for o in vm.questions[0]["options"]][:3] == [False, False, True]

    assert not await vm.submit()  # salt and exercise not answered yet
    assert vm.error == "还有问题没有回答。"
    vm.choose("salt", "salty")
    assert not vm.enter_number("exercise_days", "几天")
    assert vm.error == "请填写一个数字。"
    assert vm.enter_number("exercise_days", " 1 ") and vm.answers["exercise_days"] == 1

    assert await vm.submit()
    # No broker is reachable (the fake's port is closed): kept, waiting to upload.
    assert vm.submitted and vm.status == "○ 已保存，等待上传"
    assert vm.forms[0]["state"] == "pending"

    DISPLAY.lang = "en"
    try:
        await vm.refresh()
        assert vm.forms[0]["title"] == "Hypertension follow-up"
        assert vm.forms[0]["state_text"] == "○ Saved, waiting to upload"
    finally:
        DISPLAY.lang = "zh_CN"

    # The app is closed and opened again, still offline: the answers are still waiting.
    await phone.stop()
    await phone.start()
    again = QuestionnaireViewModel(phone)
    await again.refresh()
    assert again.forms[0]["state"] == "pending"
    assert phone.edge is not None
    [kept] = await phone.edge.kept_answers(["P-1"])
    assert kept.answers == {
        "symptoms": ["chest_pain"],
        "medication": "always",
        "salt": "salty",
        "exercise_days": 1,
    }


async def test_the_questionnaire_screen_is_answered_with_taps(tmp_path: Path) -> None:
    """The KV screen on the offscreen window: 消息 → the form → options → 提交."""
    phone = await _phone_with_forms(tmp_path)
    async with running_app(phone) as ui:
        await ui.tap(ui.root.ids.nav_messages)
        messages = ui.screen("messages")
        await until(lambda: messages.ids.form_list.children, message="the form listed")
        [form_button] = messages.ids.form_list.children
        assert form_button.text == "高血压随访表\n待填写"
        await ui.tap(form_button)
        assert ui.root.current == "questionnaire"
        screen = ui.screen("questionnaire")

        def button(label: str) -> Any:
            found = [w for w in screen.ids.question_list.children if label in w.text]
            assert found, f"no {label!r} on the screen"
            return found[0]

        for label in ("没有不适", "每天按时服用", "清淡"):
            await ui.tap(button(label))
        assert button("每天按时服用").text.startswith("✓ ")
        [field] = [w for w in screen.ids.question_list.children if hasattr(w, "hint_text")]
        field.text = "3"
        field.dispatch("on_text_validate")
        await ui.shoot("20_questionnaire_answered")
        await ui.tap(screen.ids.submit)
        await until(lambda: screen.ids.status.text == "○ 已保存，等待上传", message="saved")
        await ui.shoot("21_questionnaire_waiting")
        assert ui.app.questionnaire.answers == {
            "symptoms": ["none"],
            "medication": "always",
            "salt": "light",
            "exercise_days": 3,
        }
