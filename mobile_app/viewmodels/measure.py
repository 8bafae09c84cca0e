"""测量: find a device, guide the measurement, show what the result means and what next."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bleak.exc import BleakError
from kivy.event import EventDispatcher
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    OptionProperty,
    StringProperty,
)

from device_drivers.errors import DriverError
from edge_agent.outbox import OutboxFullError
from mobile_app import android
from mobile_app.measuring import FoundDevice, TakenMeasurement, measure, scan
from mobile_app.phone import Phone, Recorded
from mobile_app.profile import PairedDevice
from mobile_app.tiers import TIER_COLOURS, PatientTier
from mobile_app.viewmodels.display import DISPLAY
from protocols.metrics import Metric
from protocols.reading import DeviceKind, MealContext

STAGES = (
    "idle",
    "scanning",
    "choose",
    "connecting",
    "waiting",
    "measuring",
    "reading",
    "meal",
    "result",
    "error",
)
_STAGE_TEXT = {
    "scanning": "scanning",
    "choose": "choose_device",
    "connecting": "connecting",
    "waiting": "press_start",
    "measuring": "keep_still",
    "reading": "reading_meter",
    "meal": "meal_question",
}
_TIER_TEXT = {
    PatientTier.IN_TARGET: "tier_in_target",
    PatientTier.HIGH: "tier_high",
    PatientTier.LOW: "tier_low",
    PatientTier.SEE_DOCTOR: "tier_see_doctor",
}
MEAL_CHOICES = (
    (MealContext.FASTING, "meal_fasting"),
    (MealContext.BEFORE_MEAL, "meal_before"),
    (MealContext.AFTER_MEAL, "meal_after"),
    (MealContext.BEDTIME, "meal_bedtime"),
    (MealContext.RANDOM, "meal_random"),
)
NOMINAL_PEAK_MMHG = 180.0


def cuff_progress(pressures: Sequence[float]) -> float:
    """0 → 0.5 while the cuff inflates, 0.5 → 1 while it lets the pressure down.

    The peak is not known in advance: inflation is scaled to a nominal 180 mmHg (or the
    highest pressure seen, if higher), deflation from the peak down to 40 mmHg."""
    if not pressures:
        return 0.0
    peak = max(pressures)
    current = pressures[-1]
    if current >= peak:
        return 0.5 * min(1.0, current / max(peak, NOMINAL_PEAK_MMHG))
    floor = 40.0
    return 0.5 + 0.5 * min(1.0, (peak - current) / max(peak - floor, 1.0))


def sync_key(states: Sequence[str]) -> str:
    """One state for a measurement's readings, as the patient sees it."""
    if states and all(s == "acked" for s in states):
        return "uploaded"
    if any(s == "rejected" for s in states):
        return "rejected"
    return "waiting"


