"""MQTT message envelopes. Every message carries `version` (the protocol's) and `type`.

The cloud takes a readings batch apart reading by reading (`split_readings_batch`), so one
bad reading is dead-lettered with its reason while the rest of its batch is stored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from protocols.errors import (
    MalformedMessageError,
    OversizedMessageError,
    SchemaViolationError,
    UnsupportedVersionError,
)
from protocols.metrics import Metric
from protocols.questionnaires import Questionnaire
from protocols.reading import DeviceKind, Identifier, Reading

PROTOCOL_VERSION: Literal[1] = 1
SUPPORTED_VERSIONS = frozenset({1})
MAX_READINGS_PER_BATCH = 1000
MAX_EDGE_PAYLOAD_BYTES = 4 * 1024 * 1024
"""The largest payload an edge may publish. A readings batch at its largest (1,000
readings, every field at its longest, four-byte characters in its texts) is about 2.6 MB;
anything bigger is not a message of ours, and is refused before it is parsed."""


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = PROTOCOL_VERSION


class ReadingsBatch(_Message):
    """Edge → cloud. Readings are idempotent by `reading_id`: resending is always safe."""

    type: Literal["readings"] = "readings"
    edge_id: Identifier
    batch_id: uuid.UUID
    sent_at: AwareDatetime
    readings: list[Reading] = Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)


class RejectedReading(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reading_id: uuid.UUID | None
    """None when the item was too broken to carry an id."""
    index: int = Field(ge=0)
    """Position in the batch, so an edge can find an item that has no usable id."""
    code: str
    reason: str


class Ack(_Message):
    """Cloud → edge, after the transaction that stored the batch has committed.

    `stored` readings are safe in the cloud (including ones it already had); `rejected` ones
    are kept in the cloud's dead letters for inspection and must not be resent.
    """

    type: Literal["ack"] = "ack"
    batch_id: uuid.UUID
    stored: list[uuid.UUID]
    rejected: list[RejectedReading] = []
    acked_at: AwareDatetime


class EdgeState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: Identifier | None
    """None until the device's Device Information was read in a first session."""
    kind: DeviceKind
    connected: bool
    last_seen_at: AwareDatetime | None = None
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    address: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=64)
    last_error_kind: str | None = Field(default=None, max_length=32)
    """The failure kind of the last failed session (`edge_agent.backoff.FailureKind`)."""


OutboxLevelName = Literal["ok", "warning", "critical", "full"]


class EdgeStatus(_Message):
    """Edge → cloud, retained; the broker publishes the `offline` one as the edge's last will."""

    type: Literal["status"] = "status"
    edge_id: Identifier
    state: EdgeState
    at: AwareDatetime | None = None
    """None in the last will, which is written before the edge knows when it will die."""
    agent_version: str | None = None
    outbox_pending: int | None = Field(default=None, ge=0)
    outbox_oldest_age_s: float | None = Field(default=None, ge=0)
    outbox_capacity: int | None = Field(default=None, ge=1)
    outbox_level: OutboxLevelName | None = None
    devices: list[DeviceStatus] = []


class EdgeMode(StrEnum):
    CENTRE = "centre"
    HOME = "home"


class DeviceBinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: Identifier
    kind: DeviceKind
    patient_id: Identifier | None
    """The owner of a home device; None for a centre's shared device."""


class PatientRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: Identifier
    display_name: str = Field(max_length=64)
    """Already masked for display (张*明)."""


class PlannedMeasurement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric
    times: list[time] = Field(min_length=1)
    """Local times of day the patient is reminded to measure."""
    patient_id: Identifier


class RevisitReminder(BaseModel):
    """A revisit (复诊) the patient's pathway schedules, for the app's reminder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: Identifier
    due_on: date
    """The revisit's local day as the pathway scheduled it."""
    window_days: int = Field(ge=0)
    """A revisit within `due_on` ± this many days counts as on time."""
    title: str = Field(max_length=128)


