"""The Ticketmaster source: stream ``customers`` (members as contacts, their orders as bookings)
and stream ``tickets`` (each purchased ticket of the orders, as canonical tickets).

A read covers one range of update times, ``[lo, hi)``: ``lo`` is the cursor (``since``) or the
backfill chunk's start; ``hi`` is the moment the read began (rounded up to the second), or
the chunk's end if earlier.
Freezing ``hi`` matters: customers are read before orders, and without an upper bound an order
updated mid-run could carry the cursor past a customer updated just after the customer scan,
which the next run would then never ask for.

Each phase (customers, then orders) scans its list ascending by ``updated_at``. Plain page
numbers would lose records in two ways: Discovery refuses pages past ``size * page < 1000``,
and a record updated mid-scan leaves its place, so every later record moves up one place and
the next page number skips one. So after every page the query restarts at the last
``updated_at`` seen (``updated_since`` is inclusive), and the ``page{}`` object only says
whether more is left. Records already emitted at exactly that timestamp come back and are
skipped by id, so a scan emits each record once. Page numbers are used only to get through a
group of records sharing one timestamp that is larger than a page; such a group is capped by
the deep-paging rule, and one that is larger still stops the read with an error rather than
skipping records.

A position given back after a crash may repeat a few records (harmless: the engine's ledger
skips unchanged ones) but never skips one.

The ``tickets`` stream is the orders phase alone: each order of a page becomes its tickets
(its buyer looked up once per run as their holder, unless ``holders: false``), so its
positions and resumes are the orders', and a page's tickets are those of its orders.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ticketbridge.connectors.base import (
    CheckResult,
    Failed,
    Page,
    ReadRequest,
    Record,
    StreamOptions,
)
from ticketbridge.connectors.kit import SourceKit
from ticketbridge.connectors.ticketmaster.client import TicketmasterClient
from ticketbridge.connectors.ticketmaster.config import (
    CUSTOMERS,
    PLATFORM,
    TICKETS,
    CustomersOptions,
    TicketmasterConfig,
    TicketsOptions,
)
from ticketbridge.connectors.ticketmaster.mapping import (
    MappingContext,
    customer_key,
    key_of,
    map_customer,
    map_order,
    order_key,
    ticket_entry,
    ticket_key,
)
from ticketbridge.connectors.ticketmaster.schemas import ListPage, format_stamp, parse_stamp
from ticketbridge.errors import AuthError, ConnectorError, FatalError, MappingError
from ticketbridge.http import HttpContext

log = structlog.get_logger("ticketbridge.connectors.ticketmaster")

CUSTOMER_CACHE_SIZE = 10_000
POSITION_VERSION = 1
PHASES = ("customers", "orders")
_MAX_SKIP_IN_POSITION = 200  # beyond this a resume simply repeats the boundary records
_MAX_CHURN = 50  # times one timestamp group may change under us before the read gives up


Fetch = Callable[..., Awaitable[ListPage]]


@dataclass
class _Resume:
    hi: datetime
    phase: str
    start: datetime | None
    skip: set[str]


@dataclass
class _Scan:
    """Progress of one phase: every record updated before ``last`` has been emitted, and of
    those updated exactly at ``last``, the ids in ``boundary``."""

    last: datetime | None
    boundary: set[str] = field(default_factory=set)


class TicketmasterSource(SourceKit[TicketmasterConfig]):
    """Reads one market of one Ticketmaster account."""

    platform = PLATFORM
    config_model = TicketmasterConfig
    STREAMS = (CUSTOMERS, TICKETS)
    client: TicketmasterClient

    def __init__(
        self,
        config: TicketmasterConfig | Mapping[str, Any],
        context: HttpContext,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(config, context, now=now)
        self._customers: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self.customer_lookups = 0  # GET /customers/{id} calls made for orders

    def open_client(self, config: TicketmasterConfig, context: HttpContext) -> TicketmasterClient:
        return TicketmasterClient(config, context)

    def _context(self, date_format: str | None, now: datetime) -> MappingContext:
        return MappingContext(
            market=self.config.market,
            now=now,
            default_region=self.config.default_region,
            date_format=date_format,
            date_fields=tuple(self.config.date_fields),
        )

    # -- reading -------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        """Yield one page per API page: customers first (``members``), then orders
        (``orders``), each ascending by ``updated_at`` within ``[lo, hi)``.

        Every page carries ``position``; resuming with it (same range and options) emits
        every record not yet emitted, possibly a few at the boundary timestamp again.
        A position from another range or other options is ignored: re-reading is safe,
        skipping is not.
        """
        holders: bool | None = None  # set: the tickets stream (look the buyers up or not)
        if self.stream_spec(request.stream).name == TICKETS.name:
            tickets = self.stream_options(request.stream, request.options, TicketsOptions)
            members, orders, date_format, holders = False, True, None, tickets.holders
        else:
            options = self.stream_options(request.stream, request.options, CustomersOptions)
            members, orders, date_format = options.members, options.orders, options.date_format
        now = self.now()
        lo, end, hi = self._range(request, now)
        if lo is not None and hi <= lo:
            return
        resume = _resume(request.position, lo, end, hi, (members, orders, holders))
        if resume is not None:
            hi = resume.hi
        ctx = self._context(date_format, now)
        size = max(1, min(request.page_size or self.config.page_size, 199))
        wanted = [p for p, on in zip(PHASES, (members, orders), strict=True) if on]
        base: dict[str, Any] = {
            "v": POSITION_VERSION,
            "range": [_iso(lo), _iso(end)],
            "until": _iso(hi),
            "members": members,
            "orders": orders,
        }
        if holders is not None:
            base["tickets"] = {"holders": holders}
        if resume is not None and members and orders:
            # The customers emitted before the interruption are not in this run's cache.
            until = hi if resume.phase == "orders" else resume.start
            if until is not None and (lo is None or until > lo):
                await self._recall_customers(lo, until, size)
        for phase in wanted:
            start: datetime | None = lo
            skip: set[str] = set()
            if resume is not None:
                if PHASES.index(phase) < PHASES.index(resume.phase):
                    continue
                if phase == resume.phase:
                    start, skip = resume.start or lo, resume.skip
            fetch = self.client.customers_page if phase == "customers" else self.client.orders_page
            async for items, scan in self._scan(fetch, start, hi, size, skip):
                if phase == "customers":
                    entries = self._customers_page(items, ctx)
                elif holders is None:
                    entries = await self._orders_page(items, ctx)
                else:
                    entries = await self._tickets_page(items, ctx, holders)
                boundary = sorted(scan.boundary)
                position = {
                    **base,
                    "phase": phase,
                    "from": _iso(scan.last or start),
                    "skip": boundary if len(boundary) <= _MAX_SKIP_IN_POSITION else [],
                }
                yield Page(
                    records=[e for e in entries if isinstance(e, Record)],
                    failures=[e for e in entries if isinstance(e, Failed)],
                    position=position,
                )

    def _range(
        self, request: ReadRequest, now: datetime
    ) -> tuple[datetime | None, datetime | None, datetime]:
        """``(lo, end, hi)``: the request's range ``[lo, end)`` (``end`` None for a cursor
        read) and the upper bound actually queried, never past the read's start (a record
        stamped later does not exist yet, and one updated during the read must fall outside)."""
        lo = _aware(request.since)
        # Whole seconds, as Discovery spells its date parameters [INFER for this API]; rounded
        # up so that a record stamped (in whole seconds) just before the read is included.
        aware = _aware(now)
        assert aware is not None
        bound = aware.replace(microsecond=0) + timedelta(seconds=1 if aware.microsecond else 0)
        if request.window is None:
            return lo, None, bound
        start, end = _aware(request.window.start), _aware(request.window.end)
        assert start is not None and end is not None
        return (max(lo, start) if lo else start), end, min(end, bound)

    async def _scan(
        self, fetch: Fetch, start: datetime | None, hi: datetime | None, size: int, skip: set[str]
    ) -> AsyncIterator[tuple[list[dict[str, Any]], _Scan]]:
        """Yield each page's not-yet-emitted items with the scan's progress after them."""
        limit = self.config.deep_paging_limit
        scan = _Scan(last=start, boundary=set(skip))
        since, page, total, churn = start, 0, None, 0
        while True:
            listed = await fetch(since=since, until=hi, page=page, size=size)
            if page and listed.page.totalElements != total:
                # Paging through one timestamp's group and the group changed: start the group
                # over (the ids already emitted are skipped).
                churn += 1
                if churn > _MAX_CHURN:
                    raise FatalError(
                        "the list keeps changing while it is read; try again later",
                        platform=PLATFORM,
                    )
                page, total = 0, None
                continue
            total = listed.page.totalElements
            fresh = _advance(scan, listed.items)
            if fresh:
                yield fresh, scan
            if not listed.items or page + 1 >= listed.page.totalPages:
                return
            if scan.last is not None and (since is None or scan.last > since):
                since, page = scan.last, 0  # keyset step: query again from the last stamp
            elif size * (page + 1) < limit:
                page += 1  # a full page at one timestamp: page through the group
            else:
                raise FatalError(
                    f"more than {limit} records share updated_at {_iso(scan.last)}; the "
                    f"deep-paging cap (size * page < {limit}) does not allow reading past "
                    "them",
                    platform=PLATFORM,
                )

    def _customers_page(
        self, items: list[dict[str, Any]], ctx: MappingContext
    ) -> list[Record | Failed]:
        out: list[Record | Failed] = []
        for raw in items:
            key = key_of("contact", raw, ctx.market)
            try:
                contact = map_customer(raw, ctx)
            except MappingError as exc:
                out.append(Failed(exc.record_key, exc.reason, {"customer": raw}))
                continue
            except (ValueError, TypeError) as exc:  # a shape nobody foresaw
                out.append(Failed(key, f"{type(exc).__name__}: {exc}", {"customer": raw}))
                continue
            assert contact.external_id is not None
            self._remember(contact.external_id, raw)
            out.append(
                Record(
                    key=customer_key(ctx.market, contact.external_id),
                    kind="contact",
                    data=contact,
                    cursor=contact.updated_at,
                )
            )
        return out

    async def _orders_page(
        self, items: list[dict[str, Any]], ctx: MappingContext
    ) -> list[Record | Failed]:
        out: list[Record | Failed] = []
        for raw in items:
            key = key_of("order", raw, ctx.market)
            cid = raw.get("customer_id")
            customer = await self._customer(str(cid).strip()) if cid not in (None, "") else None
            stored = {"order": raw, "customer": customer}
            try:
                booking = map_order(raw, customer, ctx)
            except MappingError as exc:
                out.append(Failed(exc.record_key, exc.reason, stored))
                continue
            except (ValueError, TypeError) as exc:
                out.append(Failed(key, f"{type(exc).__name__}: {exc}", stored))
                continue
            out.append(
                Record(
                    key=order_key(ctx.market, booking.confirmation_number),
                    kind="booking",
                    data=booking,
                    cursor=booking.updated_at,
                )
            )
        return out

    async def _tickets_page(
        self, items: list[dict[str, Any]], ctx: MappingContext, holders: bool
    ) -> list[Record | Failed]:
        """Each order's tickets, in order; a ticket that cannot be mapped fails alone, under
        its own key, with ``{"order", "customer", "index"}`` to map it again."""
        out: list[Record | Failed] = []
        for raw in items:
            cid = raw.get("customer_id")
            customer = None
            if holders and cid not in (None, ""):
                customer = await self._customer(str(cid).strip())
            listed = raw.get("tickets")
            # No tickets is an order without tickets; a list that is not one fails visibly.
            count = len(listed) if isinstance(listed, list) else (0 if listed is None else 1)
            for index in range(count):
                stored = {"order": raw, "customer": customer, "index": index}
                out.append(ticket_entry(stored, ctx))
        return out

    async def _recall_customers(self, lo: datetime | None, hi: datetime, size: int) -> None:
        """Before a resumed read: list the customers of ``[lo, hi)`` (those the interrupted
        read emitted) again, emitting none, so that the orders' buyers come from the cache
        as in a whole read (a page per ``size`` customers) rather than from one look-up each.
        A resumed read then costs about the calls of a whole one: a page more where the two
        scans meet, and a look-up for each of the few customers at the resume point's
        timestamp, which the resumed scan skips."""
        async for items, _ in self._scan(self.client.customers_page, lo, hi, size, set()):
            for raw in items:
                cid = raw.get("id")
                if cid not in (None, "") and str(cid).strip():
                    self._remember(str(cid).strip(), raw)

    def _remember(self, customer_id: str, raw: dict[str, Any] | None) -> None:
        self._customers[customer_id] = raw
        self._customers.move_to_end(customer_id)
        while len(self._customers) > CUSTOMER_CACHE_SIZE:
            self._customers.popitem(last=False)

    async def _customer(self, customer_id: str) -> dict[str, Any] | None:
        """An order's customer: read in this run already, or asked for once (a miss is
        remembered too, so one unknown customer costs one call per run)."""
        if customer_id in self._customers:
            self._customers.move_to_end(customer_id)
            return self._customers[customer_id]
        self.customer_lookups += 1
        found = await self.client.customer(customer_id)
        self._remember(customer_id, found)
        return found

    # -- dead-letter retry ---------------------------------------------------------------

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        """Map a stored ``{"customer": {...}}`` or ``{"order": {...}, "customer": {...}}``
        payload (a ``Failed.raw``) again; stream ``tickets``: ``{"order", "customer",
        "index"}``. Raises MappingError when it still cannot be."""
        market = self.config.market
        if self.stream_spec(stream).name == TICKETS.name:
            self.stream_options(stream, options, TicketsOptions)
            order, index = raw.get("order"), raw.get("index")
            if not isinstance(order, dict) or not isinstance(index, int):
                raise MappingError(ticket_key(market, "?"), "raw payload needs 'order' and 'index'")
            entry = ticket_entry(
                {"order": order, "customer": raw.get("customer"), "index": index},
                self._context(None, self.now()),
            )
            if isinstance(entry, Failed):
                raise MappingError(entry.key, entry.reason)
            return entry
        date_format = self.stream_options(stream, options, CustomersOptions).date_format
        ctx = self._context(date_format, self.now())
        try:
            if isinstance(raw.get("order"), dict):
                booking = map_order(raw["order"], raw.get("customer"), ctx)
                return Record(
                    key=order_key(market, booking.confirmation_number),
                    kind="booking",
                    data=booking,
                    cursor=booking.updated_at,
                )
            if isinstance(raw.get("customer"), dict):
                contact = map_customer(raw["customer"], ctx)
                assert contact.external_id is not None
                return Record(
                    key=customer_key(market, contact.external_id),
                    kind="contact",
                    data=contact,
                    cursor=contact.updated_at,
                )
        except (ValueError, TypeError) as exc:
            kind = "order" if "order" in raw else "contact"
            payload = raw.get("order", raw.get("customer"))
            raise MappingError(
                key_of(kind, payload, market), f"{type(exc).__name__}: {exc}"
            ) from None
        raise MappingError(
            key_of("contact", None, market), "raw payload needs 'customer' or 'order'"
        )

    # -- checking ------------------------------------------------------------------------

    async def check(self, options: StreamOptions | None = None) -> list[CheckResult]:
        """Key and credentials accepted; market exists; customers and orders readable."""
        market = self.config.market
        try:
            first = await self.client.customers_page(since=None, until=None, page=0, size=1)
        except AuthError as exc:
            return [
                CheckResult(
                    "credentials",
                    False,
                    f"refused (HTTP {exc.status}: {exc.message}); check the API "
                    "key, username and password",
                )
            ]
        except ConnectorError as exc:
            if exc.status == 404:
                return [
                    CheckResult("credentials", True, "API key and credentials accepted"),
                    CheckResult("market", False, f"market {market!r} not found: {exc.message}"),
                ]
            return [CheckResult("customers", False, exc.message)]
        results = [
            CheckResult("credentials", True, "API key and credentials accepted"),
            CheckResult("market", True, f"market {market} exists"),
            CheckResult(
                "customers", True, f"customers readable ({first.page.totalElements} in total)"
            ),
        ]
        try:
            orders = await self.client.orders_page(since=None, until=None, page=0, size=1)
        except ConnectorError as exc:
            results.append(CheckResult("orders", False, f"orders not readable: {exc.message}"))
        else:
            results.append(
                CheckResult(
                    "orders", True, f"orders readable ({orders.page.totalElements} in total)"
                )
            )
        return results


def _advance(scan: _Scan, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items not emitted yet, moving ``scan`` past them. Items arrive ascending by
    ``updated_at``; one without a readable timestamp is passed on (mapping fails it with the
    reason) without moving the scan."""
    fresh = []
    for item in items:
        rid = str(item.get("id", "")).strip()
        try:
            stamp = parse_stamp(item.get("updated_at"))
        except (ValueError, TypeError):
            stamp = None
        if stamp is None:
            fresh.append(item)
            continue
        if scan.last is not None and stamp == scan.last:
            if rid and rid in scan.boundary:
                continue  # emitted by the previous query, which ended at this timestamp
            scan.boundary.add(rid)
        elif scan.last is None or stamp > scan.last:
            scan.last, scan.boundary = stamp, {rid}
        fresh.append(item)
    return fresh


