"""Read strategies: what part of a source one run reads, and where the next run resumes.

* **window**: a business-date range relative to the run date, e.g. attendance from -1 day to
  +30 days. Re-read in full every run; the ledger makes the unchanged part free to skip.
* **cursor**: records updated since the stored cursor, widened by a lookback. The lookback
  widens the *query* only; the stored cursor never goes backwards.
* **diff**: an opaque pagination key handed out by the source; stored as the source gives it.
* **backfill**: a historic range split into chunks of at most ``chunk`` each, every chunk
  checkpointed, so a killed backfill resumes in the chunk it stopped in.

:class:`RunReads` turns a sync, a run's options and its checkpoint into the run's read
requests, and says which checkpoint each read's progress moves:

* A run makes one request of its strategy, resuming at the stored ``position``; the position
  is cleared at the end of the run, so the next run reads its own window or cursor afresh.
* A backfill makes one request per chunk and keeps its progress under ``backfill``; a chunk
  read in full moves it to the next chunk, and a finished backfill drops it. A backfill never
  touches the run's ``position`` or ``cursor``.
* A retry run makes no request: it only retries the dead letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ticketbridge.connectors.base import ReadRequest, Window
from ticketbridge.engine.state.corrupt import checkpoint_error
from ticketbridge.errors import StateError, TicketbridgeError

if TYPE_CHECKING:
    from ticketbridge.engine.spec import RunOptions, SyncSpec

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


def today_in(tz: str) -> date:
    """Today's date in ``tz``. A window's days are that zone's days, so its "today" is too:
    at 23:30 UTC it is already tomorrow in Oslo, and there ``+0d`` is tomorrow's UTC date."""
    return datetime.now(ZoneInfo(tz)).date()


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


def backfill_windows(spec: SyncSpec, opts: RunOptions) -> list[Window]:
    """The chunks a backfill of ``spec`` reads, in order (the console shows them before an
    import starts). Raises TicketbridgeError without a start date, ValueError for an empty
    range."""
    start = spec.backfill_from
    if start is None:
        raise TicketbridgeError(f"sync {spec.name}: backfill needs a start date (--from)")
    field_name = spec.window.field if spec.window else "updated_at"
    tz = spec.days_zone
    end = opts.backfill_to or opts.today or today_in(tz)
    return backfill_chunks(field_name, start, end, spec.backfill_chunk, tz)


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


class RunReads:
    """The read requests of one run, and the checkpoint each one's progress moves.

    ``checkpoint`` is the run's own, loaded from the store and changed here in place; every
    checkpoint handed out is a copy, to commit with the batch that completes it. Requests are
    made lazily, so a bad window or backfill range ends the run only when it starts reading.
    """

    def __init__(self, spec: SyncSpec, opts: RunOptions, checkpoint: dict[str, Any]) -> None:
        self.spec = spec
        self.opts = opts
        self.checkpoint = checkpoint
        self._backfill: BackfillState | None = None

    def requests(self) -> Iterator[ReadRequest]:
        """The run's requests in order; the next is made once the last is read in full."""
        spec, cp = self.spec, self.checkpoint
        base = ReadRequest(
            stream=spec.stream, options=spec.stream_options, page_size=spec.page_size
        )
        if self.opts.kind == "retry":
            return
        if self.opts.kind == "backfill":
            yield from self._backfill_requests(base)
            return
        if spec.strategy == "window":
            assert spec.window is not None
            w = spec.window
            today = self.opts.today or today_in(w.timezone)
            window = business_window(w.field, w.start, w.end, today, w.timezone)
            yield replace(base, window=window, position=cp.get("position"))
        elif spec.strategy == "cursor":
            since = cursor_since(self._stored_cursor(), spec.lookback)
            yield replace(base, since=since, position=cp.get("position"))
        else:
            yield replace(base, position=cp.get("position"))

    def _backfill_requests(self, base: ReadRequest) -> Iterator[ReadRequest]:
        spec = self.spec
        chunks = backfill_windows(spec, self.opts)
        saved = self.checkpoint.get("backfill")
        state = BackfillState(chunks)
        if saved:
            try:
                old = BackfillState.from_json(saved)
            except (KeyError, TypeError, ValueError) as exc:
                raise self._corrupt(f"backfill: {type(exc).__name__}: {exc}") from None
            if old.same_range(chunks):
                state = old
        self._backfill = state
        for index in range(state.index, len(chunks)):
            if index != state.index:
                state.index, state.position = index, None
            self.checkpoint["backfill"] = state.to_json()
            request = replace(base, window=chunks[index], position=state.position)
            if spec.strategy == "cursor":
                # A cursor source has no business-date window: the chunk bounds updated-at.
                request.since = chunks[index].start
            yield request
        self.checkpoint.pop("backfill", None)
        self._backfill = None

    def at(self, position: dict[str, Any] | None) -> dict[str, Any]:
        """The checkpoint once the current request has been read up to ``position``."""
        if self.opts.kind == "backfill":
            state = dict(self.checkpoint["backfill"])
            state["position"] = position
            self.checkpoint["backfill"] = state
        else:
            self.checkpoint["position"] = position
        return dict(self.checkpoint)

    def request_done(self) -> dict[str, Any] | None:
        """The checkpoint to commit once the current request is read and committed in full:
        a backfill's next chunk. None for a run's one request, whose end the run's last
        commit records (:meth:`final`)."""
        state = self._backfill
        if state is None:
            return None
        state.index, state.position = state.index + 1, None
        self.checkpoint["backfill"] = state.to_json()
        return dict(self.checkpoint)

    def final(self, max_cursor: datetime | None) -> dict[str, Any]:
        """The checkpoint at the end of the run, given the highest cursor its records had."""
        cp = self.checkpoint
        if self.opts.kind != "backfill" and self.spec.strategy in ("window", "cursor", "full"):
            cp["position"] = None
        if self.spec.strategy == "cursor" and self.opts.kind != "backfill":
            new = advance_cursor(self._stored_cursor(), max_cursor)
            cp["cursor"] = new.isoformat() if new else None
        return dict(cp)

    def _stored_cursor(self) -> datetime | None:
        stored = self.checkpoint.get("cursor")
        if not stored:
            return None
        try:
            return datetime.fromisoformat(stored)
        except (TypeError, ValueError):
            raise self._corrupt(f"cursor {stored!r} is not an ISO date-time") from None

    def _corrupt(self, problem: str) -> StateError:
        return checkpoint_error(self.spec.name, problem, "the state database")
