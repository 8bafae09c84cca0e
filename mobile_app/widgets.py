"""Widgets the KV files use beyond Kivy's own: the trend chart and list helpers.

Everything a patient touches is at least `MIN_TOUCH_DP` tall (the KV rules of
`common.kv`); colours always come with words or symbols.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kivy.graphics import Color, Line, Rectangle
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.widget import Widget

SERIES_COLOURS = ((0.1, 0.3, 0.75, 1), (0.55, 0.2, 0.6, 1))
BAND_COLOUR = (0.75, 0.92, 0.75, 1)


class TrendChart(Widget):
    """Lines over a period with the target band shaded; x in 0..1, y in `y_range`."""

    series = ListProperty()
    band = ListProperty([0.0, 0.0])
    y_range = ListProperty([0.0, 1.0])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(
            pos=self.redraw,
            size=self.redraw,
            series=self.redraw,
            band=self.redraw,
            y_range=self.redraw,
        )

    def _y(self, value: float) -> float:
        low, high = self.y_range
        return float(self.y + (value - low) / ((high - low) or 1.0) * self.height)

    def redraw(self, *_: object) -> None:
        self.canvas.clear()
        with self.canvas:
            Color(1, 1, 1, 1)
            Rectangle(pos=self.pos, size=self.size)
            Color(*BAND_COLOUR)
            bottom, top = self._y(self.band[0]), self._y(self.band[1])
            Rectangle(pos=(self.x, bottom), size=(self.width, max(top - bottom, 0)))
            for line, colour in zip(self.series, SERIES_COLOURS, strict=False):
                points = [coord for x, y in line for coord in (self.x + x * self.width, self._y(y))]
                Color(*colour)
                if len(points) >= 4:
                    Line(points=points, width=2)
                for index in range(0, len(points), 2):
                    Line(circle=(points[index], points[index + 1], 5), width=2)


class ChoiceButton(Button):
    """One of a set of options; the chosen one is marked by colour and by ✓ in its text."""

    chosen = BooleanProperty(False)


class HistoryRow(BoxLayout):
    text = StringProperty("")
    sync_text = StringProperty("")


class MessageCard(BoxLayout):
    title = StringProperty("")
    body = StringProperty("")


class StagePanel(BoxLayout):
    """A part of a screen drawn from its view-model (`vm`)."""

    vm = ObjectProperty(None, rebind=True)


def fill(container: Widget, children: Iterable[Widget]) -> None:
    """Replace a list container's children (lists here are a handful of rows)."""
    container.clear_widgets()
    for child in children:
        container.add_widget(child)
