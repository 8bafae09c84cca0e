"""Issue 6 end to end on real Mosquitto and TimescaleDB: a hypoglycaemia reading becomes a
critical alert in its case manager's queue, is handled with every step recorded; an
unacknowledged one escalates when its deadline passes; other teams cannot see it."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import psycopg

from cloud.db import care_store
from protocols import topics
from protocols.messages import PatientNotification, ReadingsBatch, decode, encode
from simulators.readings import SimulatedGlucoseMeter
from tests.conftest import bearer, make_user


def _setup_people(url: str) -> dict[str, str]:
    tokens = {
        "cm_a": make_user(url, "cm-a", "case_manager", ("team-a",)),
        "doc_a": make_user(url, "doc-a", "doctor", ("team-a",)),
        "lead_a": make_user(url, "lead-a", "case_manager", ("team-a",)),
        "cm_b": make_user(url, "cm-b", "case_manager", ("team-b",)),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        care_store.set_team_lead(conn, "team-a", "lead-a")
        care_store.create_patient(
            conn,
            "P-100",
            "张三明",
            team_id="team-a",
            case_manager_id="cm-a",
            doctor_id="doc-a",
            cohorts=["diabetes"],
        )
        conn.execute("INSERT INTO edges (edge_id, mode) VALUES ('home-100', 'home')")
    return tokens


def _publish_glucose(port: int, value: float) -> None:
    readings = SimulatedGlucoseMeter("GLU-100").measure(value, patient_id="P-100")
    batch = ReadingsBatch(
        edge_id="home-100", batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=readings
    )
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="home-100", protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topics.readings("home-100"), encode(batch), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _wait_for_queue_item(base: str, token: str) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/api/v1/queue", headers=bearer(token)).json()
        if body["items"]:
            return body
        time.sleep(0.1)
    raise AssertionError("the alert never reached the queue")


def test_hypoglycaemia_reaches_the_case_manager_and_is_handled_with_a_full_record(
    cloud, broker, database_url
):
    tokens = _setup_people(database_url)
    _publish_glucose(broker.port, 2.6)
    base = cloud.base_url

    queue = _wait_for_queue_item(base, tokens["cm_a"])
    (item,) = queue["items"]
    assert queue["counts"] == {"critical": 1}
    assert (item["tier"], item["rule_id"], item["status"]) == (
        "critical",
        "glucose.hypo.level2",
        "open",
    )
    assert item["assignee_id"] == "cm-a" and item["patient_name"] == "张三明"
    alert_id = item["alert_id"]
    opened = datetime.fromisoformat(item["opened_at"])
    assert datetime.fromisoformat(item["ack_due_at"]) - opened == timedelta(minutes=15)

    def act(action, **extra):
        response = httpx.post(
            f"{base}/api/v1/alerts/{alert_id}/actions",
            headers=bearer(tokens["cm_a"]),
            json={"action": action, **extra},
        )
        assert response.status_code == 200, response.text
        return response.json()

    act("acknowledge")
    contact = httpx.post(
        f"{base}/api/v1/patients/P-100/contacts",
        headers=bearer(tokens["cm_a"]),
        json={
            "channel": "call",
            "outcome": "reached",
            "alert_id": alert_id,
            "note": "患者已进食，15分钟后复测",
        },
    )
    assert contact.status_code == 201, contact.text
    act("start")
    # Resolving without an outcome is refused with the reason.
    refused = httpx.post(
        f"{base}/api/v1/alerts/{alert_id}/actions",
        headers=bearer(tokens["cm_a"]),
        json={"action": "resolve"},
    )
    assert refused.status_code == 409 and "outcome" in refused.json()["detail"]
    assert (
        act("resolve", outcome_code="patient_reached_advised", note="已电话指导加餐，复测 5.1")[
            "to"
        ]
        == "resolved"
    )

    detail = httpx.get(f"{base}/api/v1/alerts/{alert_id}", headers=bearer(tokens["cm_a"])).json()
    steps = [
        (e["action"], e["from_status"], e["to_status"], e["actor_id"]) for e in detail["history"]
    ]
    assert steps == [
        ("opened", None, "open", None),
        ("acknowledge", "open", "acknowledged", "cm-a"),
        ("start", "acknowledged", "in_progress", "cm-a"),
        ("resolve", "in_progress", "resolved", "cm-a"),
    ]
    assert detail["history"][-1]["outcome_code"] == "patient_reached_advised"
    assert detail["readings"][0]["value"] == 2.6
    assert detail["explanation"]["summary"] == "glucose 2.6 < 3"
    assert detail["contacts"][0]["note"] == "患者已进食，15分钟后复测"

    # The closed loop exports as the critical-value register, names masked.
    month = opened.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    register = httpx.get(
        f"{base}/api/v1/reports/critical-register",
        params={"month": month},
        headers=bearer(tokens["cm_a"]),
    )
    assert register.status_code == 200
    header, row = list(csv.reader(io.StringIO(register.text.lstrip("\ufeff"))))
    entry = dict(zip(header, row, strict=True))
    assert entry["患者"] == "张*明" and entry["处理人"] == "cm-a"
    assert entry["处理结果"] == "patient_reached_advised" and entry["联系患者时间"]
    assert entry["处理意见"] == "已电话指导加餐，复测 5.1"

    # The history cannot be rewritten, not even by the database owner.
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            conn.execute("UPDATE alert_events SET note = 'changed'")
        except psycopg.errors.RaiseException as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError("alert_events accepted an update")
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE patient_id = 'P-100' AND user_id = 'cm-a'"
        ).fetchone()[0]
    assert audited >= 5


def test_a_case_manager_of_another_team_cannot_see_or_touch_the_alert(cloud, broker, database_url):
    tokens = _setup_people(database_url)
    _publish_glucose(broker.port, 2.6)
    base = cloud.base_url
    alert_id = _wait_for_queue_item(base, tokens["cm_a"])["items"][0]["alert_id"]

    other = bearer(tokens["cm_b"])
    assert httpx.get(f"{base}/api/v1/queue", headers=other).json()["items"] == []
    assert httpx.get(f"{base}/api/v1/alerts/{alert_id}", headers=other).status_code == 404
    assert (
        httpx.post(
            f"{base}/api/v1/alerts/{alert_id}/actions",
            headers=other,
            json={"action": "acknowledge"},
        ).status_code
        == 404
    )
    assert httpx.get(f"{base}/api/v1/patients/P-100/readings", headers=other).status_code == 404
    assert httpx.get(f"{base}/api/v1/queue").status_code == 401
    with psycopg.connect(database_url) as conn:
        denied = conn.execute(
            "SELECT count(*) FROM audit_log WHERE user_id = 'cm-b' AND action LIKE 'denied:%'"
        ).fetchone()[0]
    assert denied == 3


def test_an_unacknowledged_critical_alert_escalates_to_the_doctor_then_the_team_lead(
    cloud, broker, database_url
):
    tokens = _setup_people(database_url)
    _publish_glucose(broker.port, 2.4)
    item = _wait_for_queue_item(cloud.base_url, tokens["cm_a"])["items"][0]
    due = datetime.fromisoformat(item["ack_due_at"])

    with psycopg.connect(database_url, autocommit=True) as conn:
        # The clock is the caller's: one second before the deadline nothing happens.
        assert care_store.run_escalations(conn, due - timedelta(seconds=1)) == []
        (first,) = care_store.run_escalations(conn, due)
        assert (first["target"], first["to_user"]) == ("doctor", "doc-a")
        # The doctor gets the same 15 minutes; then the team lead.
        assert care_store.run_escalations(conn, due + timedelta(minutes=14)) == []
        (second,) = care_store.run_escalations(conn, due + timedelta(minutes=15))
        assert (second["target"], second["to_user"]) == ("team_lead", "lead-a")
        assert care_store.run_escalations(conn, due + timedelta(hours=5)) == []

    detail = httpx.get(
        f"{cloud.base_url}/api/v1/alerts/{item['alert_id']}", headers=bearer(tokens["doc_a"])
    ).json()
    assert detail["status"] == "escalated" and detail["escalation_level"] == 2
    assert [e["action"] for e in detail["history"]] == ["opened", "sla_escalate", "sla_escalate"]
    # An escalated alert can still be acknowledged and handled.
    ack = httpx.post(
        f"{cloud.base_url}/api/v1/alerts/{item['alert_id']}/actions",
        headers=bearer(tokens["lead_a"]),
        json={"action": "acknowledge"},
    )
    assert ack.status_code == 200 and ack.json()["to"] == "acknowledged"


def test_sign_in_issues_a_token_and_refuses_a_wrong_password(cloud, database_url):
    make_user(database_url, "cm-signin", "case_manager", ("team-a",))
    base = cloud.base_url
    wrong = httpx.post(
        f"{base}/api/v1/auth/token", json={"username": "cm-signin", "password": "not the password"}
    )
    assert wrong.status_code == 401
    good = httpx.post(
        f"{base}/api/v1/auth/token",
        json={"username": "cm-signin", "password": "correct horse battery staple"},
    )
    assert good.status_code == 200, good.text
    me = httpx.get(f"{base}/api/v1/me", headers=bearer(good.json()["access_token"])).json()
    assert (me["user_id"], me["role"], me["teams"]) == ("cm-signin", "case_manager", ["team-a"])
    with psycopg.connect(database_url) as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_log WHERE detail->>'username' = 'cm-signin' "
                "ORDER BY audit_id"
            ).fetchall()
        ]
    assert actions == ["sign_in_failed", "sign_in"]


def test_the_queue_streams_new_alerts_to_their_team_only(cloud, broker, database_url):
    tokens = _setup_people(database_url)
    base = cloud.base_url
    received: dict[str, list[dict]] = {"cm_a": [], "cm_b": []}
    connected = {who: threading.Event() for who in received}

    def listen(who: str) -> None:
        url = f"{base}/api/v1/queue/events?access_token={tokens[who]}"
        # The server cuts the stream that hears nothing when the test tears it down; what
        # matters is what was received before.
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", url, timeout=httpx.Timeout(20, read=20)) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line == ": connected":
                    connected[who].set()
                if line.startswith("data: "):
                    received[who].append(json.loads(line[6:]))
                    return

    threads = [threading.Thread(target=listen, args=(who,), daemon=True) for who in received]
    for thread in threads:
        thread.start()
    assert all(event.wait(10) for event in connected.values()), "a stream did not connect"
    _publish_glucose(broker.port, 2.5)
    threads[0].join(15)
    (event,) = received["cm_a"]
    assert (event["action"], event["tier"], event["patient_id"]) == ("opened", "critical", "P-100")
    threads[1].join(2)
    assert received["cm_b"] == []


def test_an_approved_template_reaches_the_patients_app_and_is_kept(cloud, broker, database_url):
    tokens = _setup_people(database_url)
    got: list[PatientNotification] = []
    arrived = threading.Event()
    app = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="app-100", protocol=mqtt.MQTTv5)
    app.on_message = lambda _c, _u, m: (
        got.append(decode(m.payload, PatientNotification)),
        arrived.set(),
    )
    app.connect("127.0.0.1", broker.port)
    app.subscribe(topics.notifications("home-100"), qos=1)
    app.loop_start()
    try:
        _publish_glucose(broker.port, 2.6)
        alert_id = _wait_for_queue_item(cloud.base_url, tokens["cm_a"])["items"][0]["alert_id"]
        url = f"{cloud.base_url}/api/v1/patients/P-100/notifications"
        sent = httpx.post(
            url,
            headers=bearer(tokens["cm_a"]),
            json={"template_id": "hypo_treat", "alert_id": alert_id},
        )
        assert sent.status_code == 201, sent.text
        assert arrived.wait(10)
        refused = httpx.post(
            url, headers=bearer(tokens["cm_a"]), json={"template_id": "buy our supplements"}
        )
        assert refused.status_code == 409 and "approved" in refused.json()["detail"]
    finally:
        app.disconnect()
        app.loop_stop()
    (message,) = got
    assert (message.patient_id, message.template_id) == ("P-100", "hypo_treat")
    assert "15克糖" in message.body
    detail = httpx.get(
        f"{cloud.base_url}/api/v1/alerts/{alert_id}", headers=bearer(tokens["cm_a"])
    ).json()
    (record,) = detail["contacts"]
    assert (record["channel"], record["template_id"]) == ("app", "hypo_treat")


def test_an_away_case_manager_s_new_alerts_go_to_the_team_pool(cloud, broker, database_url):
    tokens = _setup_people(database_url)
    base = cloud.base_url
    away = httpx.put(
        f"{base}/api/v1/me/availability", headers=bearer(tokens["cm_a"]), json={"away": True}
    )
    assert away.status_code == 200
    _publish_glucose(broker.port, 2.6)
    item = _wait_for_queue_item(base, tokens["lead_a"])["items"][0]
    assert item["assignee_id"] is None  # in the pool, for anyone in team A to claim
    mine = httpx.get(
        f"{base}/api/v1/queue", params={"mine": True}, headers=bearer(tokens["cm_a"])
    ).json()
    assert mine["items"] == []
    claim = httpx.post(
        f"{base}/api/v1/alerts/{item['alert_id']}/actions",
        headers=bearer(tokens["lead_a"]),
        json={"action": "acknowledge"},
    )
    assert claim.status_code == 200
    detail = httpx.get(
        f"{base}/api/v1/alerts/{item['alert_id']}", headers=bearer(tokens["lead_a"])
    ).json()
    assert detail["assignee_id"] == "lead-a"  # acknowledging claims it


def test_a_measurement_plan_is_set_through_the_api(cloud, database_url):
    tokens = _setup_people(database_url)
    url = f"{cloud.base_url}/api/v1/patients/P-100/measurement-plans/systolic"
    response = httpx.put(url, headers=bearer(tokens["cm_a"]), json={"times_per_day": 2})
    assert response.status_code == 200, response.text
    listed = httpx.get(
        f"{cloud.base_url}/api/v1/patients/P-100/measurement-plans", headers=bearer(tokens["cm_a"])
    ).json()["items"]
    assert [(p["metric"], p["times_per_day"], p["set_by"]) for p in listed] == [
        ("systolic", 2, "cm-a")
    ]
    other = httpx.put(url, headers=bearer(tokens["cm_b"]), json={"times_per_day": 1})
    assert other.status_code == 404


def test_a_doctor_approved_rule_set_judges_the_patients_who_use_it(cloud, broker, database_url):
    tokens = _setup_people(database_url)
    base, doctor = cloud.base_url, bearer(tokens["doc_a"])
    definition = httpx.get(f"{base}/api/v1/rule-sets/default", headers=doctor).json()
    definition.update(name="strict-hypo", version="2026-12-a")
    for rule in definition["thresholds"]:
        if rule["rule_id"] == "glucose.hypo.level1":
            rule["value"] = 4.5  # a frail patient's team wants earlier warnings
    assert (
        httpx.put(
            f"{base}/api/v1/rule-sets/strict-hypo", headers=doctor, json=definition
        ).status_code
        == 200
    )
    again = httpx.put(f"{base}/api/v1/rule-sets/strict-hypo", headers=doctor, json=definition)
    assert again.status_code == 409  # a changed rule set needs a new version
    by_case_manager = httpx.put(
        f"{base}/api/v1/rule-sets/strict-hypo", headers=bearer(tokens["cm_a"]), json=definition
    )
    assert by_case_manager.status_code == 403
    chosen = httpx.put(
        f"{base}/api/v1/patients/P-100/rule-set", headers=doctor, json={"name": "strict-hypo"}
    )
    assert chosen.status_code == 200

    _publish_glucose(broker.port, 4.2)  # unremarkable under the default rules
    item = _wait_for_queue_item(base, tokens["cm_a"])["items"][0]
    assert (item["rule_id"], item["tier"]) == ("glucose.hypo.level1", "high")
