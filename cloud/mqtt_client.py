"""The cloud's MQTT clients: MQTT v5 with the cloud's own login and TLS settings."""

from __future__ import annotations

import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.settings import CloudSettings


def cloud_client(
    settings: CloudSettings, client_id: str, *, manual_ack: bool = False
) -> mqtt.Client:
    """`manual_ack`: PUBACKs only when the caller acks (ingest acks after its commit)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if settings.mqtt_tls_ca_file:
        client.tls_set(ca_certs=settings.mqtt_tls_ca_file)
    client.on_socket_open = send_at_once
    return client


def send_at_once(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """paho's `on_socket_open`: turn Nagle's algorithm off on the broker connection.

    paho leaves it on, and MQTT's packets are small: a PUBACK or an ack written while an
    earlier packet waits for the peer's delayed TCP ACK sat for up to 40 ms, which was most
    of ingest's publish-to-ack latency at low load."""
    setsockopt = getattr(sock, "setsockopt", None)  # a WebSocket transport has none
    if setsockopt is not None:
        setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
