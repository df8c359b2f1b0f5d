"""The TicketCo source against its sandbox, over real HTTP (ASGI transport, no mocks)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from ticketbridge.connectors.base import Page, ReadRequest, Source, Window
from ticketbridge.connectors.ticketco import BookingsOptions, TicketcoConfig
from ticketbridge.connectors.ticketco.sandbox import EVENTS_ONLY_TOKEN
from ticketbridge.errors import AuthError, FatalError, MappingError
from ticketbridge.model import Booking, BookingStatus, ConsentState, normalize_email

from .support import (
    MIDNIGHT,
    NOW,
    Harness,
    bookings,
    read_pages,
    records,
    venue_norm,
    window,
)

Items = list[dict[str, Any]]


async def truth(
    h: Harness, venues: list[str] | None = None, win: Window | None = None
) -> dict[str, tuple[dict[str, Any], Items]]:
    """ref_number -> (event, items) as the API serves them, filtered like the source should."""
    wanted = {venue_norm(v) for v in venues or []}
    out: dict[str, tuple[dict[str, Any], Items]] = {}
    for event in await h.events():
        start = datetime.fromisoformat(event["start_at"])
        if wanted and venue_norm(event["location_name"]) not in wanted:
            continue
        if win is not None and not win.start <= start < win.end:
            continue
        for item in await h.items(event["id"]):
            out.setdefault(item["ref_number"], (event, []))[1].append(item)
    return out


def expected_status(event: dict[str, Any], items: Items, now: datetime) -> BookingStatus:
    active = [i for i in items if i["status"] == "sold"]
    if not active:
        return BookingStatus.CANCELLED
    if any(i["checked_in_at"] for i in active):
        return BookingStatus.ATTENDED
    if event["status"] == "ended" or datetime.fromisoformat(event["end_at"]) < now:
        return BookingStatus.NO_SHOW
    return BookingStatus.BOOKED


async def test_source_satisfies_the_protocol(harness: Harness) -> None:
    src = harness.source()
    assert isinstance(src, Source)
    spec, tickets = src.streams()
    assert (spec.name, spec.kind, spec.strategies, spec.window_fields) == (
        "bookings",
        "booking",
        ("window",),
        ("attendance_at",),
    )
    assert (tickets.name, tickets.kind, tickets.strategies) == ("tickets", "ticket", ("window",))


async def test_bad_token_is_an_auth_error_naming_the_platform(harness: Harness) -> None:
    src = harness.source(token="not-the-token")
    with pytest.raises(AuthError) as caught:
        await read_pages(src)
    assert caught.value.platform == "ticketco" and caught.value.status == 401
    assert "ticketco" in str(caught.value)
    assert "not-the-token" not in str(caught.value)


async def test_window_and_venues_select_exactly_the_matching_bookings(harness: Harness) -> None:
    win = window(0, 30)
    got = bookings(
        await read_pages(harness.source(), venues=[" riverside hall", "BOWL  ARENA"], win=win)
    )
    expected = await truth(harness, ["Riverside Hall", "Bowl Arena"], win)
    assert got and set(got) == set(expected)
    assert {b.venue.name for b in got.values() if b.venue} == {"Riverside Hall", "Bowl Arena"}
    assert all(b.attendance_at and win.start <= b.attendance_at < win.end for b in got.values())
    # There was something to leave out on both counts.
    everything = await truth(harness)
    elsewhere = set(everything) - set(expected)
    assert any(everything[r][0]["location_name"] == "Harbour Stage" for r in elsewhere)
    assert any(
        not win.start <= datetime.fromisoformat(everything[r][0]["start_at"]) < win.end
        for r in elsewhere
    )


async def test_grouping_party_size_value_and_status(harness: Harness) -> None:
    src = harness.source()
    got = bookings(await read_pages(src))
    stats = await harness.admin("stats")
    assert src.api_calls == stats["total_requests"]  # nothing else has called the sandbox yet
    item_calls = stats["requests"]["GET /api/public/v1/item_grosses"]
    assert item_calls > 2 * len(harness.sandbox.store.dump()["events"])  # several pages each
    expected = await truth(harness)
    assert set(got) == set(expected) and len(got) == 1200
    statuses: Counter[BookingStatus] = Counter()
    for ref, (event, items) in expected.items():
        booking = got[ref]
        active = [i for i in items if i["status"] == "sold"]
        counted = active or items  # a cancelled booking keeps what was booked
        assert booking.party_size == len(counted), ref
        assert booking.value is not None and booking.value.currency == "NOK"
        assert booking.value.minor == sum(int(Decimal(i["price"]) * 100) for i in counted)
        assert booking.status is expected_status(event, items, NOW), ref
        assert len(booking.tickets) == len(items)
        assert booking.event and booking.event.external_id == str(event["id"])
        assert booking.booked_at and booking.booked_at.utcoffset() is not None
        statuses[booking.status] += 1
    assert set(statuses) == set(BookingStatus)
    assert any(
        b.party_size and b.party_size < len(b.tickets)
        for b in got.values()
        if b.status is not BookingStatus.CANCELLED
    )  # partial cancellations seen


async def test_bookings_whose_items_span_pages_are_whole(harness: Harness) -> None:
    got = bookings(await read_pages(harness.source()))
    spanning = 0
    for event in await harness.events():
        items = await harness.items(event["id"])
        pages_of: dict[str, set[int]] = {}
        for n, item in enumerate(items):
            pages_of.setdefault(item["ref_number"], set()).add(n // 7)
        for ref, pages in pages_of.items():
            if len(pages) > 1:
                spanning += 1
                assert len(got[ref].tickets) == sum(1 for i in items if i["ref_number"] == ref)
    assert spanning > 5


async def test_grouped_item_grosses_stream_the_same_pages_before_the_event_ends(
    harness: Harness,
) -> None:
    """``item_grosses_grouped`` maps each booking when its group ends: same records, failures
    and positions as reading whole events, with the first page out after fewer calls."""
    await harness.admin(
        "mutate",
        {"share": 0, "cancel_share": 0, "no_shows": False, "malformed_share": 0.05, "seed": 3},
    )
    win = window(-10, 30)

    async def read(found: Window, *, grouped: bool, size: int = 3) -> tuple[list[Page], int]:
        src = harness.source(item_grosses_grouped=grouped)
        request = ReadRequest(
            stream="bookings", options=BookingsOptions(), window=found, page_size=size
        )
        pages, calls_at_first = [], 0
        async for page in src.read(request):
            calls_at_first = calls_at_first or src.api_calls
            pages.append(page)
        return pages, calls_at_first

    def shape(found: list[Page]) -> list[tuple[list[str], list[str], Any]]:
        return [
            ([r.key for r in p.records], [f.key for f in p.failures], p.position) for p in found
        ]

    (whole, _), (grouped, _) = await read(win, grouped=False), await read(win, grouped=True)
    assert shape(grouped) == shape(whole)
    assert any(p.failures for p in grouped) and any(p.position is None for p in grouped)
    assert bookings(grouped) == bookings(whole)
    # The largest event spans several item pages of 7. Read alone in pages of one booking,
    # the whole read asks for all of them and the empty one after before its first page;
    # the grouped read for one or two (a page of 7 items may hold only two bookings).
    sizes = {
        e["id"]: (len(await harness.items(e["id"])), e["start_at"]) for e in await harness.events()
    }
    n_items, start_at = max(sizes.values())
    assert n_items > 14
    start = datetime.fromisoformat(start_at)
    alone = Window("attendance_at", start, start + timedelta(seconds=1))
    (_, calls_whole), (_, calls_grouped) = (
        await read(alone, grouped=False, size=1),
        await read(alone, grouped=True, size=1),
    )
    assert calls_whole - calls_grouped >= -(-n_items // 7) - 1 >= 3


async def test_grouped_setting_stops_when_a_ref_number_comes_back(harness: Harness) -> None:
    """Reversed pages split every group that spans two pages: the grouped read stops naming
    the ref_number, the event and the setting, before that event's position; the default
    read merges the groups: every booking has all its tickets, as with ordered pages."""

    reversed_pages = harness.rewriting("/item_grosses", lambda d: d["item_grosses"].reverse())
    win = window(-5, 30)
    expected = bookings(await read_pages(harness.source(), win=win))
    merged = bookings(await read_pages(harness.source(transport=reversed_pages), win=win))
    assert {r: sorted(t.number for t in b.tickets) for r, b in merged.items()} == {
        r: sorted(t.number for t in b.tickets) for r, b in expected.items()
    }
    grouped = harness.source(transport=reversed_pages, item_grosses_grouped=True)
    got: list[Page] = []
    request = ReadRequest(stream="bookings", options=BookingsOptions(), window=win)
    with pytest.raises(FatalError) as caught:
        async for page in grouped.read(request):
            got.append(page)
    message = str(caught.value)
    assert "item_grosses_grouped: false" in message
    ref = message.split("ref_number ")[1].split()[0]
    event_id = message.split(" in event ")[1].split()[0]
    event = expected[ref].event
    assert event is not None and event.external_id == event_id
    assert all(p.position["after"][1] != int(event_id) for p in got if p.position)


async def test_no_show_after_yesterdays_events_end(harness: Harness) -> None:
    # At yesterday 00:00 the clock alone does not end yesterday's events: only the status does.
    src = harness.source(now=MIDNIGHT - timedelta(days=1))
    win = window(-1, 0)
    before = bookings(await read_pages(src, win=win))
    result = await harness.admin(
        "mutate", {"share": 0, "cancel_share": 0, "no_shows": True, "seed": 1}
    )
    after = bookings(await read_pages(src, win=win))
    no_show = {ref for ref, b in after.items() if b.status is BookingStatus.NO_SHOW}
    assert no_show and no_show == set(result["no_show"])
    assert all(before[ref].status is BookingStatus.BOOKED for ref in no_show)
    assert {b.status for b in after.values()} <= {
        BookingStatus.NO_SHOW,
        BookingStatus.ATTENDED,
        BookingStatus.CANCELLED,
    }


async def test_mutations_are_exactly_what_the_source_reads_differently(harness: Harness) -> None:
    src = harness.source()
    win = window(0, 61)
    before = bookings(await read_pages(src, win=win))
    result = await harness.admin(
        "mutate",
        {
            "share": 0.1,
            "cancel_share": 0.05,
            "no_shows": False,
            "opt_in_flip_share": 0.2,
            "seed": 4,
        },
    )
    after = bookings(await read_pages(src, win=win))
    assert set(before) == set(after)
    changed, cancelled = set(result["changed"]), set(result["cancelled"])
    flipped = set(result["opt_in_flipped"]) & set(after)
    assert changed and cancelled and flipped
    for ref, now in after.items():
        was = before[ref]
        if ref in changed:
            assert (now.party_size, now.value) != (was.party_size, was.value), ref
        elif ref in cancelled:
            assert was.status is not BookingStatus.CANCELLED
            assert now.status is BookingStatus.CANCELLED
        if ref in flipped:
            assert was.contact and now.contact
            states = {was.contact.email_consent.state, now.contact.email_consent.state}
            assert states == {ConsentState.GRANTED, ConsentState.DENIED}
        if ref not in changed | cancelled | flipped:
            assert now == was, ref


async def test_bad_email_and_phone_are_issues_not_drops(harness: Harness) -> None:
    got = bookings(await read_pages(harness.source()))
    expected = await truth(harness)
    bad_email = set()
    for ref, (_event, items) in expected.items():
        raw = items[0].get("buyer_email")
        try:
            if raw is not None:
                normalize_email(raw)
        except ValueError:
            bad_email.add(ref)
    flagged = {
        ref
        for ref, b in got.items()
        if b.contact and any(i.field == "email" for i in b.contact.issues)
    }
    assert bad_email and flagged == bad_email
    bad_mobile = [
        b for b in got.values() if b.contact and any(i.field == "mobile" for i in b.contact.issues)
    ]
    assert bad_mobile
    for booking in bad_mobile:
        assert booking.contact is not None and booking.contact.mobile is None
        assert booking.contact.last_name and booking.party_size  # the rest is intact
    assert any(
        b.contact and b.contact.mobile and b.contact.mobile.startswith("+47") for b in got.values()
    )


async def test_malformed_groups_fail_with_reason_and_remap(harness: Harness) -> None:
    result = await harness.admin(
        "mutate",
        {"share": 0, "cancel_share": 0, "no_shows": False, "malformed_share": 0.1, "seed": 2},
    )
    bad = set(result["malformed"])
    src = harness.source()
    win = window(0, 61)
    pages = await read_pages(src, win=win)
    failures = [f for p in pages for f in p.failures]
    assert bad and {f.key for f in failures} == {f"booking:ticketco:{r}" for r in bad}
    got = bookings(pages)
    assert not bad & set(got)
    assert len(got) + len(bad) == len(await truth(harness, win=win))
    failed = failures[0]
    assert "transaction_datestamp" in failed.reason
    assert failed.raw["event"]["id"] and failed.raw["items"]
    json.dumps(failed.raw)  # storable as a dead letter
    with pytest.raises(MappingError) as caught:
        src.remap("bookings", failed.raw, BookingsOptions())
    assert caught.value.record_key == failed.key
    fixed = copy.deepcopy(failed.raw)
    for item in fixed["items"]:
        item["transaction_datestamp"] = "2025-06-01 10:00:00"
    record = src.remap("bookings", fixed, BookingsOptions())
    assert record.key == failed.key and isinstance(record.data, Booking)
    assert record.data.booked_at == datetime.fromisoformat("2025-06-01T10:00:00+02:00")


async def test_resume_from_position_emits_the_rest_exactly_once(harness: Harness) -> None:
    win = window(-10, 30)
    full = await read_pages(harness.source(), win=win, page_size=3)
    assert all(len(p.records) + len(p.failures) <= 3 for p in full)
    ends = [n for n, p in enumerate(full) if p.position is not None]
    starts = [full[n].position["after"][0] for n in ends]  # type: ignore[index]
    assert starts == sorted(starts)  # events in start order
    assert any(len(p.records) == 3 and p.position is None for p in full)  # multi-page events
    cut = ends[len(ends) // 2]
    position = json.loads(json.dumps(full[cut].position))  # as a state store keeps it
    resumed = await read_pages(harness.source(), win=win, position=position, page_size=3)
    done = [r.key for r in records(full[: cut + 1])]
    rest = [r.key for r in records(resumed)]
    assert rest == [r.key for r in records(full[cut + 1 :])]
    assert done and rest and not set(done) & set(rest)
    assert sorted(done + rest) == sorted(r.key for r in records(full))
    # A position from another window is ignored: the read starts over.
    other = await read_pages(harness.source(), win=window(-10, 31), position=position)
    assert set(done) <= {r.key for r in records(other)}


async def test_faults_are_retried_to_the_same_result(harness: Harness) -> None:
    win = window(-5, 30)
    clean = bookings(await read_pages(harness.source(), win=win))
    await harness.admin(
        "faults",
        {"rate_429": 0.2, "rate_5xx": 0.15, "malformed_rate": 0.05, "retry_after_s": 0, "seed": 11},
    )
    src = harness.source(max_retries=10)
    assert bookings(await read_pages(src, win=win)) == clean
    faults = (await harness.admin("stats"))["faults"]
    assert faults.get("429") and faults.get("5xx")
    assert src.client.api.retries >= faults["429"] + faults["5xx"]


async def test_check_names_a_missing_venue(harness: Harness) -> None:
    src = harness.source()
    checks = {
        c.name: c
        for c in await src.check(BookingsOptions(venues=["Riverside Hall", "Nowhere Arena"]))
    }
    assert checks["token"].ok and checks["item_grosses"].ok
    assert not checks["venues"].ok
    assert "Nowhere Arena" in checks["venues"].detail
    assert "Riverside Hall" not in checks["venues"].detail.split("(seen")[0]
    assert all(c.ok for c in await src.check(BookingsOptions(venues=["bowl arena"])))
    assert all(c.ok for c in await src.check())


async def test_check_reports_token_problems(harness: Harness) -> None:
    (token,) = await harness.source(token="nope").check()
    assert token.name == "token" and not token.ok and "nope" not in token.detail
    scoped = {c.name: c for c in await harness.source(token=EVENTS_ONLY_TOKEN).check()}
    assert scoped["token"].ok and not scoped["item_grosses"].ok
    assert "Item grosses" in scoped["item_grosses"].detail


async def test_pii_false_reads_bookings_without_personal_data(harness: Harness) -> None:
    got = bookings(await read_pages(harness.source(pii=False), win=window(0, 30)))
    assert got
    for booking in got.values():
        contact = booking.contact
        assert contact is not None and contact.external_id  # the customer id is not PII
        assert (contact.email, contact.mobile, contact.first_name) == (None, None, None)
        assert contact.email_consent.state is ConsentState.UNKNOWN
        assert all(t.holder is None for t in booking.tickets)


async def test_configured_page_size_is_sent(harness: Harness) -> None:
    win = window(-5, 30)
    small = harness.source()
    default = bookings(await read_pages(small, win=win))
    large = harness.source(page_size_param="per_page", page_size=200)
    assert bookings(await read_pages(large, win=win)) == default
    # Every event still costs its final empty page, whatever the page size.
    assert large.api_calls < small.api_calls * 0.7


async def test_short_page_ends_a_list_when_configured(harness: Harness) -> None:
    """``short_page_is_last`` saves the final empty page of every list and reads the same."""
    win = window(-5, 30)
    plain = harness.source(page_size_param="per_page", page_size=40)
    expected = bookings(await read_pages(plain, win=win))
    short = harness.source(page_size_param="per_page", page_size=40, short_page_is_last=True)
    assert bookings(await read_pages(short, win=win)) == expected
    # Every list whose last page is short (not empty, not exactly full) saves one call.
    events = await harness.events()
    lists = [len(events)] + [
        len(await harness.items(e["id"]))
        for e in events
        if win.start <= datetime.fromisoformat(e["start_at"]) < win.end
    ]
    assert plain.api_calls - short.api_calls == sum(1 for n in lists if n % 40) > 10


def test_short_page_is_last_needs_a_page_size() -> None:
    with pytest.raises(ValidationError, match="short_page_is_last needs page_size_param"):
        TicketcoConfig(platform="ticketco", token=SecretStr("t"), short_page_is_last=True)


async def test_status_is_asked_for_when_the_event_list_lacks_it(harness: Harness) -> None:
    def strip_status(data: Any) -> None:
        for event in data["events"]:
            event.pop("status")

    src = harness.source(transport=harness.rewriting("/events", strip_status))
    win = window(-3, 2)
    got = bookings(await read_pages(src, win=win))
    listed = bookings(await read_pages(harness.source(), win=win))
    # Only events that have started can be over, so only those had their status asked for.
    unasked = {"event": {"status"}}
    assert {r: b.model_dump(exclude=unasked) for r, b in got.items()} == {
        r: b.model_dump(exclude=unasked) for r, b in listed.items()
    }
    started = [
        e
        for e in await harness.events()
        if win.start <= datetime.fromisoformat(e["start_at"]) < NOW
    ]
    stats = await harness.admin("stats")
    assert stats["requests"]["GET /api/public/v1/events/{id}/status"] == len(started)
    assert {b.event.status for b in got.values() if b.event} == {"ended", "available", None}


def test_config_rejects_unknown_zone_and_currency() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        TicketcoConfig(token=SecretStr("x"), timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="ISO 4217"):
        TicketcoConfig(token=SecretStr("x"), currency="GPB")
    assert TicketcoConfig(token=SecretStr("x")).default_region == "NO"


def _answering_events(harness: Harness, response: httpx.Response) -> httpx.MockTransport:
    """The sandbox, except that page 1 of ``/events`` gets ``response``."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events") and request.url.params.get("page") == "1":
            return response
        return await harness.transport.handle_async_request(request)

    return httpx.MockTransport(handle)


