"""What an edge's configuration is loaded from, and when the stale mark brings it back into
the sweep. Real TimescaleDB; the MQTT side is `test_edge_config.py` (here the published
configurations are collected in a list)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from cloud.db import care_store, edge_config_store, provisioning_store
from cloud.notify import NotificationError
from protocols.messages import EdgeConfig
from tests.conftest import make_user

TZ = "Asia/Shanghai"


def _centre(conn: psycopg.Connection, issued_by: str) -> str:
    code = provisioning_store.issue_code(
        conn,
        mode="centre",
        patient_id=None,
        label="社区中心",
        issued_by=issued_by,
        ttl=timedelta(minutes=5),
    )["code"]
    edge = provisioning_store.redeem(
        conn, code, agent_version=None, create_account=lambda _user, _password: None
    )
    return edge.edge_id


def test_a_centre_gets_its_devices_and_its_teams_patients_and_changes_mark_it_stale(
    database_url,
):
    make_user(database_url, "hm-a", "health_manager", ("team-a",))
    make_user(database_url, "cm-b", "case_manager", ("team-b",))
    sent: list[EdgeConfig] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        care_store.create_patient(conn, "P-1", "张三明", team_id="team-a")
        care_store.create_patient(conn, "P-2", "李四", team_id="team-b")
        centre = _centre(conn, "hm-a")
        other = _centre(conn, "cm-b")
        for serial, owner, retired in (
            ("BP-1", centre, None),
            ("BP-OLD", centre, datetime.now(UTC)),
            ("BP-9", other, None),
        ):
            conn.execute(
                """INSERT INTO devices (serial, kind, model, owner_type, owner_id, retired_at)
                   VALUES (%s, 'blood_pressure_monitor', 'M', 'centre', %s, %s)""",
                (serial, owner, retired),
            )

        first = edge_config_store.publish_config(conn, sent.append, centre, timezone=TZ)
        assert first.published and len(sent) == 1
        config = sent[0]
        assert (config.edge_id, config.mode.value) == (centre, "centre")
        assert [(b.serial, b.patient_id) for b in config.device_bindings] == [("BP-1", None)]
        assert [(p.patient_id, p.display_name) for p in config.centre_patients] == [
            ("P-1", "张*明")
        ]

        # Unchanged content is not sent again; the sweep then has nothing to do for it.
        assert not edge_config_store.publish_config(
            conn, sent.append, centre, timezone=TZ
        ).published
        edge_config_store.run_config_sweep(conn, sent.append, datetime.now(UTC), TZ)
        assert [c.edge_id for c in sent] == [centre, other]

        # A new patient in the centre's team marks it (and only it) stale.
        care_store.create_patient(conn, "P-3", "王五", team_id="team-a")
        stale = conn.execute("SELECT edge_id FROM edge_configs WHERE stale").fetchall()
        assert stale == [(centre,)]
        assert edge_config_store.run_config_sweep(conn, sent.append, datetime.now(UTC), TZ) == 1
        assert [p.patient_id for p in sent[-1].centre_patients] == ["P-1", "P-3"]
        assert sent[-1].issued_at > config.issued_at

        # A device registered to the centre marks it stale too.
        conn.execute("UPDATE edge_configs SET stale = false")
        conn.execute(
            """INSERT INTO devices (serial, kind, model, owner_type, owner_id)
               VALUES ('BP-2', 'blood_pressure_monitor', 'M', 'centre', %s)""",
            (centre,),
        )
        assert conn.execute("SELECT edge_id FROM edge_configs WHERE stale").fetchall() == [
            (centre,)
        ]
        conn.execute("DELETE FROM devices WHERE serial = 'BP-2'")

        # A publish that fails leaves the row stale for the next sweep.
        conn.execute(
            "UPDATE devices SET retired_at = now() WHERE serial = 'BP-1' AND owner_id = %s",
            (centre,),
        )

        def broker_down(_config: EdgeConfig) -> None:
            raise NotificationError("broker unreachable")

        assert edge_config_store.run_config_sweep(conn, broker_down, datetime.now(UTC), TZ) == 0
        assert conn.execute(
            "SELECT stale FROM edge_configs WHERE edge_id = %s", (centre,)
        ).fetchone() == (True,)
        assert edge_config_store.run_config_sweep(conn, sent.append, datetime.now(UTC), TZ) == 1
        assert sent[-1].device_bindings == []

        # A disabled (revoked) edge gets nothing more.
        conn.execute("UPDATE edges SET disabled_at = now() WHERE edge_id = %s", (centre,))
        care_store.create_patient(conn, "P-4", "赵六", team_id="team-a")
        assert edge_config_store.run_config_sweep(conn, sent.append, datetime.now(UTC), TZ) == 0
