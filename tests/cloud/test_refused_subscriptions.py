"""What an ingest worker makes of its SUBACK: ready only when every filter is granted."""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from cloud.ingest.worker import refused_subscriptions

TOPICS = ("$share/ingest/carebridge/v1/edges/+/readings", "$share/ingest/carebridge/v1/x")


def _code(value: int) -> ReasonCode:
    return ReasonCode(PacketTypes.SUBACK, identifier=value)


def test_all_granted_is_no_problem():
    assert refused_subscriptions(TOPICS, [_code(1), _code(0)]) is None


def test_a_refusal_names_the_filter_and_the_brokers_reason():
    problem = refused_subscriptions(TOPICS, [_code(0x87), _code(1)])
    assert problem == (
        "the broker refused $share/ingest/carebridge/v1/edges/+/readings (Not authorized)"
    )


def test_every_refused_filter_is_named():
    problem = refused_subscriptions(TOPICS, [_code(0x87), _code(0x9E)])
    assert problem is not None
    assert "readings (Not authorized)" in problem
    assert "x (Shared subscription not supported)" in problem


def test_an_answer_for_fewer_filters_than_asked_is_a_problem():
    assert refused_subscriptions(TOPICS, [_code(1)]) == "the broker answered 1 of 2 subscriptions"