BROKEN_EVENTS = {
    "a redirect": httpx.Response(302, headers={"location": "https://login.example/?token=s3"}),
    "a null body": httpx.Response(200, content=b"null"),
    "a list for an object": httpx.Response(200, json=[{"id": 1}]),
    "no events key": httpx.Response(200, json={"data": []}),
    "events not a list": httpx.Response(200, json={"events": {"id": 1}}),
    "entries that are not events": httpx.Response(200, json={"events": [1, "two", None]}),
    "an event without an id": httpx.Response(200, json={"events": [{"title": "Gala"}]}),
}


@pytest.mark.parametrize("case", sorted(BROKEN_EVENTS))
async def test_a_broken_events_answer_fails_the_read_instead_of_reading_nothing(
    harness: Harness, case: str
) -> None:
    """Issue 20.3: each of these once read as "no events" and ended the run ok, read 0."""
    src = harness.source(transport=_answering_events(harness, BROKEN_EVENTS[case]))
    with pytest.raises(FatalError) as caught:
        await read_pages(src)
    message = str(caught.value)
    assert "ticketco" in message
    assert "s3" not in message, "a redirect's query (it may echo the token) is not shown"
    if case == "a redirect":
        assert "HTTP 302" in message and "https://login.example/" in message
    else:
        assert "documented shape" in message or "not an event" in message
    # check() says so too, instead of "token accepted"
    results = await src.check()
    assert not all(r.ok for r in results)


