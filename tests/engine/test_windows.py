from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fakes import TODAY, spec
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import RunOptions
from ticketbridge.engine.windows import (
    RunReads,
    advance_cursor,
    backfill_chunks,
    backfill_windows,
    business_window,
    cursor_since,
    parse_duration,
    today_in,
)
from ticketbridge.errors import TicketbridgeError


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


def test_a_run_reads_its_window_from_the_stored_position_and_clears_it_at_the_end() -> None:
    reads = RunReads(spec(strategy="window"), RunOptions(today=TODAY), {"position": {"next": 7}})
    (request,) = reads.requests()
    assert request.position == {"next": 7}
    assert request.window == business_window("attendance_at", "-1d", "+30d", TODAY)
    assert reads.at({"next": 9}) == {"position": {"next": 9}}
    assert reads.request_done() is None
    assert reads.final(None) == {"position": None}


def _zone_on_another_day_than_utc() -> str:
    """A zone whose date differs from UTC's right now: UTC+14 from 10:00 UTC, else UTC-12."""
    return "Pacific/Kiritimati" if datetime.now(UTC).hour >= 10 else "Etc/GMT+12"


def test_a_window_counts_its_days_from_today_in_its_own_zone() -> None:
    # A run at 00:30 in Oslo (23:30 UTC) reads "+0d" as the Oslo day that has just begun.
    zone = _zone_on_another_day_than_utc()
    base = spec(strategy="window")
    assert base.window is not None
    s = replace(base, window=replace(base.window, start="0d", end="0d", timezone=zone))
    (request,) = RunReads(s, RunOptions(), {}).requests()
    local_today = datetime.now(ZoneInfo(zone)).date()
    assert local_today != datetime.now(UTC).date()
    assert request.window == business_window("attendance_at", "0d", "0d", local_today, zone)
    assert today_in(zone) == local_today


def test_a_backfill_ends_today_in_the_windows_zone() -> None:
    zone = _zone_on_another_day_than_utc()
    base = spec(strategy="window", backfill_from=date(2026, 1, 1))
    assert base.window is not None
    s = replace(base, window=replace(base.window, timezone=zone))
    last = backfill_windows(s, RunOptions(kind="backfill"))[-1]
    assert last.end == datetime.combine(today_in(zone), datetime.min.time(), ZoneInfo(zone))


def test_a_cursor_run_widens_the_query_and_never_lowers_the_stored_cursor() -> None:
    stored = datetime(2026, 1, 1, 12, tzinfo=UTC)
    cp = {"cursor": stored.isoformat()}
    reads = RunReads(spec(strategy="cursor", lookback=timedelta(hours=1)), RunOptions(), cp)
    (request,) = reads.requests()
    assert request.since == stored - timedelta(hours=1)
    assert reads.final(stored - timedelta(minutes=5))["cursor"] == stored.isoformat()
    later = stored + timedelta(minutes=5)
    assert reads.final(later) == {"position": None, "cursor": later.isoformat()}


def test_a_diff_run_keeps_its_pagination_key() -> None:
    reads = RunReads(spec(strategy="diff"), RunOptions(), {"position": {"key": "abc"}})
    (request,) = reads.requests()
    assert request.position == {"key": "abc"}
    reads.at({"key": "def"})
    assert reads.final(None) == {"position": {"key": "def"}}


def test_a_retry_run_reads_nothing() -> None:
    reads = RunReads(spec(), RunOptions(kind="retry"), {"position": {"next": 3}})
    assert list(reads.requests()) == []


def test_a_backfill_moves_chunk_by_chunk_and_resumes_in_its_chunk() -> None:
    s = spec(strategy="window", backfill_from=date(2024, 1, 1))
    opts = RunOptions(kind="backfill", backfill_to=date(2026, 3, 1))
    cp: dict[str, object] = {"position": {"next": 99}}
    reads = RunReads(s, opts, cp)
    requests = reads.requests()
    first = next(requests)
    assert first.position is None and first.window is not None
    assert first.window.start == datetime(2024, 1, 1, tzinfo=UTC)
    halfway = reads.at({"next": 4})
    assert halfway["backfill"]["index"] == 0 and halfway["backfill"]["position"] == {"next": 4}
    done = reads.request_done()
    assert done is not None and done["backfill"]["index"] == 1
    assert done["backfill"]["position"] is None and done["position"] == {"next": 99}

    # A run killed inside the second chunk resumes there, at its position.
    reads.at({"next": 2})
    resumed = RunReads(s, opts, dict(cp))
    again = list(resumed.requests())
    assert len(again) == 2 and again[0].position == {"next": 2}
    assert again[0].window == next(requests).window
    assert "backfill" not in resumed.checkpoint
    assert resumed.final(None) == {"position": {"next": 99}}


def test_a_backfill_of_another_range_starts_again() -> None:
    opts = RunOptions(kind="backfill", backfill_to=date(2026, 3, 1))
    old = RunReads(spec(strategy="window", backfill_from=date(2024, 1, 1)), opts, {})
    next(old.requests())
    old.request_done()
    other = spec(strategy="window", backfill_from=date(2025, 1, 1))
    (first, _) = RunReads(other, opts, dict(old.checkpoint)).requests()
    assert first.window is not None and first.window.start == datetime(2025, 1, 1, tzinfo=UTC)


def test_a_cursor_backfill_bounds_updated_at_by_the_chunk() -> None:
    s = spec(strategy="cursor", backfill_from=date(2025, 1, 1))
    reads = RunReads(s, RunOptions(kind="backfill", backfill_to=date(2025, 6, 1)), {})
    (request,) = reads.requests()
    assert request.since == datetime(2025, 1, 1, tzinfo=UTC)


def test_a_backfill_without_a_start_fails_when_it_starts_reading() -> None:
    reads = RunReads(spec(), RunOptions(kind="backfill"), {})
    requests = reads.requests()  # nothing is checked yet
    with pytest.raises(TicketbridgeError, match="--from"):
        next(requests)
