"""Read strategies: what part of a source one run reads, and where the next run resumes.

* **window**: a business-date range relative to the run date, e.g. attendance from -1 day to
  +30 days. Re-read in full every run; the ledger makes the unchanged part free to skip.
* **cursor**: records updated since the stored cursor, widened by a lookback. The lookback
  widens the *query* only; the stored cursor never goes backwards.
* **diff**: an opaque pagination key handed out by the source; stored as the source gives it.
* **backfill**: a historic range split into chunks of at most ``chunk`` each, every chunk
  checkpointed, so a killed backfill resumes in the chunk it stopped in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ticketbridge.connectors.base import Window

_OFFSET = re.compile(r"^\s*([+-]?)\s*(\d+)\s*([smhdwy])\s*$")
_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}


def parse_duration(text: str) -> timedelta:
    """``"-1d"`` -> -1 day, ``"+30d"``, ``"15m"``, ``"1y"`` (365 days). Raises ValueError."""
    m = _OFFSET.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration like -1d, +30d, 15m, 1y")
    sign, count, unit = m.groups()
    value = int(count) * _UNITS[unit]
    return -value if sign == "-" else value


def business_window(field: str, start: str, end: str, today: date, tz: str = "UTC") -> Window:
    """Whole days from ``today+start`` through ``today+end`` inclusive, in ``tz``.

    ``-1d`` to ``+30d`` on 2026-11-22 covers 2026-11-21 00:00 up to (not including)
    2026-12-23 00:00 local time: yesterday (for cancellations and no-shows) and 30 days ahead.
    """
    zone = ZoneInfo(tz)
    first = today + parse_duration(start)
    last = today + parse_duration(end)
    if last < first:
        raise ValueError(f"window end {end} is before its start {start}")
    lo = datetime.combine(first, time.min, zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time.min, zone).astimezone(UTC)
    return Window(field=field, start=lo, end=hi)


def backfill_chunks(
    field: str, start: date, end: date, chunk: timedelta, tz: str = "UTC"
) -> list[Window]:
    """Split ``[start, end)`` (dates) into consecutive windows of at most ``chunk``."""
    if end <= start:
        raise ValueError(f"backfill end {end} is not after its start {start}")
    if chunk <= timedelta(0):
        raise ValueError("backfill chunk must be positive")
    zone = ZoneInfo(tz)
    out: list[Window] = []
    lo = datetime.combine(start, time.min, zone)
    stop = datetime.combine(end, time.min, zone)
    while lo < stop:
        hi = min(stop, lo + chunk)
        out.append(Window(field=field, start=lo.astimezone(UTC), end=hi.astimezone(UTC)))
        lo = hi
    return out


def cursor_since(stored: datetime | None, lookback: timedelta) -> datetime | None:
    """Lower bound of the next query: the stored cursor minus the lookback."""
    return None if stored is None else stored - lookback


def advance_cursor(stored: datetime | None, seen: datetime | None) -> datetime | None:
    """The cursor to store: never lower than the stored one, whatever a lookback re-read."""
    if seen is None:
        return stored
    if stored is None:
        return seen
    return max(stored, seen)


def window_to_json(w: Window) -> dict[str, Any]:
    return {"field": w.field, "start": w.start.isoformat(), "end": w.end.isoformat()}


def window_from_json(data: dict[str, Any]) -> Window:
    return Window(
        field=str(data["field"]),
        start=datetime.fromisoformat(data["start"]),
        end=datetime.fromisoformat(data["end"]),
    )


@dataclass
class BackfillState:
    """Where a backfill is: its chunks, the current one, and the position inside it."""

    chunks: list[Window]
    index: int = 0
    position: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "chunks": [window_to_json(w) for w in self.chunks],
            "index": self.index,
            "position": self.position,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackfillState:
        return cls(
            chunks=[window_from_json(w) for w in data["chunks"]],
            index=int(data["index"]),
            position=data.get("position"),
        )

    def same_range(self, other: list[Window]) -> bool:
        return [window_to_json(w) for w in self.chunks] == [window_to_json(w) for w in other]
