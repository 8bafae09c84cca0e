"""记录: per-metric charts over 7 / 30 / 90 days with the target band, and every
measurement with its upload state, so the patient can see nothing was lost."""

from __future__ import annotations

from datetime import datetime, timedelta

from kivy.event import EventDispatcher
from kivy.properties import ListProperty, NumericProperty, OptionProperty, StringProperty

from mobile_app.phone import Phone
from mobile_app.tiers import target_band
from mobile_app.viewmodels.display import DISPLAY
from mobile_app.viewmodels.measure import sync_key
from protocols.metrics import Metric

CHARTS = {
    "bp": (Metric.SYSTOLIC, Metric.DIASTOLIC),
    "glucose": (Metric.GLUCOSE,),
}
PERIODS = (7, 30, 90)


def chart_series(
    points: list[tuple[datetime, float]], start: datetime, end: datetime
) -> list[tuple[float, float]]:
    """(x in 0..1 across the period, value), oldest first."""
    span = (end - start).total_seconds() or 1.0
    return sorted(((at - start).total_seconds() / span, value) for at, value in points)


class HistoryViewModel(EventDispatcher):
    chart = OptionProperty("bp", options=tuple(CHARTS))
    days = NumericProperty(7)
    series = ListProperty()
    """One list of (x, y) per metric of the chart."""
    band = ListProperty([0.0, 0.0])
    y_range = ListProperty([0.0, 1.0])
    rows = ListProperty()
    """[{"text", "sync", "sync_text"}], newest first."""
    summary = StringProperty("")

    def __init__(self, phone: Phone, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.phone = phone

    async def refresh(self, now: datetime | None = None) -> None:
        profile = self.phone.profile
        if profile is None:
            return
        now = now or datetime.now().astimezone()
        start = now - timedelta(days=int(self.days))
        stored = self.phone.store.measurements(profile.current_patient_id, since=start)
        metrics = CHARTS[self.chart]
        self.series = [
            chart_series(
                [
                    (m.measured_at, m.values[metric.value])
                    for m in stored
                    if metric.value in m.values
                ],
                start,
                now,
            )
            for metric in metrics
        ]
        low = min(target_band(metric)[0] for metric in metrics)
        high = max(target_band(metric)[1] for metric in metrics)
        self.band = [low, high]
        values = [y for line in self.series for _, y in line] + [low, high]
        margin = (max(values) - min(values)) * 0.1 or 1.0
        self.y_range = [min(values) - margin, max(values) + margin]
        ids = [rid for m in stored for rid in m.reading_ids]
        states = await self.phone.states(ids) if ids else {}
        rows = []
        for m in stored:
            key = sync_key([states.get(rid, "unknown") for rid in m.reading_ids])
            rows.append(
                {
                    "text": f"{m.measured_at.astimezone(now.tzinfo):%m-%d %H:%M}  "
                    f"{_value_text(m.values)}",
                    "sync": key,
                    "sync_text": DISPLAY.t(f"sync_{key}"),
                }
            )
        self.rows = rows
        self.summary = DISPLAY.t("all_saved") if rows else DISPLAY.t("history_empty")

    async def show(self, chart: str | None = None, days: int | None = None) -> None:
        if chart is not None:
            self.chart = chart
        if days is not None:
            self.days = days
        await self.refresh()


def _value_text(values: dict[str, float]) -> str:
    if Metric.SYSTOLIC.value in values and Metric.DIASTOLIC.value in values:
        bp = f"{values[Metric.SYSTOLIC.value]:.0f}/{values[Metric.DIASTOLIC.value]:.0f}"
        return f"{DISPLAY.t('metric_bp')} {bp}"
    if Metric.GLUCOSE.value in values:
        return f"{DISPLAY.t('metric_glucose')} {values[Metric.GLUCOSE.value]:.1f}"
    return ", ".join(f"{k} {v:g}" for k, v in values.items())
