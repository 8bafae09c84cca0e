"""Is the MQTT broker answering? A real CONNECT/CONNACK, not just an open port."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt


def broker_answers(
    host: str,
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 2.0,
) -> bool:
    answered = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"health-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
    )
    if username:
        client.username_pw_set(username, password)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        if not getattr(rc, "is_failure", True):
            answered.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=5)
    except OSError:
        return False
    client.loop_start()
    try:
        return answered.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
