"""The throwaway services themselves: they start, survive restarts, and fail loudly."""

import socket
import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devstack.cloud import CloudProcess
from devstack.errors import StackError
from devstack.mosquitto import LocalMosquitto
from devstack.ports import free_port


def test_the_cluster_has_timescaledb_and_makes_hypertables(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE t (time timestamptz NOT NULL, v int)")
        conn.execute("SELECT create_hypertable('t', by_range('time'))")
        (name,) = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 't'"
        ).fetchone()
    assert name == "t"


def test_the_readings_table_is_a_hypertable(database_url):
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT d.column_name, d.time_interval FROM timescaledb_information.dimensions d "
            "WHERE d.hypertable_name = 'readings'"
        ).fetchone()
    assert row is not None and row[0] == "time"


def test_postgres_restarts_on_its_data(pg_server):
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survives (x int)")
        conn.execute("INSERT INTO survives VALUES (42)")
    pg_server.stop()
    assert not pg_server.is_running()
    pg_server.start()
    with psycopg.connect(pg_server.dsn) as conn:
        assert conn.execute("SELECT x FROM survives").fetchone() == (42,)
        conn.execute("DROP TABLE survives")


def _client(port, client_id, *, on_message=None):
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    if on_message:
        client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    return client


def test_a_persistent_session_keeps_its_messages_across_a_broker_restart(tmp_path):
    port = free_port()
    broker = LocalMosquitto(tmp_path / "mq", port)
    broker.start()
    try:
        subscriber = _client(port, "sub")
        subscriber.subscribe("q/t", qos=1)
        subscriber.disconnect()
        subscriber.loop_stop()
        publisher = _client(port, "pub")
        publisher.publish("q/t", b"kept", qos=1).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()

        broker.stop()
        broker.start()

        got = []
        arrived = threading.Event()
        subscriber = _client(
            port, "sub", on_message=lambda _c, _u, m: (got.append(m.payload), arrived.set())
        )
        assert arrived.wait(5), broker.log_tail()
        subscriber.disconnect()
        subscriber.loop_stop()
        assert got == [b"kept"]
    finally:
        broker.stop()


def test_a_broker_that_cannot_start_fails_loudly(tmp_path):
    taken = LocalMosquitto(tmp_path / "a", free_port())
    taken.start()
    try:
        second = LocalMosquitto(tmp_path / "b", taken.port)
        with pytest.raises(StackError, match="did not start"):
            second.start(timeout=2)
    finally:
        taken.stop()


def test_a_cloud_whose_port_is_taken_says_so_and_starts_nothing(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cloud = CloudProcess({}, port, tmp_path / "cloud.log")

        with pytest.raises(StackError, match=f"already listens on 127.0.0.1:{port}"):
            cloud.start(timeout=5)

    assert cloud.process is None