class EdgeConfig(_Message):
    """Cloud → edge, retained: the whole configuration, replacing the previous one."""

    type: Literal["config"] = "config"
    edge_id: Identifier
    issued_at: AwareDatetime
    mode: EdgeMode
    device_bindings: list[DeviceBinding] = []
    centre_patients: list[PatientRef] = []
    measurement_plan: list[PlannedMeasurement] = []
    questionnaires: list[Questionnaire] = []
    """Forms the app may show its patients (format and skip logic: `protocols.questionnaires`)."""
    revisits: list[RevisitReminder] = []
    """Revisits not yet made whose window is still open (home edges)."""


class NotificationSeverity(StrEnum):
    INFO = "info"
    ADVICE = "advice"
    URGENT = "urgent"


class PatientNotification(_Message):
    """Cloud → edge: an approved template message for a patient (never free text or ads)."""

    type: Literal["notification"] = "notification"
    notification_id: uuid.UUID
    patient_id: Identifier
    template_id: str = Field(min_length=1, max_length=64)
    severity: NotificationSeverity
    title: str = Field(max_length=128)
    body: str = Field(max_length=2000)
    created_at: AwareDatetime


class MeasurementAssignment(_Message):
    """Edge → cloud: centre staff gave an unassigned measurement to a patient on the station.

    Sent only once the measurement's readings are acknowledged (stored, unassigned); the
    cloud applies it with the same store function as the API's assignment and answers with
    `AssignmentResult`. Resending the same `assignment_id` is safe."""

    type: Literal["assignment"] = "assignment"
    edge_id: Identifier
    assignment_id: uuid.UUID
    measurement_id: uuid.UUID
    patient_id: Identifier
    staff_id: Identifier | None = None
    note: str | None = Field(default=None, max_length=500)
    requested_at: AwareDatetime


class AssignmentStatus(StrEnum):
    ASSIGNED = "assigned"
    CONFLICT = "conflict"
    """Already given to another patient."""
    NOT_FOUND = "not_found"
    """No unassigned measurement of that id is stored (yet)."""


class AssignmentResult(_Message):
    """Cloud → edge, after the assignment's transaction committed (or was refused)."""

    type: Literal["assignment_result"] = "assignment_result"
    assignment_id: uuid.UUID
    measurement_id: uuid.UUID
    status: AssignmentStatus
    patient_id: Identifier | None = None
    """Who the measurement belongs to now (the other patient, on a conflict)."""
    reading_ids: list[uuid.UUID] = []
    reason: str | None = None


class QuestionnaireAnswers(_Message):
    """Edge → cloud: a form the patient answered in the app (the phone has no HTTP account).

    The cloud stores it with the same store function as `POST /api/v1/questionnaire-responses`
    (scoring, risk level, follow-up task) and answers with `QuestionnaireAnswersResult`.
    `answer_id` is the idempotency key: resending is safe, it is stored once."""

    type: Literal["questionnaire_answers"] = "questionnaire_answers"
    answer_id: uuid.UUID
    edge_id: Identifier
    patient_id: Identifier
    questionnaire_id: Identifier
    questionnaire_version: int = Field(ge=1)
    answers: dict[str, str | list[str] | float]
    answered_at: AwareDatetime


class AnswersStatus(StrEnum):
    STORED = "stored"
    REJECTED = "rejected"
    """Never stored; the reason says why (kept in the cloud's dead letters). Do not resend."""


class QuestionnaireAnswersResult(_Message):
    """Cloud → edge, after the answers' transaction committed (or they were refused)."""

    type: Literal["questionnaire_answers_result"] = "questionnaire_answers_result"
    answer_id: uuid.UUID
    status: AnswersStatus
    code: str | None = None
    reason: str | None = None
    score: float | None = None
    risk_level: str | None = None


AnyMessage = Annotated[
    ReadingsBatch
    | Ack
    | EdgeStatus
    | EdgeConfig
    | PatientNotification
    | MeasurementAssignment
    | AssignmentResult
    | QuestionnaireAnswers
    | QuestionnaireAnswersResult,
    Field(discriminator="type"),
]