async def test_the_next_events_item_grosses_are_read_while_this_ones_are_mapped(
    harness: Harness,
) -> None:
    """One event ahead: while the engine takes an event's pages, the next event's item
    grosses are already being read (kit.one_ahead), and the pages are what they always were."""
    asked: list[str] = []

    async def recording(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/item_grosses"):
            asked.append(str(request.url.params["event_id"]))
        return await harness.transport.handle_async_request(request)

    win = window(-5, 30)
    expected = await read_pages(harness.source(), win=win)
    src = harness.source(transport=httpx.MockTransport(recording))
    request = ReadRequest(stream="bookings", options=BookingsOptions(venues=[]), window=win)
    got: list[Page] = []
    asked_when_done: list[list[str]] = []
    async for page in src.read(request):
        got.append(page)
        if page.position is not None:  # an event's last page: let the loop run a little
            for _ in range(20):
                await asyncio.sleep(0)
            asked_when_done.append(sorted(set(asked)))
    assert got == expected
    events = [p.position["after"][1] for p in got if p.position is not None]
    assert len(events) > 5
    for n, seen in enumerate(asked_when_done[:-1]):
        # Once event n was handed over, event n + 1 had been asked for, and nothing beyond.
        assert str(events[n + 1]) in seen
        assert not set(seen) & {str(e) for e in events[n + 2 :]}
