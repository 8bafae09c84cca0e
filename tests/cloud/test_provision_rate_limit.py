"""The enrolment failure limiter (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.provisioning.rate_limit import FailureLimiter

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_the_tenth_failure_in_ten_minutes_blocks_until_the_first_leaves_the_window():
    limiter = FailureLimiter(10, timedelta(minutes=10))
    for n in range(9):
        limiter.failed("10.0.0.7", T0 + timedelta(seconds=n))
    assert limiter.retry_after("10.0.0.7", T0 + timedelta(seconds=9)) is None
    limiter.failed("10.0.0.7", T0 + timedelta(seconds=9))
    assert limiter.retry_after("10.0.0.7", T0 + timedelta(seconds=10)) == 590.0
    assert limiter.retry_after("10.0.0.8", T0 + timedelta(seconds=10)) is None  # per address
    assert limiter.retry_after("10.0.0.7", T0 + timedelta(minutes=10)) is None  # first one left


def test_memory_stays_bounded_by_dropping_the_stalest_address():
    limiter = FailureLimiter(1, timedelta(minutes=10), max_keys=2)
    limiter.failed("a", T0)
    limiter.failed("b", T0 + timedelta(seconds=1))
    limiter.failed("c", T0 + timedelta(seconds=2))
    now = T0 + timedelta(seconds=3)
    assert limiter.retry_after("a", now) is None  # forgotten to make room
    assert limiter.retry_after("b", now) is not None and limiter.retry_after("c", now) is not None


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        FailureLimiter(0, timedelta(minutes=1))
