"""The screens: thin Kivy classes whose layout is in `kv/*.kv` and whose logic is in the
view-models. The Python here only rebuilds lists and swaps the measure screen's panel."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen

from mobile_app.viewmodels.display import DISPLAY, spawn
from mobile_app.widgets import StagePanel, fill


class AppScreen(Screen):
    vm = ObjectProperty(None, rebind=True)


class BindScreen(AppScreen):
    async def submit(self) -> None:
        if await self.vm.submit():
            App.get_running_app().show("members")


class MembersScreen(AppScreen):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(members=self._rebuild)
        self._rebuild()

    def _rebuild(self, *_: object) -> None:
        fill(
            self.ids.member_list,
            (
                Factory.ChoiceButton(
                    text=("✓ " if m["current"] else "○ ") + m["name"],
                    chosen=m["current"],
                    on_release=lambda _b, pid=m["patient_id"]: self.vm.choose(pid),
                )
                for m in self.vm.members
            ),
        )


class TodayScreen(AppScreen):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(slots=self._rebuild, reminders=self._rebuild)
        self._rebuild()

    def _rebuild(self, *_: object) -> None:
        fill(
            self.ids.slot_list,
            (
                Factory.BodyLabel(
                    text=("✓ " if slot["done"] else "○ ") + slot["text"],
                    bold=not slot["done"],
                )
                for slot in self.vm.slots
            )
            if self.vm.slots
            else [Factory.BodyLabel(text=DISPLAY.t("plan_none"))],
        )
        fill(
            self.ids.reminder_list,
            (Factory.BodyLabel(text="•\u00a0" + line) for line in self.vm.reminders),
        )


class IdlePanel(StagePanel):
    pass


class BusyPanel(StagePanel):
    pass


class ChoosePanel(StagePanel):
    def on_kv_post(self, _base: Any) -> None:
        fill(
            self.ids.device_list,
            (
                Factory.BigButton(
                    text=d["text"], on_release=lambda _b, i=d["index"]: spawn(self.vm.take(i))
                )
                for d in self.vm.devices
            ),
        )


class MealPanel(StagePanel):
    def on_kv_post(self, _base: Any) -> None:
        from mobile_app.viewmodels.measure import MEAL_CHOICES

        fill(
            self.ids.meal_list,
            (
                Factory.BigButton(
                    text=DISPLAY.t(key),
                    on_release=lambda _b, meal=meal.value: spawn(self.vm.answer_meal(meal)),
                )
                for meal, key in MEAL_CHOICES
            ),
        )


class ResultPanel(StagePanel):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(advice=self._rebuild)
        self._rebuild()

    def _rebuild(self, *_: object) -> None:
        fill(self.ids.advice_list, (Factory.BodyLabel(text="•\u00a0" + a) for a in self.vm.advice))


class ErrorPanel(StagePanel):
    pass


_PANELS = {
    "idle": IdlePanel,
    "choose": ChoosePanel,
    "meal": MealPanel,
    "result": ResultPanel,
    "error": ErrorPanel,
}


class MeasureScreen(AppScreen):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(stage=self._show_stage)
        self._show_stage()

    def _show_stage(self, *_: object) -> None:
        panel = _PANELS.get(self.vm.stage, BusyPanel)
        current = self.ids.stage_area.children
        if current and type(current[0]) is panel and panel is BusyPanel:
            return
        fill(self.ids.stage_area, [panel(vm=self.vm)])


class HistoryScreen(AppScreen):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(rows=self._rebuild)
        self._rebuild()

    def _rebuild(self, *_: object) -> None:
        fill(
            self.ids.row_list,
            (
                Factory.HistoryRow(text=row["text"], sync_text=row["sync_text"])
                for row in self.vm.rows
            ),
        )


class MessagesScreen(AppScreen):
    forms_vm = ObjectProperty(None, rebind=True)
    """The questionnaire view-model: its forms are listed here, each opens its screen."""

    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(messages=self._rebuild, reminders=self._rebuild)
        self.forms_vm.bind(forms=self._rebuild)
        self._rebuild()

    def _open_form(self, questionnaire_id: str) -> None:
        if self.forms_vm.open(questionnaire_id):
            App.get_running_app().show("questionnaire")

    def _rebuild(self, *_: object) -> None:
        fill(
            self.ids.form_list,
            (
                Factory.BigButton(
                    text=f["title"] + "\n" + f["state_text"],
                    on_release=lambda _b, qid=f["questionnaire_id"]: self._open_form(qid),
                )
                for f in self.forms_vm.forms
            ),
        )
        fill(
            self.ids.message_list,
            (
                Factory.MessageCard(
                    title=("● " if m["unread"] else "")
                    + (DISPLAY.t("questionnaire") + "：" if m["kind"] == "questionnaire" else "")
                    + m["title"],
                    body=m["body"],
                )
                for m in self.vm.messages
            )
            if self.vm.messages
            else [Factory.BodyLabel(text=DISPLAY.t("messages_empty"))],
        )
        fill(
            self.ids.reminder_list,
            (
                Factory.BigButton(
                    text=r["text"] + "  " + DISPLAY.t("remove"),
                    on_release=lambda _b, i=r["index"]: self.vm.remove_reminder(i),
                )
                for r in self.vm.reminders
            ),
        )


class QuestionnaireScreen(AppScreen):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(questions=self._rebuild)
        self._rebuild()

    def _rebuild(self, *_: object) -> None:
        fill(self.ids.question_list, (w for q in self.vm.questions for w in self._widgets(q)))

    def _widgets(self, question: dict[str, Any]) -> list[Any]:
        widgets: list[Any] = [Factory.BodyLabel(text=question["text"], bold=True)]
        if question["type"] == "number":
            field = Factory.BigInput(text=question["value"], input_filter="float")
            field.bind(
                on_text_validate=lambda w, qid=question["id"]: self.vm.enter_number(qid, w.text),
                focus=lambda w, focused, qid=question["id"]: (
                    None if focused or not w.text else self.vm.enter_number(qid, w.text)
                ),
            )
            return [*widgets, field]
        for option in question["options"]:
            widgets.append(
                Factory.ChoiceButton(
                    text=("✓ " if option["chosen"] else "○ ") + option["label"],
                    chosen=option["chosen"],
                    on_release=lambda _b, qid=question["id"], v=option["value"]: self.vm.choose(
                        qid, v
                    ),
                )
            )
        return widgets


class SettingsScreen(AppScreen):
    def on_kv_post(self, _base: Any) -> None:
        self.vm.bind(devices=self._rebuild)
        self._rebuild()

    def _rebuild(self, *_: object) -> None:
        fill(
            self.ids.device_list,
            (Factory.BodyLabel(text=d) for d in self.vm.devices)
            if self.vm.devices
            else [Factory.BodyLabel(text=DISPLAY.t("devices_none"))],
        )
