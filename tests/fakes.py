"""Test-only connectors: an in-memory source of bookings and an in-memory destination.

They implement the same protocols as the real connectors, so the engine's guarantees are
proven here without any platform's quirks; the real connectors prove them again end to end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ticketbridge.connectors.base import (
    Change,
    CheckResult,
    Failed,
    Mapped,
    ObjectOptions,
    ObjectSpec,
    Outcome,
    Page,
    ReadRequest,
    Record,
    StreamOptions,
    StreamSpec,
)
from ticketbridge.engine.policy import WritePolicy
from ticketbridge.engine.spec import SyncSpec, WindowSpec
from ticketbridge.errors import MappingError, RecordRejected
from ticketbridge.model import Booking, Consent, ConsentState, Contact, Money, Venue, record_key

BASE = datetime(2026, 11, 22, 12, tzinfo=UTC)


def booking(
    i: int,
    *,
    party: int = 2,
    email_opt_in: bool | None = True,
    attendance: datetime | None = None,
    first_name: str | None = None,
    updated: datetime | None = None,
) -> Booking:
    state = (
        ConsentState.UNKNOWN
        if email_opt_in is None
        else ConsentState.GRANTED
        if email_opt_in
        else ConsentState.DENIED
    )
    return Booking(
        confirmation_number=f"R{i:05d}",
        attendance_at=attendance or BASE + timedelta(days=1),
        party_size=party,
        value=Money(minor=1000 * party, currency="GBP"),
        venue=Venue(name="Riverside Hall"),
        contact=Contact(
            first_name=first_name or f"Name{i}",
            email=f"c{i}@example.org",
            email_consent=Consent(state=state, source="test"),
        ),
        updated_at=updated,
    )


def rec(b: Booking, cursor: datetime | None = None) -> Record:
    return Record(
        key=record_key("booking", "mem", b.confirmation_number),
        kind="booking",
        data=b,
        cursor=cursor or b.updated_at,
    )


class RecordsSource:
    """One page of records a test prepared, in one stream: for syncs whose source is beside
    the point (a destination's behaviour through the engine)."""

    platform = "records"

    def __init__(
        self, records: list[Record], stream: StreamSpec, position: dict[str, Any] | None = None
    ) -> None:
        self.records = records
        self.stream = stream
        self.position = position or {"done": True}

    def streams(self) -> list[StreamSpec]:
        return [self.stream]

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        yield Page(records=list(self.records), position=dict(self.position))

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        # It emits no Failed payloads, so the engine never asks it to map one again.
        raise AssertionError("unexpected remap: this test source has no dead letters")

    async def check(self) -> list[CheckResult]:
        return []

    @property
    def api_calls(self) -> int:
        return 0

    async def aclose(self) -> None:
        return None


class MemorySource:
    """Pages of ``page_size`` bookings; position = index of the next booking."""

    platform = "memsource"

    def __init__(
        self, bookings: list[Booking], page_size: int = 10, failures: dict[int, str] | None = None
    ) -> None:
        self.bookings = bookings
        self.page_size = page_size
        self.failures = failures or {}  # index -> mapping failure reason
        self.requests: list[ReadRequest] = []
        self.calls = 0
        self.fail_after_pages: int | None = None

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                "bookings",
                "booking",
                ("window", "cursor", "diff"),
                window_fields=("attendance_at",),
            )
        ]

    def _selected(self, request: ReadRequest) -> list[tuple[int, Booking]]:
        out = []
        for i, b in enumerate(self.bookings):
            w = request.window
            if (
                w is not None
                and b.attendance_at is not None
                and not (w.start <= b.attendance_at < w.end)
            ):
                continue
            if (
                request.since is not None
                and b.updated_at is not None
                and (b.updated_at < request.since)
            ):
                continue
            out.append((i, b))
        return out

    async def read(self, request: ReadRequest) -> AsyncIterator[Page]:
        self.requests.append(request)
        items = self._selected(request)
        start = int((request.position or {}).get("next", 0))
        pages = 0
        for lo in range(start, len(items), self.page_size):
            if self.fail_after_pages is not None and pages >= self.fail_after_pages:
                raise RuntimeError("source died")
            self.calls += 1
            chunk = items[lo : lo + self.page_size]
            page = Page(position={"next": lo + len(chunk)})
            for idx, b in chunk:
                key = record_key("booking", "mem", b.confirmation_number)
                if idx in self.failures:
                    page.failures.append(
                        Failed(
                            key,
                            self.failures[idx],
                            {"index": idx, "booking": b.model_dump(mode="json")},
                        )
                    )
                else:
                    page.records.append(rec(b))
            pages += 1  # noqa: SIM113 - counts pages yielded, not items
            yield page

    def remap(self, stream: str, raw: dict[str, Any], options: StreamOptions) -> Record:
        idx = int(raw["index"])
        if idx in self.failures:
            raise MappingError(f"booking:mem:{idx}", self.failures[idx])
        return rec(Booking.model_validate(raw["booking"]))

    async def check(self) -> list[CheckResult]:
        return [CheckResult("memory", True)]

    @property
    def api_calls(self) -> int:
        return self.calls

    async def aclose(self) -> None:
        return None