def _resume(
    position: dict[str, Any] | None,
    lo: datetime | None,
    end: datetime | None,
    hi: datetime,
    reading: tuple[bool, bool, bool | None],
) -> _Resume | None:
    """The resume point in ``position`` if it belongs to this range and these options.

    ``reading`` is ``(members, orders, holders)``; ``holders`` is None for the ``customers``
    stream, so a position of one stream never resumes the other.

    A cursor read reuses the interrupted read's ``until``: the phases it finished covered
    exactly that range, so the rest of this read must not reach further (an order past it
    could move the cursor beyond customers nobody read). A window read keeps its own bound,
    since a backfill never moves the cursor.
    """
    if not isinstance(position, dict) or position.get("v") != POSITION_VERSION:
        return None
    try:
        p_lo, p_end = (parse_stamp(v) for v in position["range"])
        until = parse_stamp(position["until"])
        phase = str(position["phase"])
        start = parse_stamp(position.get("from"))
        skip = {str(s) for s in position.get("skip") or []}
    except (KeyError, TypeError, ValueError):
        log.warning("ticketmaster.position_unreadable")
        return None
    if (
        phase not in PHASES
        or (p_lo, p_end) != (lo, end)
        or until is None
        or position.get("members") != reading[0]
        or position.get("orders") != reading[1]
        or position.get("tickets") != (None if reading[2] is None else {"holders": reading[2]})
        or (start is not None and lo is not None and start < lo)
    ):
        return None
    if end is None:
        if until > hi:
            return None  # from a clock ahead of ours: not to be trusted
        hi = until
    return _Resume(hi=hi, phase=phase, start=start, skip=skip)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return format_stamp(value) if value is not None else None
