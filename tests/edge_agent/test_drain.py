"""The drain's token bucket, with time passed in."""

import pytest

from edge_agent.drain import TokenBucket


def test_a_full_bucket_lets_a_burst_go_at_once_then_paces_to_the_rate():
    bucket = TokenBucket(rate_per_s=100, burst=200)
    assert bucket.wait_s(200, now=0.0) == 0
    bucket.take(200, now=0.0)
    assert bucket.wait_s(50, now=0.0) == pytest.approx(0.5)
    assert bucket.wait_s(50, now=0.25) == pytest.approx(0.25)
    assert bucket.wait_s(50, now=0.5) == 0


def test_the_average_rate_holds_over_a_long_drain():
    bucket = TokenBucket(rate_per_s=1000, burst=500)
    now, sent = 0.0, 0
    while sent < 100_000:
        now += bucket.wait_s(500, now)
        bucket.take(500, now)
        sent += 500
    # 100 k readings at 1000/s, less the first burst.
    assert now == pytest.approx((100_000 - 500) / 1000, rel=1e-6)


def test_a_batch_larger_than_the_burst_waits_only_for_a_full_bucket():
    bucket = TokenBucket(rate_per_s=10, burst=5)
    bucket.take(5, now=0.0)
    assert bucket.wait_s(1000, now=0.0) == pytest.approx(0.5)
    assert bucket.wait_s(1000, now=0.5) == 0


def test_tokens_never_exceed_the_burst_after_a_quiet_spell():
    bucket = TokenBucket(rate_per_s=10, burst=5)
    bucket.take(5, now=0.0)
    bucket.wait_s(1, now=3600.0)
    bucket.take(5, now=3600.0)
    assert bucket.wait_s(1, now=3600.0) == pytest.approx(0.1)


def test_time_going_backwards_adds_no_tokens():
    bucket = TokenBucket(rate_per_s=10, burst=5)
    bucket.take(5, now=10.0)
    assert bucket.wait_s(5, now=5.0) == pytest.approx(0.5)


def test_invalid_bucket():
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=0, burst=1)