@dataclass
class Stored:
    contact: dict[str, Any] = field(default_factory=dict)
    booking: dict[str, Any] = field(default_factory=dict)


class MemoryDestination:
    """Upserts on the record key (like every real destination's match key) and counts calls.

    ``reject`` decides per change whether the destination refuses it (a reason) or not;
    with ``whole_batch`` a single bad record makes the whole call fail, as bulk APIs do.
    """

    platform = "memdest"

    def __init__(self) -> None:
        self.stored: dict[str, Stored] = {}
        self.writes: Counter[str] = Counter()  # key -> write calls that touched it
        self.creates: Counter[str] = Counter()
        self.calls = 0
        self.reject: Callable[[Change], str | None] = lambda c: None
        self.whole_batch = False
        self.before_write: Callable[[list[Change]], Any] | None = None
        self.fail_on_call: dict[int, Exception] = {}
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    def objects(self) -> list[ObjectSpec]:
        return [
            ObjectSpec(
                "contact_bookings",
                ("booking",),
                entities=("contact", "booking"),
                default_policy={"contact": "on_create", "booking": "always"},
            )
        ]

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        b = record.data
        assert isinstance(b, Booking)
        if b.contact is None or b.contact.email is None:
            raise RecordRejected(f"{record.key}: no email", platform=self.platform)
        c = b.contact
        contact: dict[str, Any] = {"email": c.email, "first_name": c.first_name}
        if c.email_consent.state is not ConsentState.UNKNOWN:
            contact["allow_email"] = c.email_consent.granted
        return {
            "contact": contact,
            "booking": {
                "ref": b.confirmation_number,
                "party_size": b.party_size,
                "status": b.status.value,
                "value": b.value.minor if b.value else None,
            },
        }

    async def write(self, obj: str, changes: list[Change], options: ObjectOptions) -> list[Outcome]:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.before_write is not None:
            self.before_write(changes)
        if self.calls in self.fail_on_call:
            raise self.fail_on_call[self.calls]
        reasons = {c.key: self.reject(c) for c in changes}
        if self.whole_batch and any(reasons.values()):
            raise RecordRejected("batch refused: 1 or more invalid rows", platform=self.platform)
        outcomes = []
        for c in changes:
            if reasons[c.key]:
                outcomes.append(Outcome(c.key, ok=False, reason=reasons[c.key]))
                continue
            self.writes[c.key] += 1
            stored = self.stored.get(c.key)
            if stored is None:
                stored = self.stored[c.key] = Stored()
                self.creates[c.key] += 1
            stored.contact.update(c.fields.get("contact", {}))
            stored.booking.update(c.fields.get("booking", {}))
            outcomes.append(Outcome(c.key, ok=True, dest_ids={"booking": c.key}))
        return outcomes

    async def check(self) -> list[CheckResult]:
        return [CheckResult("memory", True)]

    @property
    def api_calls(self) -> int:
        return self.calls

    async def aclose(self) -> None:
        return None


def spec(
    name: str = "mem",
    *,
    strategy: str = "full",
    batch_size: int = 10,
    policy: dict[str, Any] | None = None,
    **kw: Any,
) -> SyncSpec:
    defaults = {"contact": "on_create", "booking": "always"}
    return SyncSpec(
        name=name,
        stream="bookings",
        stream_options=StreamOptions(),
        obj="contact_bookings",
        object_options=ObjectOptions(),
        strategy=strategy,  # type: ignore[arg-type]
        window=WindowSpec("attendance_at", "-1d", "+30d") if strategy == "window" else None,
        policy=WritePolicy.build(defaults, policy),  # type: ignore[arg-type]
        batch_size=batch_size,
        **kw,
    )


TODAY = date(2026, 11, 22)
