from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.windows import (
    advance_cursor,
    backfill_chunks,
    business_window,
    cursor_since,
    parse_duration,
)


def test_business_window_covers_yesterday_through_day_30() -> None:
    w = business_window("attendance_at", "-1d", "+30d", date(2026, 11, 22), "Europe/London")
    assert w.start == datetime(2026, 11, 21, tzinfo=UTC)
    assert w.end == datetime(2026, 12, 23, tzinfo=UTC)


def test_business_window_uses_the_venue_timezone() -> None:
    w = business_window("attendance_at", "0d", "0d", date(2026, 7, 1), "Europe/Oslo")
    assert w.start == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert w.end - w.start == timedelta(days=1)


def test_backfill_chunks_never_exceed_the_chunk_length() -> None:
    chunks = backfill_chunks("d", date(2024, 1, 1), date(2026, 3, 1), timedelta(days=365))
    assert len(chunks) == 3
    assert all(c.end - c.start <= timedelta(days=365) for c in chunks)
    assert chunks[0].start == datetime(2024, 1, 1, tzinfo=UTC)
    assert chunks[-1].end == datetime(2026, 3, 1, tzinfo=UTC)
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))


def test_cursor_lookback_widens_the_query_but_never_lowers_the_cursor() -> None:
    stored = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert cursor_since(stored, timedelta(hours=1)) == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert advance_cursor(stored, stored - timedelta(minutes=30)) == stored
    advanced = advance_cursor(stored, stored + timedelta(minutes=1))
    assert advanced is not None and advanced > stored
    assert advance_cursor(None, None) is None


@pytest.mark.parametrize("bad", ["1", "tomorrow", "+-1d", "3x"])
def test_bad_durations_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_policy_modes_per_action() -> None:
    p = WritePolicy.build(
        {"contact": "on_create"},
        {"booking": {"*": "always", "notes": "never", "stage": "if_empty"}},
    )
    mapped: dict[str, dict[str, Any]] = {
        "contact": {"email": "a@b.c"},
        "booking": {"ref": "1", "notes": "x", "stage": 1},
    }
    create, empty = p.apply("create", mapped)
    assert create == {"contact": {"email": "a@b.c"}, "booking": {"ref": "1", "stage": 1}}
    assert empty == frozenset()
    update, empty = p.apply("update", mapped)
    assert update == {"booking": {"ref": "1", "stage": 1}}
    assert empty == {"booking.stage"}


def test_policy_rejects_unknown_modes() -> None:
    with pytest.raises(ValueError, match="write mode"):
        WritePolicy.build({}, {"contact": "sometimes"})
