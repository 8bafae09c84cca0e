from datetime import date, timedelta

import pytest

from cloud.readings.charts import bucket_width
from cloud.readings.home_bp import HomeBpReading, home_bp_average


@pytest.mark.parametrize(
    ("span", "points", "width"),
    [
        (timedelta(days=90), 90, timedelta(days=1)),
        (timedelta(days=90), 100, timedelta(days=1)),
        (timedelta(days=7), 200, timedelta(hours=1)),
        (timedelta(hours=1), 60, timedelta(minutes=1)),
        (timedelta(days=3650), 10, timedelta(days=365)),
        (timedelta(0), 10, timedelta(minutes=1)),
    ],
)
def test_bucket_width_is_the_smallest_nice_width_that_fits(span, points, width):
    assert bucket_width(span, points) == width
    assert span / bucket_width(span, points) <= points


def _day(n, sys_, dia):
    return HomeBpReading(date(2026, 11, 1) + timedelta(days=n), sys_, dia)


def test_first_day_is_discarded_and_three_days_suffice():
    result = home_bp_average(
        [_day(0, 180, 100), _day(1, 130, 80), _day(2, 140, 90), _day(3, 150, 100)]
    )
    assert (result.systolic, result.diastolic) == (140.0, 90.0)
    assert result.day_discarded == date(2026, 11, 1)
    assert result.sufficient


def test_too_few_days_is_reported_not_hidden():
    result = home_bp_average([_day(0, 150, 95), _day(1, 130, 80)])
    assert result.systolic == 130.0 and not result.sufficient


def test_no_readings_gives_no_average():
    result = home_bp_average([])
    assert result.systolic is None and result.readings_used == 0
