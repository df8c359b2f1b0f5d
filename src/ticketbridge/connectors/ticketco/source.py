"""The TicketCo source: streams ``bookings`` (item grosses grouped by ref_number) and
``tickets`` (each item gross a ticket, with its event).

TicketCo can only be asked for item grosses per event, and its event filters are not
documented precisely enough to rely on (``location`` is a search, ``start_at`` an exact
date), so a read lists every event, filters venues and the attendance window here, and then
reads the selected events one by one in (start_at, id) order. That order makes the event the
natural resume unit: the position after an event's last page says "everything up to this
event is done". Both streams share that reader; they differ only in what an event's items
are mapped to.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from pydantic import Field

from ticketbridge.connectors.base import (
    CheckResult,
    Failed,
    Page,
    ReadRequest,
    Record,
    StreamOptions,
    StreamSpec,
    Window,
)
from ticketbridge.connectors.kit import SourceKit, coerce_options, one_ahead
from ticketbridge.connectors.ticketco.client import PLATFORM, TicketcoClient
from ticketbridge.connectors.ticketco.config import TicketcoConfig
from ticketbridge.connectors.ticketco.mapping import (
    MappingContext,
    booking_key,
    clean_venue_name,
    event_start,
    group_items,
    map_booking,
    map_event,
    map_ticket,
    orphan_key,
    parse_time,
    ref_of,
    ticket_key,
    ticket_number,
    venue_key,
)
from ticketbridge.connectors.ticketco.schemas import TicketcoEvent
from ticketbridge.errors import AuthError, ConnectorError, FatalError, MappingError
from ticketbridge.http.paginate import shape_of
from ticketbridge.model import Event, Ticket

if TYPE_CHECKING:
    from ticketbridge.http.context import HttpContext

log = structlog.get_logger("ticketbridge.connectors.ticketco")

DEFAULT_PAGE_SIZE = 500


class BookingsOptions(StreamOptions):
    """``venues``: TicketCo venue (location) names to read; empty reads every venue. Names
    match case- and whitespace-insensitively, as venues type them by hand in setup forms."""

    venues: list[str] = Field(default_factory=list)


BOOKINGS = StreamSpec(
    name="bookings",
    kind="booking",
    strategies=("window",),
    window_fields=("attendance_at",),
    options=BookingsOptions,
    description="Bookings (item grosses grouped by ref_number) of events whose start falls "
    "in the window, at the configured venues.",
)

TICKETS = StreamSpec(
    name="tickets",
    kind="ticket",
    strategies=("window",),
    window_fields=("attendance_at", "starts_at"),
    options=BookingsOptions,
    description="Tickets (one per item gross, with its event, seat and status) of events whose "
    "start falls in the window, at the configured venues.",
)

_IdKey = tuple[int, int, str]
_Order = tuple[int, float, _IdKey]


def _id_key(event_id: object) -> _IdKey:
    text = str(event_id)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _order(start: datetime | None, event_id: object) -> _Order:
    # Events whose start cannot be read sort last: their bookings fail mapping with the
    # reason, and must still come out of the read exactly once.
    if start is None:
        return (1, 0.0, _id_key(event_id))
    return (0, start.timestamp(), _id_key(event_id))


# An event's payload with its status, and its item grosses (None: read as they are mapped).
_Fetched = tuple[dict[str, Any], list[dict[str, Any]] | None]


@dataclass(frozen=True)
class _Selected:
    raw: dict[str, Any]
    id: Any
    start: datetime | None

    @property
    def order(self) -> _Order:
        return _order(self.start, self.id)


class TicketcoSource(SourceKit[TicketcoConfig]):
    """Reads bookings from one TicketCo account."""

    platform = PLATFORM
    config_model = TicketcoConfig
    STREAMS = (BOOKINGS, TICKETS)
    client: TicketcoClient
    # ``source_process: auto`` reads TicketCo in a child process: every run reads its whole
    # window again and maps every item gross (about half of a run's CPU on a large load), and
    # one read keeps nothing another read or the destination needs.
    reads_in_child: ClassVar[bool] = True

    def open_client(self, config: TicketcoConfig, context: HttpContext) -> TicketcoClient:
        return TicketcoClient(config, context)

    def _context(self) -> MappingContext:
        return MappingContext(
            now=self.now(),
            zone=self.config.zone,
            default_region=self.config.default_region,
            currency=self.config.currency,
        )

    # -- reading -------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        """Yield pages of at most ``request.page_size`` (default 500) bookings (or tickets,
        stream ``tickets``) or failures.

        Invariants: events come in (start_at, id) order; only the last page of an event
        carries a position, ``{"after": [start_iso, event_id], "window": [start, end]}``;
        resuming with that position (same window) emits every later event exactly once and
        nothing before. Unmappable groups are :class:`Failed`, never dropped or raised.
        """
        options = self.stream_options(request.stream, request.options, BookingsOptions)
        tickets = request.stream == TICKETS.name
        window = self._aware(request.window)
        ctx = self._context()  # one clock reading per run: statuses agree across pages
        size = max(1, request.page_size or DEFAULT_PAGE_SIZE)
        window_pos = [window.start.isoformat(), window.end.isoformat()] if window else None
        resume = self._resume_after(request.position, window)
        events = [
            ev
            for ev in await self._select(options.venues, window)
            if resume is None or ev.order > resume
        ]

        async def fetch(ev: _Selected) -> _Fetched:
            raw_event = await self._with_status(ev, ctx.now)
            if self.config.item_grosses_grouped:
                return raw_event, None  # read page by page as it is mapped
            items: list[dict[str, Any]] = []
            async for page_items in self.client.item_grosses(ev.id):
                items.extend(page_items)
            return raw_event, items

        # The next event's item grosses are read while this one's are mapped (one_ahead).
        async with contextlib.aclosing(one_ahead(events, fetch)) as fetched:
            async for ev, (raw_event, items) in fetched:
                position = {
                    "after": [ev.start.isoformat() if ev.start else None, ev.id],
                    "window": window_pos,
                }
                mapper = _EventMapper(raw_event, ctx, tickets=tickets)
                # A full page is held back until more follows, so that the event's last page
                # (which carries the position) is never an empty one after a full one.
                pending: list[Record | Failed] = []
                mapped = (
                    self._grouped_entries(ev, mapper)
                    if items is None
                    else _at_once(mapper.map(group_items(items)))
                )
                async for entries in mapped:
                    pending.extend(entries)
                    while len(pending) > size:
                        yield _page(pending[:size], None)
                        del pending[:size]
                yield _page(pending, position)

    async def _grouped_entries(
        self, ev: _Selected, mapper: _EventMapper
    ) -> AsyncIterator[list[Record | Failed]]:
        """With ``item_grosses_grouped``: the event's bookings and failures, mapped page by
        page as each ref_number's group ends."""
        closed: set[str] = set()
        tail: list[dict[str, Any]] = []  # the last group so far: it may go on next page
        last: str | None = None
        async for page_items in self.client.item_grosses(ev.id):
            groups = group_items(tail + page_items)
            last, tail = groups.pop()
            ended = [ref for ref, _items in groups if ref is not None]
            again = next((r for r in (*ended, last) if r is not None and r in closed), None)
            if again is not None:
                raise _not_grouped(ev.id, again)
            closed.update(ended)
            yield mapper.map(groups)
        if tail:
            yield mapper.map([(last, tail)])

    async def _select(self, venues: list[str], window: Window | None) -> list[_Selected]:
        wanted = {venue_key(v) for v in venues if venue_key(v)}
        zone = self.config.zone
        found: dict[str, _Selected] = {}
        async for page in self.client.events():
            for raw in page:
                if (broken := _not_an_event(raw)) is not None:
                    raise broken
                if wanted and venue_key(_venue_of(raw)) not in wanted:
                    continue
                start = event_start(raw, zone)
                if (
                    window is not None
                    and start is not None
                    and not (window.start <= start < window.end)
                ):
                    continue
                # Page-number paging can repeat an event when the list shifts mid-read.
                found.setdefault(str(raw["id"]), _Selected(raw=raw, id=raw["id"], start=start))
        return sorted(found.values(), key=lambda ev: ev.order)

    async def _with_status(self, ev: _Selected, now: datetime) -> dict[str, Any]:
        """The event payload with its status: from the list if present, else asked for, but
        only for events that have started (only those can be over)."""
        if ev.raw.get("status") is not None or ev.start is None or ev.start > now:
            return ev.raw
        try:
            status = await self.client.event_status(ev.id)
        except AuthError:
            raise
        except FatalError as exc:
            log.warning("ticketco.event_status_unavailable", event_id=ev.id, status=exc.status)
            return ev.raw
        return {**ev.raw, "status": status} if status is not None else ev.raw

    def _aware(self, window: Window | None) -> Window | None:
        if window is None:
            return None
        zone = self.config.zone
        start = window.start if window.start.tzinfo else window.start.replace(tzinfo=zone)
        end = window.end if window.end.tzinfo else window.end.replace(tzinfo=zone)
        return Window(field=window.field, start=start, end=end)

    def _resume_after(
        self, position: dict[str, Any] | None, window: Window | None
    ) -> _Order | None:
        """The order key of the last finished event, if ``position`` belongs to ``window``.

        A position from another window is ignored (the read starts over): re-reading is
        safe, skipping is not.
        """
        if not position or not isinstance(position.get("after"), list):
            return None
        try:
            if not _same_window(position.get("window"), window, self.config):
                return None
            start_iso, event_id = position["after"]
            start = parse_time(start_iso, self.config.zone) if start_iso else None
        except (ValueError, TypeError):
            log.warning("ticketco.position_unreadable")
            return None
        return _order(start, event_id)

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        """Map a stored ``{"event": {...}, "items": [...]}`` payload (a ``Failed.raw``) again,
        or, stream ``tickets``, ``{"event": {...}, "item": {...}, "index": n}``.

        Raises MappingError with the reason when it still cannot be mapped."""
        if self.stream_spec(stream).name == TICKETS.name:
            return self._remap_ticket(raw)
        event, items = raw.get("event"), raw.get("items")
        if (
            not isinstance(event, dict)
            or not isinstance(items, list)
            or not items
            or not all(isinstance(i, dict) for i in items)
        ):
            raise MappingError("booking:ticketco:?", "raw payload needs 'event' and 'items'")
        try:
            return _record(map_booking(event, items, self._context()))
        except (ValueError, TypeError) as exc:
            ref = items[0].get("ref_number") if isinstance(items[0], dict) else None
            raise MappingError(booking_key(str(ref)), f"{type(exc).__name__}: {exc}") from None

    def _remap_ticket(self, raw: dict[str, Any]) -> Record:
        event, item, index = raw.get("event"), raw.get("item"), raw.get("index")
        if not isinstance(event, dict) or not isinstance(item, dict) or not isinstance(index, int):
            raise MappingError(_ticket_key_of(raw), "raw payload needs 'event', 'item', 'index'")
        try:
            return _ticket_record(map_ticket(event, item, index, self._context()))
        except (ValueError, TypeError) as exc:
            raise MappingError(_ticket_key_of(raw), f"{type(exc).__name__}: {exc}") from None

    # -- checking ------------------------------------------------------------------------

    async def check(self, options: StreamOptions | None = None) -> list[CheckResult]:
        """Token accepted; each configured venue exists; item grosses readable.

        ``options`` are the bookings stream's options of a sync (its ``venues``); without
        them the venue check lists the venues seen.
        """
        results: list[CheckResult] = []
        try:
            await self.client.events_page(1)
        except AuthError as exc:
            detail = f"token rejected (HTTP {exc.status}); ask TicketCo support for a new one"
            return [CheckResult("token", False, detail)]
        except ConnectorError as exc:
            return [CheckResult("token", False, exc.message)]
        results.append(CheckResult("token", True, "token accepted (events readable)"))

        wanted = coerce_options(options, BookingsOptions).venues if options is not None else []
        events: list[dict[str, Any]] = []
        async for page in self.client.events():
            for raw in page:
                if (broken := _not_an_event(raw)) is not None:
                    results.append(CheckResult("events", False, broken.message))
                    return results
                events.append(raw)
        seen = sorted({n for e in events if (n := clean_venue_name(_venue_of(e)))})
        seen_keys = {venue_key(n) for n in seen}
        missing = [v for v in wanted if venue_key(v) not in seen_keys]
        if missing:
            detail = (
                f"venue(s) not found among TicketCo events: {', '.join(missing)} "
                f"(seen: {', '.join(seen) or 'none'})"
            )
            results.append(CheckResult("venues", False, detail))
        elif wanted:
            results.append(CheckResult("venues", True, f"all {len(wanted)} venue(s) found"))
        else:
            results.append(CheckResult("venues", True, f"no venue filter; seen: {', '.join(seen)}"))

        wanted_keys = {venue_key(v) for v in wanted}
        probe = next(
            (
                e
                for e in events
                if e.get("id") is not None
                and (not wanted_keys or venue_key(_venue_of(e)) in wanted_keys)
            ),
            None,
        )
        if probe is None:
            results.append(CheckResult("item_grosses", True, "skipped: no event to read"))
            return results
        try:
            await self.client.item_grosses_page(probe["id"])
        except AuthError as exc:
            results.append(
                CheckResult(
                    "item_grosses",
                    False,
                    f"item grosses refused (HTTP {exc.status}): the token lacks the Item grosses "
                    "data set",
                )
            )
        except ConnectorError as exc:
            results.append(CheckResult("item_grosses", False, exc.message))
        else:
            results.append(CheckResult("item_grosses", True, "item grosses readable"))
        return results


