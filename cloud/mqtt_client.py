"""The cloud's MQTT clients: MQTT v5 with the cloud's own login and TLS settings."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.settings import CloudSettings


def cloud_client(settings: CloudSettings, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if settings.mqtt_tls_ca_file:
        client.tls_set(ca_certs=settings.mqtt_tls_ca_file)
    return client
