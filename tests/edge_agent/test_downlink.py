"""Configuration and notifications from the cloud, kept in the outbox's SQLite file."""

import uuid
from datetime import UTC, datetime, timedelta

from edge_agent.downlink import Downlink, newer_config
from edge_agent.outbox import Outbox
from protocols.messages import (
    EdgeConfig,
    EdgeMode,
    NotificationSeverity,
    PatientNotification,
    PatientRef,
)

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def config(at: datetime, edge: str = "centre-1", patients: int = 1) -> EdgeConfig:
    return EdgeConfig(
        edge_id=edge,
        issued_at=at,
        mode=EdgeMode.CENTRE,
        centre_patients=[
            PatientRef(patient_id=f"P{i}", display_name="张*明") for i in range(patients)
        ],
    )


def note(patient: str = "P1") -> PatientNotification:
    return PatientNotification(
        notification_id=uuid.uuid4(),
        patient_id=patient,
        template_id="bp-recheck",
        severity=NotificationSeverity.ADVICE,
        title="请复测血压",
        body="请休息五分钟后复测。",
        created_at=T0,
    )


def test_only_our_own_and_not_older_configurations_replace_the_current_one():
    assert newer_config(None, config(T0), "centre-1")
    assert not newer_config(None, config(T0, edge="centre-2"), "centre-1")
    assert newer_config(config(T0), config(T0 + timedelta(seconds=1)), "centre-1")
    assert not newer_config(config(T0), config(T0 - timedelta(seconds=1)), "centre-1")


async def test_configuration_survives_a_restart_and_is_announced(tmp_path):
    seen: list[EdgeConfig] = []
    async with Outbox(tmp_path / "o.db") as outbox:
        downlink = Downlink("centre-1")
        downlink.on_config.append(seen.append)
        await downlink.open(outbox.db)
        assert await downlink.apply_config(config(T0, patients=3))
        assert not await downlink.apply_config(config(T0 - timedelta(hours=1)))
        assert len(seen) == 1
    async with Outbox(tmp_path / "o.db") as outbox:
        again = Downlink("centre-1")
        await again.open(outbox.db)
        assert again.config is not None and len(again.config.centre_patients) == 3


async def test_notifications_are_kept_once_and_can_be_marked_read(tmp_path):
    announced: list[PatientNotification] = []
    async with Outbox(tmp_path / "o.db") as outbox:
        downlink = Downlink("home-1")
        downlink.on_notification.append(announced.append)
        await downlink.open(outbox.db)
        first, other = note("P1"), note("P2")
        assert await downlink.add_notification(first)
        assert not await downlink.add_notification(first)  # QoS 1 redelivery
        await downlink.add_notification(other)
        assert len(announced) == 2
        assert [n.notification_id for n in await downlink.notifications("P1")] == [
            first.notification_id
        ]
        await downlink.mark_read(first.notification_id)
        unread = await downlink.notifications(unread_only=True)
        assert [n.notification_id for n in unread] == [other.notification_id]
