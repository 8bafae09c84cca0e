"""The MQTT link to the cloud (paho-mqtt, v5, persistent session), bridged into asyncio.

paho runs its own network thread; everything it receives is handed to the agent's event
loop through `call_soon_threadsafe`, so the agent's state is only touched on one thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.settings import EdgeSettings
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import (
    Ack,
    EdgeConfig,
    EdgeState,
    EdgeStatus,
    PatientNotification,
    ReadingsBatch,
    decode,
    encode,
)

log = logging.getLogger("carebridge.edge.uplink")

_SESSION_EXPIRY_S = 7 * 24 * 3600

Inbound = Ack | EdgeConfig | PatientNotification


class MqttUplink:
    def __init__(self, settings: EdgeSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self._loop = loop
        self.inbound: asyncio.Queue[Inbound] = asyncio.Queue()
        self._inbound_signal = asyncio.Event()
        self.connected = asyncio.Event()
        self.on_connection_lost: Callable[[], None] | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-{settings.edge_id}",
            protocol=mqtt.MQTTv5,
        )
        if settings.mqtt_username:
            self._client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        if settings.mqtt_tls_ca_file:
            self._client.tls_set(ca_certs=settings.mqtt_tls_ca_file)
        will = EdgeStatus(edge_id=settings.edge_id, state=EdgeState.OFFLINE)
        self._client.will_set(topics.status(settings.edge_id), encode(will), qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        self._client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    async def inbound_ready(self) -> None:
        """Return once a message is waiting in `inbound` (without taking it)."""
        while self.inbound.empty():
            self._inbound_signal.clear()
            await self._inbound_signal.wait()

    def _deliver(self, message: Inbound) -> None:
        self.inbound.put_nowait(message)
        self._inbound_signal.set()

    def publish_batch(self, batch: ReadingsBatch) -> bool:
        """Hand a batch to paho; False when paho refused it (not connected, window full)."""
        info = self._client.publish(topics.readings(batch.edge_id), encode(batch), qos=1)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def publish_status(self, status: EdgeStatus) -> None:
        self._client.publish(topics.status(status.edge_id), encode(status), qos=1, retain=True)

    # paho's thread -----------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the connection", extra={"reason": str(rc)})
            return
        edge = self.settings.edge_id
        client.subscribe(
            [(topics.acks(edge), 1), (topics.config(edge), 1), (topics.notifications(edge), 1)]
        )
        online = EdgeStatus(edge_id=edge, state=EdgeState.ONLINE, at=datetime.now(UTC))
        client.publish(topics.status(edge), encode(online), qos=1, retain=True)
        self._loop.call_soon_threadsafe(self.connected.set)
        log.info("connected to broker", extra={"edge_id": edge})

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        log.warning("disconnected from broker", extra={"reason": str(rc)})
        self._loop.call_soon_threadsafe(self._lost)

    def _lost(self) -> None:
        self.connected.clear()
        if self.on_connection_lost is not None:
            self.on_connection_lost()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        kinds: dict[str, type[Inbound]] = {
            topics.acks(self.settings.edge_id): Ack,
            topics.config(self.settings.edge_id): EdgeConfig,
            topics.notifications(self.settings.edge_id): PatientNotification,
        }
        kind = kinds.get(msg.topic)
        if kind is None:
            log.warning("message on an unexpected topic", extra={"topic": msg.topic})
            return
        try:
            message = decode(bytes(msg.payload), kind)
        except CareBridgeError as exc:
            log.error(
                "cloud sent an unreadable message",
                extra={"topic": msg.topic, "code": exc.code, "reason": exc.reason},
            )
            return
        self._loop.call_soon_threadsafe(self._deliver, message)
