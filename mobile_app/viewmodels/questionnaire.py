"""Answering a follow-up questionnaire (随访问卷) on the phone.

The forms come with the cloud's configuration (`EdgeConfig.questionnaires`); the skip
logic is the protocol's (`protocols.questionnaires.visible_questions`), so the screen asks
exactly the questions the cloud will accept answers to. Submitting keeps the answers in
the agent's SQLite file (durable at once, works offline); they reach the case manager
when the phone is online: ○ 等待上传 until the cloud confirms, then ✓ 已提交.
"""

from __future__ import annotations

from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, StringProperty

from edge_agent.answer_sync import Answer, AnswersIncomplete, KeptAnswers, check_answers
from mobile_app.phone import Phone
from mobile_app.viewmodels.display import DISPLAY
from protocols.questionnaires import Question, Questionnaire, visible_questions

STATE_KEYS = {
    "": "answers_to_do",
    "pending": "answers_pending",
    "stored": "answers_stored",
    "rejected": "sync_rejected",
}


def _form_title(form: Questionnaire) -> str:
    return form.title_en if DISPLAY.lang == "en" and form.title_en else form.title


def _question_text(question: Question) -> str:
    return question.text_en if DISPLAY.lang == "en" and question.text_en else question.text


class QuestionnaireViewModel(EventDispatcher):
    forms = ListProperty()
    """[{"questionnaire_id", "title", "state", "state_text"}]: the forms this member can
    answer, with the state of their latest answers ("" when not answered yet)."""
    title = StringProperty("")
    questions = ListProperty()
    """The questions shown now: [{"id", "text", "type", "options": [{"value", "label",
    "chosen"}], "value"}]; re-computed on every answer (the skip logic)."""
    error = StringProperty("")
    status = StringProperty("")
    submitted = BooleanProperty(False)

    def __init__(self, phone: Phone, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.phone = phone
        self.form: Questionnaire | None = None
        self.answers: dict[str, Answer] = {}

    def _forms(self) -> dict[str, Questionnaire]:
        return {} if self.phone.edge is None else self.phone.edge.questionnaires

    def _patient_id(self) -> str | None:
        profile = self.phone.profile
        return None if profile is None else profile.current_patient_id

    async def refresh(self) -> None:
        patient_id = self._patient_id()
        if patient_id is None or self.phone.edge is None:
            self.forms = []
            return
        latest: dict[str, KeptAnswers] = {}
        for kept in await self.phone.edge.kept_answers([patient_id]):
            latest[kept.questionnaire_id] = kept
        states = {form_id: kept.state for form_id, kept in latest.items()}
        self.forms = [
            {
                "questionnaire_id": form_id,
                "title": _form_title(form),
                "state": states.get(form_id, ""),
                "state_text": DISPLAY.t(STATE_KEYS[states.get(form_id, "")]),
            }
            for form_id, form in self._forms().items()
        ]
        if self.form is not None and self.submitted:
            mine = latest.get(self.form.questionnaire_id)
            if mine is not None:
                self.status = DISPLAY.t(STATE_KEYS[mine.state])

    def open(self, questionnaire_id: str) -> bool:
        form = self._forms().get(questionnaire_id)
        if form is None:
            return False
        self.form, self.answers = form, {}
        self.title = _form_title(form)
        self.error = self.status = ""
        self.submitted = False
        self._show()
        return True

    def choose(self, question_id: str, value: str) -> None:
        """A tap on an option: a single choice replaces, a multiple choice toggles."""
        question = self._question(question_id)
        if question.type == "multi":
            chosen = list(self.answers.get(question_id) or [])  # type: ignore[arg-type]
            chosen = [v for v in chosen if v != value] if value in chosen else [*chosen, value]
            if chosen:
                self.answers[question_id] = chosen
            else:
                self.answers.pop(question_id, None)
        else:
            self.answers[question_id] = value
        self._show()

    def enter_number(self, question_id: str, entered: str) -> bool:
        self._question(question_id)
        try:
            number = float(entered.strip())
        except ValueError:
            self.error = DISPLAY.t("answers_number")
            return False
        self.answers[question_id] = int(number) if number.is_integer() else number
        self.error = ""
        self._show()
        return True

    async def submit(self) -> bool:
        form, patient_id = self.form, self._patient_id()
        if form is None or patient_id is None or self.phone.edge is None:
            return False
        try:
            check_answers(form, self.answers)
        except AnswersIncomplete:
            self.error = DISPLAY.t("answers_missing")
            return False
        await self.phone.edge.submit_answers(patient_id, form, dict(self.answers))
        self.submitted, self.error = True, ""
        self.status = DISPLAY.t("answers_pending")
        await self.refresh()
        return True

    def _question(self, question_id: str) -> Question:
        if self.form is None:
            raise LookupError("no questionnaire is open")
        for question in self.form.questions:
            if question.id == question_id:
                return question
        raise LookupError(question_id)

    def _show(self) -> None:
        assert self.form is not None
        shown = visible_questions(self.form, self.answers)
        # An answer the skip logic now hides (the patient changed an earlier one) goes.
        visible_ids = {q.id for q in shown}
        self.answers = {k: v for k, v in self.answers.items() if k in visible_ids}
        self.questions = [self._row(q) for q in shown]

    def _row(self, question: Question) -> dict[str, Any]:
        given = self.answers.get(question.id)
        chosen = set(given) if isinstance(given, list) else {given}
        return {
            "id": question.id,
            "text": _question_text(question),
            "type": question.type,
            "options": [
                {"value": o.value, "label": o.label, "chosen": o.value in chosen}
                for o in question.options
            ],
            "value": "" if given is None or isinstance(given, list) else str(given),
        }
