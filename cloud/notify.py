"""Approved template messages to a patient's app, over MQTT to the edge that serves them."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from psycopg.rows import dict_row

from cloud.mqtt_client import cloud_client
from cloud.settings import CloudSettings
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import EdgeConfig, NotificationSeverity, PatientNotification, encode

log = logging.getLogger("carebridge.notify")


class NotificationError(CareBridgeError):
    code = "notification_refused"


class NotificationPublisher:
    """One MQTT connection per cloud process for messages to edges."""

    def __init__(self, settings: CloudSettings) -> None:
        self._client = cloud_client(
            settings, f"notify-{settings.ingest_worker_id}-{uuid.uuid4().hex[:6]}"
        )
        self._client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=30)
        self._client.loop_start()

    def publish(self, edge_id: str, message: PatientNotification) -> None:
        info = self._client.publish(topics.notifications(edge_id), encode(message), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotificationError(f"the broker link refused the message ({info.rc})")

    def publish_config(self, message: EdgeConfig, timeout_s: float = 5.0) -> None:
        """Retained, so an agent that connects later still gets it. Waits for the broker's
        PUBACK: the caller records as published only what the broker holds."""
        info = self._client.publish(
            topics.config(message.edge_id), encode(message), qos=1, retain=True
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotificationError(f"the broker link refused the configuration ({info.rc})")
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise NotificationError("the broker did not confirm the configuration in time")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def send_template(
    conn: psycopg.Connection,
    publisher: NotificationPublisher,
    *,
    patient_id: str,
    template_id: str,
    sender_id: str,
    alert_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Send an approved template to the patient's home edge and keep it as a contact record."""
    with conn.cursor(row_factory=dict_row) as cur:
        template = cur.execute(
            """SELECT * FROM notification_templates
               WHERE template_id = %s AND active AND approved_at IS NOT NULL""",
            (template_id,),
        ).fetchone()
        if template is None:
            raise NotificationError(f"{template_id!r} is not an approved, active template")
        # A programme patient hears only what their hospital approved (docs/programmes.md).
        unapproved = cur.execute(
            """SELECT e.hospital_id FROM enrolments e
               WHERE e.patient_id = %s AND e.status = 'active' AND NOT EXISTS (
                   SELECT 1 FROM hospital_template_approvals h
                   WHERE h.hospital_id = e.hospital_id AND h.template_id = %s
                     AND h.revoked_at IS NULL)
               LIMIT 1""",
            (patient_id, template_id),
        ).fetchone()
        if unapproved is not None:
            raise NotificationError(
                f"{template_id!r} is not approved by hospital {unapproved['hospital_id']}"
            )
        edge = cur.execute(
            """SELECT edge_id FROM readings WHERE patient_id = %s AND source = 'home'
               ORDER BY time DESC LIMIT 1""",
            (patient_id,),
        ).fetchone()
        if edge is None:
            raise NotificationError("the patient has no home app that has sent readings yet")
        message = PatientNotification(
            notification_id=uuid.uuid4(),
            patient_id=patient_id,
            template_id=template_id,
            severity=NotificationSeverity(template["severity"]),
            title=template["title"],
            body=template["body"],
            created_at=datetime.now(UTC),
        )
        with conn.transaction():
            record = cur.execute(
                """INSERT INTO contact_records (patient_id, alert_id, user_id, channel,
                       direction, outcome, note, notification_id, template_id)
                   VALUES (%s, %s, %s, 'app', 'outbound', 'message_sent', %s, %s, %s)
                   RETURNING contact_id, at""",
                (
                    patient_id,
                    alert_id,
                    sender_id,
                    message.body,
                    message.notification_id,
                    template_id,
                ),
            ).fetchone()
            publisher.publish(edge["edge_id"], message)
    assert record is not None
    return {
        "notification_id": message.notification_id,
        "edge_id": edge["edge_id"],
        "contact_id": record["contact_id"],
        "title": message.title,
        "body": message.body,
    }