class _EventMapper:
    """Maps one event's ref_number groups to records or failures, in one or more calls: one
    booking per group, or (``tickets``) one ticket per item."""

    def __init__(
        self, raw_event: dict[str, Any], ctx: MappingContext, *, tickets: bool = False
    ) -> None:
        self.raw_event = raw_event
        self.ctx = ctx
        self.tickets = tickets
        self.orphans = 0  # numbers this event's items without a ref_number, across calls
        self.prepared: tuple[TicketcoEvent, Event] | None
        try:
            self.prepared = map_event(raw_event, ctx.zone, "event")
        except MappingError:
            self.prepared = None  # each booking then fails with the reason, under its own key

    def map(self, groups: list[tuple[str | None, list[dict[str, Any]]]]) -> list[Record | Failed]:
        if self.tickets:
            return [e for _ref, group in groups for e in self._tickets(group)]
        out: list[Record | Failed] = []
        raw_event = self.raw_event
        for ref, group in groups:
            raw = {"event": raw_event, "items": group}
            if ref is None:
                first = group[0]
                item_id = first.get("id") if isinstance(first, dict) else None
                out.append(
                    Failed(
                        orphan_key(raw_event.get("id"), item_id, self.orphans),
                        "ref_number missing",
                        raw,
                    )
                )
                self.orphans += 1
                continue
            try:
                out.append(_record(map_booking(raw_event, group, self.ctx, prepared=self.prepared)))
            except MappingError as exc:
                out.append(Failed(exc.record_key, exc.reason, raw))
            except (ValueError, TypeError) as exc:  # a payload shape nobody foresaw
                out.append(Failed(booking_key(ref), f"{type(exc).__name__}: {exc}", raw))
        return out

    def _tickets(self, group: list[dict[str, Any]]) -> list[Record | Failed]:
        out: list[Record | Failed] = []
        for index, item in enumerate(group):
            raw: dict[str, Any] = {"event": self.raw_event, "item": item, "index": index}
            try:
                ticket = map_ticket(self.raw_event, item, index, self.ctx, prepared=self.prepared)
                out.append(_ticket_record(ticket))
            except MappingError as exc:
                out.append(Failed(exc.record_key, exc.reason, raw))
            except (ValueError, TypeError) as exc:  # a payload shape nobody foresaw
                out.append(Failed(_ticket_key_of(raw), f"{type(exc).__name__}: {exc}", raw))
        return out


