"""Pure helpers for charts: how wide a bucket must be to show a range in N points."""

from __future__ import annotations

from datetime import timedelta

# Widths a person reads easily on a time axis, smallest first.
NICE_WIDTHS = (
    [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)]
    + [timedelta(hours=h) for h in (1, 2, 3, 6, 12)]
    + [timedelta(days=d) for d in (1, 2, 7, 14, 30)]
)


def bucket_width(span: timedelta, points: int) -> timedelta:
    """The smallest nice width that shows `span` in at most `points` buckets."""
    if points < 1:
        raise ValueError("points must be at least 1")
    if span <= timedelta(0):
        return NICE_WIDTHS[0]
    needed = span / points
    for width in NICE_WIDTHS:
        if width >= needed:
            return width
    days = -(-needed.total_seconds() // 86400)  # ceiling, whole days
    return timedelta(days=days)