M = TypeVar("M", bound=_Message)


def encode(message: _Message) -> bytes:
    return message.model_dump_json().encode()


def _load_object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessageError(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessageError(f"payload is JSON {type(data).__name__}, not an object")
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(
            f"protocol version {version!r} is not supported (this build speaks "
            f"{sorted(SUPPORTED_VERSIONS)})"
        )
    return data


def _violation(exc: ValidationError) -> SchemaViolationError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return SchemaViolationError(f"{where}: {first['msg']}{more}")


def refuse_oversized(payload: bytes) -> None:
    """Raise OversizedMessageError for a payload from an edge no valid message can fill."""
    if len(payload) > MAX_EDGE_PAYLOAD_BYTES:
        raise OversizedMessageError(
            f"payload of {len(payload):,} bytes; a message from an edge has at most "
            f"{MAX_EDGE_PAYLOAD_BYTES:,}"
        )


def decode(payload: bytes, kind: type[M]) -> M:
    """Parse one message of a known kind, raising only CareBridgeError subclasses."""
    data = _load_object(payload)
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise _violation(exc) from exc


class BatchHeader(BaseModel):
    """The envelope of a readings batch without its readings."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1]
    type: Literal["readings"]
    edge_id: Identifier
    batch_id: uuid.UUID
    sent_at: AwareDatetime


@dataclass
class SplitBatch:
    header: BatchHeader
    readings: list[Reading]
    positions: list[int]
    """positions[i] is the index in the batch of readings[i]."""
    rejected: list[RejectedReading]
    payload: bytes

    @cached_property
    def items(self) -> list[Any]:
        """The batch's readings exactly as received (parsed JSON), for dead letters."""
        items: list[Any] = json.loads(self.payload)["readings"]
        return items

    def item_bytes(self, index: int) -> bytes:
        return json.dumps(self.items[index], ensure_ascii=False).encode()


def split_readings_batch(payload: bytes) -> SplitBatch:
    """Validate a batch's envelope, then each reading on its own.

    Raises a CareBridgeError when the envelope itself is unusable; otherwise returns the
    valid readings and, for each invalid one, why.
    """
    try:
        # The common case, a wholly valid batch, in one pass of pydantic-core.
        batch = ReadingsBatch.model_validate_json(payload)
    except ValidationError:
        return _split_slowly(payload)
    header = BatchHeader(
        version=batch.version,
        type=batch.type,
        edge_id=batch.edge_id,
        batch_id=batch.batch_id,
        sent_at=batch.sent_at,
    )
    return SplitBatch(header, batch.readings, list(range(len(batch.readings))), [], payload)


def _split_slowly(payload: bytes) -> SplitBatch:
    data = _load_object(payload)
    items = data.pop("readings", None)
    try:
        header = BatchHeader.model_validate(data)
    except ValidationError as exc:
        raise _violation(exc) from exc
    if not isinstance(items, list) or not items:
        raise SchemaViolationError("readings: must be a non-empty list")
    if len(items) > MAX_READINGS_PER_BATCH:
        raise SchemaViolationError(
            f"readings: {len(items)} items, at most {MAX_READINGS_PER_BATCH} per batch"
        )
    good: list[Reading] = []
    positions: list[int] = []
    bad: list[RejectedReading] = []
    for index, item in enumerate(items):
        try:
            good.append(Reading.model_validate(item))
            positions.append(index)
        except ValidationError as exc:
            bad.append(
                RejectedReading(
                    reading_id=_id_of(item),
                    index=index,
                    code=SchemaViolationError.code,
                    reason=str(_violation(exc)),
                )
            )
    return SplitBatch(header, good, positions, bad, payload)


def _id_of(item: object) -> uuid.UUID | None:
    if isinstance(item, dict):
        try:
            return uuid.UUID(str(item.get("reading_id")))
        except ValueError:
            return None
    return None
