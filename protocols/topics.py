"""MQTT topic names. Every topic carries the protocol major version and the edge's id.

Edges publish only under their own `edges/<edge_id>/` branch; the broker's ACL enforces it.
"""

from __future__ import annotations

import re

ROOT = "carebridge/v1"
INGEST_SHARE_GROUP = "ingest"

_EDGE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def _edge(edge_id: str) -> str:
    if not _EDGE_ID.match(edge_id):
        raise ValueError(f"invalid edge id {edge_id!r}: 1-64 of A-Z a-z 0-9 _ -")
    return f"{ROOT}/edges/{edge_id}"


def readings(edge_id: str) -> str:
    """Edge → cloud, QoS 1: `ReadingsBatch`."""
    return f"{_edge(edge_id)}/readings"


def acks(edge_id: str) -> str:
    """Cloud → edge, QoS 1: `Ack` of what the cloud has stored or dead-lettered."""
    return f"{_edge(edge_id)}/acks"


def status(edge_id: str) -> str:
    """Edge → cloud, retained, also the edge's last will: `EdgeStatus`."""
    return f"{_edge(edge_id)}/status"


def config(edge_id: str) -> str:
    """Cloud → edge, retained: `EdgeConfig`."""
    return f"{_edge(edge_id)}/config"


def notifications(edge_id: str) -> str:
    """Cloud → edge, QoS 1: `PatientNotification` for the app on that edge."""
    return f"{_edge(edge_id)}/notifications"


def assignments(edge_id: str) -> str:
    """Edge → cloud, QoS 1: `MeasurementAssignment` made by centre staff on the edge."""
    return f"{_edge(edge_id)}/assignments"


def assignment_results(edge_id: str) -> str:
    """Cloud → edge, QoS 1: `AssignmentResult` of an edge's assignment."""
    return f"{_edge(edge_id)}/assignment-results"


def questionnaire_answers(edge_id: str) -> str:
    """Edge → cloud, QoS 1: `QuestionnaireAnswers` the patient gave in the app."""
    return f"{_edge(edge_id)}/questionnaire-answers"


def questionnaire_answer_results(edge_id: str) -> str:
    """Cloud → edge, QoS 1: `QuestionnaireAnswersResult` (stored or rejected)."""
    return f"{_edge(edge_id)}/questionnaire-answer-results"


ALL_READINGS = f"{ROOT}/edges/+/readings"
ALL_ASSIGNMENTS = f"{ROOT}/edges/+/assignments"
ALL_QUESTIONNAIRE_ANSWERS = f"{ROOT}/edges/+/questionnaire-answers"
ALL_STATUS = f"{ROOT}/edges/+/status"


def shared(topic_filter: str, group: str = INGEST_SHARE_GROUP) -> str:
    """An MQTT v5 shared subscription: the broker splits messages across the group."""
    return f"$share/{group}/{topic_filter}"


def is_assignments(topic: str) -> bool:
    return topic.startswith(f"{ROOT}/edges/") and topic.endswith("/assignments")


def is_questionnaire_answers(topic: str) -> bool:
    return topic.startswith(f"{ROOT}/edges/") and topic.endswith("/questionnaire-answers")


def edge_id_of(topic: str) -> str | None:
    """The edge id inside a topic of ours, or None when the topic is not ours."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != f"{ROOT}/edges":
        return None
    return parts[3] if _EDGE_ID.match(parts[3]) else None
