"""The view-models without a window: binding, family members, settings, messages."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from mobile_app.phone import Phone
from mobile_app.profile import load_profile
from mobile_app.viewmodels.bind import BindViewModel
from mobile_app.viewmodels.display import DISPLAY
from mobile_app.viewmodels.messages import MessagesViewModel
from mobile_app.viewmodels.settings import SettingsViewModel
from mobile_app.viewmodels.today import TodayViewModel
from protocols.messages import EdgeConfig, EdgeMode, RevisitReminder
from tests.mobile_app.fakes import FakeProvisioner


def test_view_models_never_open_a_window() -> None:
    """Importing and using them must not pull in kivy.core.window (which opens one)."""
    script = (
        "import sys, tempfile, pathlib\n"
        "from mobile_app.viewmodels import bind, history, measure, messages, settings, today\n"
        "from mobile_app.viewmodels import questionnaire\n"
        "from mobile_app.phone import Phone\n"
        "phone = Phone(pathlib.Path(tempfile.mkdtemp()), cloud_url='http://x')\n"
        "today.TodayViewModel(phone).refresh(); settings.SettingsViewModel(phone)\n"
        "questionnaire.QuestionnaireViewModel(phone).open('none')\n"
        "assert 'kivy.core.window' not in sys.modules, 'a window was created'\n"
        "assert not any(m.startswith('kivy.uix') for m in sys.modules), 'widgets imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "KIVY_NO_ARGS": "1",
            "KIVY_NO_CONSOLELOG": "1",
            "KIVY_NO_FILELOG": "1",
            "KIVY_HOME": "/tmp/kivy-home-vm",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    provisioner = FakeProvisioner({"ABCD-2345": "P-1", "WIFE-0001": "P-2"})
    phone = Phone(tmp_path, cloud_url="http://127.0.0.1:9", provisioner=provisioner)
    yield phone
    await phone.stop()
    phone.close()
    DISPLAY.lang, DISPLAY.scale = "zh_CN", 1.25


async def test_binding_with_a_code_then_adding_and_choosing_a_family_member(
    phone: Phone, tmp_path: Path
) -> None:
    vm = BindViewModel(phone)
    vm.code = "ABC"
    assert not await vm.submit()
    assert vm.error == "绑定码应为 8 位字母或数字，例如 ABCD-2345。" and not vm.bound
    vm.code = "zzzz-9999"
    assert not await vm.submit()
    assert vm.error == "没有找到这个绑定码，请检查后再试。"

    vm.code = "abcd 2345"
    assert await vm.submit()
    assert vm.bound and vm.error == "" and phone.edge is not None
    assert vm.members == [{"patient_id": "P-1", "name": "本人", "current": True}]
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "profile.json").stat().st_mode & 0o777 == 0o600

    vm.member_code, vm.member_name = "WIFE-0001", "老伴"
    assert await vm.add_member()
    vm.choose("P-2")
    assert [m["current"] for m in vm.members] == [False, True]
    saved = load_profile(tmp_path)
    assert saved is not None and saved.current_patient_id == "P-2"
    assert not (tmp_path / "member-credentials.json").exists()

    vm.member_code = "WIFE-0001"
    assert not await vm.add_member()
    assert vm.error == "这个绑定码已用过或已过期，请向个案管理师要一个新的。"

    today = TodayViewModel(phone)
    today.refresh(datetime(2026, 3, 14, 19, 0).astimezone())
    assert today.greeting == "老伴，您好" and today.measuring_for == "当前就诊人：老伴"
    assert [s["state"] for s in today.slots] == ["missed", "todo"]

    # The pathway's revisits arrive in the cloud's configuration; the soonest of the member's
    # own is the one shown.
    assert phone.edge is not None
    await phone.edge.agent.downlink.apply_config(
        EdgeConfig(
            edge_id=phone.edge.agent.settings.edge_id,
            issued_at=datetime(2026, 3, 14, 8, 0, tzinfo=UTC),
            mode=EdgeMode.HOME,
            revisits=[
                RevisitReminder(patient_id=p, due_on=d, window_days=3, title=title)
                for p, d, title in [
                    ("P-1", date(2026, 3, 16), "心内科"),
                    ("P-2", date(2026, 4, 2), "内分泌科"),
                    ("P-2", date(2026, 3, 20), "心内科"),
                ]
            ],
        )
    )
    today.refresh(datetime(2026, 3, 14, 19, 0).astimezone())
    assert today.reminders[0] == "复诊：3月20日 心内科"


async def test_settings_change_every_screen_and_sign_out_keeps_unsent_readings(
    phone: Phone, tmp_path: Path
) -> None:
    await phone.bind("ABCD-2345")
    settings = SettingsViewModel(phone)
    settings.set_font_scale(1.5)
    settings.set_language("en")
    assert (DISPLAY.scale, DISPLAY.fs(20)) == (1.5, 30.0)
    assert DISPLAY.t("nav_measure") == "Measure"
    with pytest.raises(ValueError):
        settings.set_font_scale(3.0)
    reopened = Phone(tmp_path, cloud_url="http://x")
    assert reopened.profile is not None
    assert (reopened.profile.language, reopened.profile.font_scale) == ("en", 1.5)
    reopened.close()

    from simulators.readings import SimulatedCuff

    assert phone.edge is not None
    await phone.edge.submit(SimulatedCuff("BP-1").measure(150, 95, 80, patient_id="P-1"))
    assert not await settings.sign_out()
    assert "have not uploaded" in settings.message and phone.bound
    assert await settings.sign_out(force=True)
    assert not phone.bound and not (tmp_path / "credentials.json").exists()


async def test_medication_reminders_are_set_checked_and_shown(phone: Phone) -> None:
    await phone.bind("ABCD-2345")
    vm = MessagesViewModel(phone)
    vm.medicine_name, vm.medicine_time = "氨氯地平", "8点"
    assert not vm.add_reminder()
    assert vm.error == "时间请写成 08:00 这样。"
    vm.medicine_time = "08:00"
    assert vm.add_reminder()
    assert vm.reminders == [{"index": 0, "text": "08:00  氨氯地平"}]
    zone = datetime.now().astimezone().tzinfo
    vm._checked_at = datetime(2026, 3, 14, 7, 59, tzinfo=zone)
    due = vm.check_reminders(datetime(2026, 3, 14, 8, 0, 30, tzinfo=zone))
    assert [r.at for r in due] == [time(8)] and vm.banner == "该吃药了：氨氯地平"
    vm.dismiss_banner()
    vm.remove_reminder(0)
    assert vm.reminders == [] and vm.banner == ""
