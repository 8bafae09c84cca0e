"""Typed errors of the programme slice (all `CareBridgeError`, each with a stable code)."""

from __future__ import annotations

from protocols.errors import CareBridgeError


class PathwayInvalid(CareBridgeError):
    code = "pathway_invalid"


class QuestionnaireInvalid(CareBridgeError):
    code = "questionnaire_invalid"


class AnswersInvalid(CareBridgeError):
    code = "answers_invalid"


class DischargeListInvalid(CareBridgeError):
    code = "discharge_list_invalid"


class EnrolmentRefused(CareBridgeError):
    code = "enrolment_refused"


class SampleExists(CareBridgeError):
    code = "qc_sample_exists"
