"""The measure flow without a cloud: the real drivers over bleak → bumble → emulated cuff
and meter, the embedded agent's outbox, the patient's verdict; the broker is unreachable,
so everything waits to upload."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mobile_app.phone import Phone
from mobile_app.simulated import SelfStartingCuff, SimulatedHome, recent_meter
from mobile_app.viewmodels.history import HistoryViewModel
from mobile_app.viewmodels.measure import MeasureViewModel
from simulators.ble.devices.glucose_meter import MEAL_FASTING, MEAL_POSTPRANDIAL
from tests.mobile_app.fakes import FakeProvisioner


def _home() -> SimulatedHome:
    return SimulatedHome(
        cuff=SelfStartingCuff([(185, 125, 96)], step_interval=0.005, start_after=0.05),
        meter=recent_meter(((5.6, MEAL_FASTING), (7.9, MEAL_POSTPRANDIAL), (6.4, None))),
    )


@contextlib.asynccontextmanager
async def _bound_phone(tmp_path: Path) -> AsyncIterator[tuple[Phone, SimulatedHome]]:
    """A phone bound to P-1 in a simulated home; its broker port is closed."""
    async with _home() as home:
        phone = Phone(
            tmp_path,
            cloud_url="http://127.0.0.1:9",
            backends=home.backends,
            provisioner=FakeProvisioner({"ABCD-2345": "P-1"}),
        )
        await phone.bind("abcd 2345")
        try:
            yield phone, home
        finally:
            await phone.stop()
            phone.close()


async def test_a_crisis_on_the_cuff_is_shown_with_advice_and_waits_offline(tmp_path: Path) -> None:
    async with _bound_phone(tmp_path) as (phone, home):
        vm = MeasureViewModel(phone, scan_timeout=1.0, wait_s=5.0)
        found = await vm.find()
        assert vm.stage == "choose"
        kinds = {d.kind.value for d in found}
        assert kinds == {"blood_pressure_monitor", "glucose_meter"}
        stages: list[str] = []
        vm.bind(stage=lambda _vm, stage: stages.append(stage))
        cuff = next(i for i, d in enumerate(found) if d.kind.value == "blood_pressure_monitor")

        recorded = await vm.take(cuff)

        assert recorded is not None
        assert stages[:3] == ["connecting", "waiting", "measuring"]
        assert home.cuff.cuff_pressures_sent and vm.cuff_text.startswith("袖带压力")
        assert (vm.stage, vm.result_text, vm.tier) == ("result", "185/125", "see_doctor")
        assert vm.tier_text == "!! 需要尽快就医"
        assert "请坐下休息 5 分钟，然后再测一次。" in vm.advice
        assert vm.advice[-1] == "联网后会自动通知您的个案管理师。"
        assert (vm.sync, vm.sync_text) == ("waiting", "○ 等待上传")
        states = await phone.states(recorded.measurement.reading_ids)
        assert set(states.values()) == {"pending"}
        assert [d.kind for d in phone.profile.devices] == ["blood_pressure_monitor"]


async def test_glucose_without_meal_context_asks_for_it(tmp_path: Path) -> None:
    async with _bound_phone(tmp_path) as (phone, _home_devices):
        vm = MeasureViewModel(phone, scan_timeout=1.0, wait_s=5.0)
        found = await vm.find()
        meter = next(i for i, d in enumerate(found) if d.kind.value == "glucose_meter")

        assert await vm.take(meter) is None
        assert vm.stage == "meal" and vm.status_text == "这次血糖是什么时候测的？"
        recorded = await vm.answer_meal("fasting")

        assert recorded is not None
        assert (vm.result_text, vm.tier) == ("6.4", "in_target")
        (newest,) = [r for r in recorded.readings if r.metric.value == "glucose"]
        assert newest.context.meal is not None and newest.context.meal.value == "fasting"
        history = HistoryViewModel(phone)
        await history.show(chart="glucose", days=90)
        # The meter's three records are all kept, each waiting for the broker.
        assert len(history.rows) == 3
        assert {row["sync"] for row in history.rows} == {"waiting"}
        assert len(history.series[0]) == 3