def _ticket_key_of(raw: Mapping[str, Any]) -> str:
    item, index = raw.get("item"), raw.get("index")
    if isinstance(item, dict) and isinstance(index, int):
        number = ticket_number(item, ref_of(item), index)
        if number is not None:
            return ticket_key(number)
    return ticket_key("?")


def _not_an_event(raw: object) -> FatalError | None:
    """The error for a ``GET /events`` entry that is not an event as TicketCo documents it.

    Skipping such entries would read "no bookings" where the answer is broken, and end the run
    ``ok``: a response that is not the documented shape is an error of the run (DESIGN 3.5).
    """
    if isinstance(raw, dict) and isinstance(raw.get("id"), int | str) and raw["id"] != "":
        return None
    return FatalError(
        f"GET /events: an entry is {shape_of(raw)}, not an event with an id", platform=PLATFORM
    )


async def _at_once(entries: list[Record | Failed]) -> AsyncIterator[list[Record | Failed]]:
    yield entries


def _page(entries: list[Record | Failed], position: dict[str, Any] | None) -> Page:
    return Page(
        records=[e for e in entries if isinstance(e, Record)],
        failures=[e for e in entries if isinstance(e, Failed)],
        position=position,
    )


def _not_grouped(event_id: object, ref: str) -> FatalError:
    # Raised before the event's position is yielded: the run fails without checkpointing
    # this event, and a run with the setting off reads it again whole.
    return FatalError(
        f"item grosses of ref_number {ref} in event {event_id} are not one after another; "
        "set item_grosses_grouped: false on this TicketCo connection",
        platform="ticketco",
    )


def _record(booking: Any) -> Record:
    return Record(
        key=booking_key(booking.confirmation_number),
        kind="booking",
        data=booking,
        cursor=booking.updated_at,
    )


def _ticket_record(ticket: Ticket) -> Record:
    return Record(
        key=ticket_key(ticket.number), kind="ticket", data=ticket, cursor=ticket.updated_at
    )


def _venue_of(raw: Mapping[str, Any]) -> str | None:
    value = raw.get("location_name") or raw.get("location")
    return str(value) if value is not None else None


def _same_window(stored: Any, window: Window | None, config: TicketcoConfig) -> bool:
    if stored is None or window is None:
        return stored is None and window is None
    start, end = (parse_time(v, config.zone) for v in stored)
    return start == window.start and end == window.end
