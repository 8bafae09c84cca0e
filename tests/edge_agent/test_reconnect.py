"""Broker reconnect delays: jittered, capped, scaled by the cause."""

import random

import pytest

from edge_agent.reconnect import Backoff, Failure, classify


def test_reason_codes_are_classified():
    assert classify(None) is Failure.NETWORK
    assert classify(0x80) is Failure.NETWORK  # unspecified: a dropped link
    assert classify(0x86) is Failure.REFUSED  # bad user name or password
    assert classify(0x87) is Failure.REFUSED  # not authorised
    assert classify(0x89) is Failure.BUSY  # server busy
    assert classify(0x97) is Failure.BUSY  # quota exceeded


def test_network_delays_grow_exponentially_within_the_jitter_band():
    backoff = Backoff(min_s=1, max_s=60, rng=random.Random(7))
    for attempt in range(1, 12):
        delay = backoff.next_delay(Failure.NETWORK)
        assert 1 <= delay <= min(60, 2 ** (attempt - 1))
    # The band really widens: over many edges, later attempts wait far longer than the first.
    firsts, sixths = [], []
    for seed in range(200):
        edge = Backoff(min_s=1, max_s=60, rng=random.Random(seed))
        delays = [edge.next_delay(Failure.NETWORK) for _ in range(6)]
        firsts.append(delays[0])
        sixths.append(delays[5])
    assert set(firsts) == {1.0}
    assert max(sixths) > 24  # the sixth attempt's ceiling is 32 s


def test_jitter_spreads_edges_that_lost_the_broker_together():
    delays = []
    for seed in range(50):
        backoff = Backoff(min_s=1, max_s=60, rng=random.Random(seed))
        for _ in range(5):
            delay = backoff.next_delay(Failure.NETWORK)
        delays.append(delay)
    assert len({round(d, 3) for d in delays}) > 40
    assert max(delays) - min(delays) > 5


def test_a_refused_login_waits_near_the_maximum_at_once():
    backoff = Backoff(min_s=1, max_s=60, rng=random.Random(1))
    assert 30 <= backoff.next_delay(Failure.REFUSED) <= 60


def test_a_busy_broker_waits_longer_than_a_dropped_link():
    seeds = range(200)
    busy = [Backoff(1, 60, random.Random(s)).next_delay(Failure.BUSY) for s in seeds]
    drop = [Backoff(1, 60, random.Random(s)).next_delay(Failure.NETWORK) for s in seeds]
    assert max(drop) == 1
    assert sum(busy) / len(busy) > 2


def test_reset_after_a_connection_starts_again_from_the_minimum():
    backoff = Backoff(min_s=0.5, max_s=10, rng=random.Random(3))
    for _ in range(10):
        backoff.next_delay(Failure.NETWORK)
    backoff.reset()
    assert backoff.next_delay(Failure.NETWORK) == 0.5


def test_invalid_backoff():
    with pytest.raises(ValueError):
        Backoff(min_s=2, max_s=1)