class MeasureViewModel(EventDispatcher):
    stage = OptionProperty("idle", options=STAGES)
    status_text = StringProperty("")
    devices = ListProperty()
    """[{"index", "text"}] of found devices."""
    cuff_pressure = NumericProperty(0)
    cuff_text = StringProperty("")
    progress = NumericProperty(0.0)
    result_text = StringProperty("")
    result_unit = StringProperty("")
    detail_text = StringProperty("")
    tier = StringProperty("")
    tier_text = StringProperty("")
    tier_colour = ListProperty([0, 0, 0, 1])
    advice = ListProperty()
    sync = StringProperty("")
    """waiting | uploaded | rejected, for the measurement on screen."""
    sync_text = StringProperty("")
    abnormal = BooleanProperty(False)

    def __init__(
        self,
        phone: Phone,
        *,
        permissions: Callable[[], Awaitable[bool]] = android.ensure_permissions,
        scan_timeout: float = 4.0,
        wait_s: float = 90.0,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.phone = phone
        self._permissions = permissions
        self.scan_timeout = scan_timeout
        self.wait_s = wait_s
        self.found: list[FoundDevice] = []
        self.last: Recorded | None = None
        self._pending: TakenMeasurement | None = None
        self._pressures: list[float] = []

    def _set_stage(self, stage: str) -> None:
        self.stage = stage
        key = _STAGE_TEXT.get(stage)
        self.status_text = DISPLAY.t(key) if key else ""

    async def find(self) -> list[FoundDevice]:
        if not await self._permissions():
            self._fail(DISPLAY.t("bluetooth_needed"))
            return []
        self._set_stage("scanning")
        try:
            self.found = await scan(self.phone.backends, self.scan_timeout)
        except (DriverError, BleakError) as exc:  # BleakError: the adapter is off
            self._fail(DISPLAY.t("measure_failed", reason=exc))
            return []
        self.devices = [
            {"index": i, "text": f"{d.name}  ({d.entry.title})"} for i, d in enumerate(self.found)
        ]
        if not self.found:
            self._fail(DISPLAY.t("no_devices"))
        else:
            self._set_stage("choose")
        return self.found

    async def take(self, index: int) -> Recorded | None:
        """Measure with the chosen device; ends on the result, the meal question or an error."""
        device = self.found[index]
        self._pressures = []
        self.progress, self.cuff_text = 0.0, ""
        try:
            taken = await measure(
                device,
                self.phone.backends,
                on_stage=self._set_stage,
                on_cuff_pressure=self._on_cuff,
                wait_s=self.wait_s,
            )
        except DriverError as exc:
            self._fail(DISPLAY.t("measure_failed", reason=exc.reason))
            return None
        self._remember(device)
        if taken.result is None:
            await self._record(taken)
            self._fail(DISPLAY.t("no_result"))
            return None
        if device.kind is DeviceKind.GLUCOSE_METER and taken.result.context.meal is None:
            self._pending = taken
            self._set_stage("meal")
            return None
        return await self._show(await self._record(taken))

    async def answer_meal(self, meal: str) -> Recorded | None:
        taken, self._pending = self._pending, None
        if taken is None:
            return None
        return await self._show(await self._record(taken, MealContext(meal)))

    async def _record(
        self, taken: TakenMeasurement, meal: MealContext | None = None
    ) -> Recorded | None:
        try:
            return await self.phone.record(taken, meal=meal)
        except OutboxFullError:
            # Nothing was taken: the records stay on the device for a later session.
            self._fail(DISPLAY.t("storage_full"))
            return None

    def _on_cuff(self, mmhg: float) -> None:
        self._pressures.append(mmhg)
        self.cuff_pressure = mmhg
        self.cuff_text = DISPLAY.t("cuff_pressure", value=round(mmhg))
        self.progress = cuff_progress(self._pressures)

    def _remember(self, device: FoundDevice) -> None:
        profile = self.phone.profile
        if profile is None or any(d.address == device.address for d in profile.devices):
            return
        profile.devices.append(PairedDevice(device.address, device.kind.value, device.name))
        self.phone.save()

    async def _show(self, recorded: Recorded | None) -> Recorded | None:
        if recorded is None:
            if self.stage != "error":
                self._fail(DISPLAY.t("no_result"))
            return None
        self.last = recorded
        values = recorded.measurement.values
        if Metric.SYSTOLIC.value in values:
            self.result_text = (
                f"{values[Metric.SYSTOLIC.value]:.0f}/{values[Metric.DIASTOLIC.value]:.0f}"
            )
            self.result_unit = DISPLAY.t("unit_mmhg")
            pulse = values.get(Metric.PULSE_RATE.value)
            self.detail_text = "" if pulse is None else DISPLAY.t("pulse_value", value=round(pulse))
        else:
            self.result_text = f"{values[Metric.GLUCOSE.value]:.1f}"
            self.result_unit = DISPLAY.t("unit_mmol")
            self.detail_text = ""
        verdict = recorded.verdict
        tier = verdict.tier if verdict else PatientTier.IN_TARGET
        self.tier = tier.value
        self.tier_text = DISPLAY.t(_TIER_TEXT[tier])
        self.tier_colour = list(TIER_COLOURS[tier])
        self.abnormal = bool(verdict and verdict.abnormal)
        self.progress = 1.0
        self._set_stage("result")
        await self.refresh_sync()
        return recorded

    async def refresh_sync(self) -> str:
        """Ask the outbox how the shown measurement is doing; the advice follows it."""
        if self.last is None:
            return ""
        states = await self.phone.states(self.last.measurement.reading_ids)
        sync = sync_key(list(states.values()))
        self.sync = sync
        self.sync_text = DISPLAY.t(f"sync_{sync}")
        verdict = self.last.verdict
        advice = [DISPLAY.t(key) for key in (verdict.advice if verdict else ())]
        if verdict and verdict.alerts_case_manager:
            told = "advice_cm_told" if self.sync == "uploaded" else "advice_cm_will_be_told"
            advice.append(DISPLAY.t(told))
        self.advice = advice
        return sync

    def reset(self) -> None:
        self._pending = None
        self.devices = []
        self._set_stage("idle")

    def _fail(self, message: str) -> None:
        self.stage = "error"
        self.status_text = message
