"""The MQTT link to the cloud (paho-mqtt, v5, persistent session), bridged into asyncio.

The network runs on a thread of ours rather than paho's `loop_start`, because paho's own
reconnect waits a fixed exponential series with no jitter and the same delay whatever the
cause; ours draws each wait from `edge_agent.reconnect.Backoff`. Everything received is
handed to the agent's event loop through `call_soon_threadsafe`, so the agent's state is
only touched on one thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.reconnect import Backoff, Failure, classify
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
_LOOP_TIMEOUT_S = 0.2

Inbound = Ack | EdgeConfig | PatientNotification


@dataclass(frozen=True)
class LinkState:
    """What `status` shows about the broker link."""

    state: str
    """connected | connecting | refused | stopped"""
    connected_since: datetime | None
    last_error: str | None
    connection_attempts: int
    failed_attempts: int


class MqttUplink:
    def __init__(
        self,
        settings: EdgeSettings,
        loop: asyncio.AbstractEventLoop,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._loop = loop
        self.inbound: asyncio.Queue[Inbound] = asyncio.Queue()
        self._inbound_signal = asyncio.Event()
        self.connected = asyncio.Event()
        self.on_connection_lost: Callable[[], None] | None = None
        self.extra_topics: dict[str, Callable[[bytes], None]] = {}
        """Further topics to subscribe to, each with a handler run on the event loop with
        the raw payload (the device side's assignment results)."""
        self._backoff = Backoff(
            settings.reconnect_min_s, settings.reconnect_max_s, rng or random.Random()
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_failure = Failure.NETWORK
        self._state = "stopped"
        self._connected_since: datetime | None = None
        self._last_error: str | None = None
        self.connection_attempts = 0
        self.failed_attempts = 0
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-{settings.edge_id}",
            protocol=mqtt.MQTTv5,
        )
        if settings.mqtt_username:
            self._client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        if settings.mqtt_tls or settings.mqtt_tls_ca_file:
            self._client.tls_set(ca_certs=settings.mqtt_tls_ca_file)
        will = EdgeStatus(edge_id=settings.edge_id, state=EdgeState.OFFLINE)
        self._client.will_set(topics.status(settings.edge_id), encode(will), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_socket_open = _send_at_once

    def link_state(self) -> LinkState:
        return LinkState(
            self._state,
            self._connected_since,
            self._last_error,
            self.connection_attempts,
            self.failed_attempts,
        )

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        self._client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=self.settings.mqtt_keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._stopping.clear()
        self._state = "connecting"
        self._thread = threading.Thread(
            target=self._network, name=f"mqtt-{self.settings.edge_id}", daemon=True
        )
        self._thread.start()

    def stop(self, final_status: EdgeStatus | None = None, timeout: float = 2.0) -> None:
        """Say goodbye (a clean disconnect does not fire the last will, so publish `offline`
        ourselves), then end the network thread."""
        if final_status is not None and self._state == "connected":
            info = self._client.publish(
                topics.status(final_status.edge_id), encode(final_status), qos=1, retain=True
            )
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout)
        self._stopping.set()
        self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout + 1)
            self._thread = None
        self._state = "stopped"

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

    def publish(self, topic: str, payload: bytes) -> bool:
        """Any other QoS 1 message of ours; False when paho refused it (not connected)."""
        return self._client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    def publish_status(self, status: EdgeStatus) -> None:
        self._client.publish(topics.status(status.edge_id), encode(status), qos=1, retain=True)

    # our network thread ------------------------------------------------------------------

    def _network(self) -> None:
        while not self._stopping.is_set():
            self.connection_attempts += 1
            try:
                self._client.reconnect()
            except OSError as exc:
                self._failed(Failure.NETWORK, f"{type(exc).__name__}: {exc}")
                continue
            rc = mqtt.MQTT_ERR_SUCCESS
            while rc == mqtt.MQTT_ERR_SUCCESS and not self._stopping.is_set():
                rc = self._client.loop(timeout=_LOOP_TIMEOUT_S)
            if not self._stopping.is_set():
                self._failed(self._last_failure, self._last_error or f"network loop ended: {rc}")
        # Flush what a clean disconnect queued.
        self._client.loop(timeout=_LOOP_TIMEOUT_S)

    def _failed(self, failure: Failure, reason: str) -> None:
        self.failed_attempts += 1
        delay = self._backoff.next_delay(failure)
        self._last_error = reason
        if self._state != "refused":
            self._state = "connecting"
        log.warning(
            "broker unreachable, retrying",
            extra={"failure": failure.value, "reason": reason, "retry_in_s": round(delay, 3)},
        )
        self._last_failure = Failure.NETWORK
        self._stopping.wait(delay)

    # paho's callbacks, on our network thread ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            self._last_failure = classify(getattr(rc, "value", None))
            self._last_error = f"broker refused the connection: {rc}"
            if self._last_failure is Failure.REFUSED:
                self._state = "refused"
            log.error("broker refused the connection", extra={"reason": str(rc)})
            return
        self._backoff.reset()
        self._state = "connected"
        self._connected_since = datetime.now(UTC)
        self._last_error = None
        edge = self.settings.edge_id
        client.subscribe(
            [(topics.acks(edge), 1), (topics.config(edge), 1), (topics.notifications(edge), 1)]
            + [(topic, 1) for topic in self.extra_topics]
        )
        online = EdgeStatus(edge_id=edge, state=EdgeState.ONLINE, at=datetime.now(UTC))
        client.publish(topics.status(edge), encode(online), qos=1, retain=True)
        self._loop.call_soon_threadsafe(self.connected.set)
        log.info("connected to broker", extra={"edge_id": edge})

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        was_connected = self._state == "connected"
        self._connected_since = None
        if self._stopping.is_set():
            return
        if was_connected:
            self._state = "connecting"
            self._last_failure = classify(getattr(rc, "value", None))
            self._last_error = f"disconnected: {rc}"
            log.warning("disconnected from broker", extra={"reason": str(rc)})
        self._loop.call_soon_threadsafe(self._lost)

    def _lost(self) -> None:
        self.connected.clear()
        if self.on_connection_lost is not None:
            self.on_connection_lost()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        handler = self.extra_topics.get(msg.topic)
        if handler is not None:
            self._loop.call_soon_threadsafe(handler, bytes(msg.payload))
            return
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


def _send_at_once(_client: mqtt.Client, _userdata: object, sock: object) -> None:
    """Turn Nagle's algorithm off (paho leaves it on): a small packet written while an
    earlier one awaits the broker's delayed TCP ACK would otherwise wait up to 40 ms."""
    setsockopt = getattr(sock, "setsockopt", None)  # a WebSocket transport has none
    if setsockopt is not None:
        setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
