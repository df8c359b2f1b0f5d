"""The Ticketmaster source against its sandbox over real HTTP (ASGI transport)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ticketbridge.connectors.base import Source
from ticketbridge.connectors.ticketmaster import CustomersOptions, Paths, create_sandbox
from ticketbridge.connectors.ticketmaster.sandbox_store import parse
from ticketbridge.errors import AuthError, FatalError, MappingError, RateLimited
from ticketbridge.model import Booking, BookingStatus, ConsentState, Contact

from .support import (
    NOW,
    TODAY,
    Harness,
    bookings,
    contacts,
    emitted_ids,
    failures,
    read_pages,
    records,
)


async def test_is_a_source(harness: Harness) -> None:
    src = harness.source()
    assert isinstance(src, Source)
    assert [s.name for s in src.streams()] == ["customers", "tickets"]
    assert src.streams()[0].kinds == ("contact", "booking")
    assert src.streams()[1].kinds == ("ticket",)


@pytest.mark.parametrize("wrong", ["api_key", "password"])
async def test_bad_credentials_raise_auth_error_without_the_secret(
    harness: Harness, wrong: str
) -> None:
    secret = "s3cret-" + wrong
    src = harness.source(api_key=secret) if wrong == "api_key" else harness.source(password=secret)
    with pytest.raises(AuthError) as info:
        await read_pages(src)
    text = str(info.value)
    assert "ticketmaster" in text and info.value.status == 401
    assert secret not in text and secret not in repr(info.value.args)
    checks = await src.check()
    assert [(c.name, c.ok) for c in checks] == [("credentials", False)]
    assert secret not in checks[0].detail


async def test_check(harness: Harness) -> None:
    checks = await harness.source().check()
    assert all(c.ok for c in checks)
    assert [c.name for c in checks] == ["credentials", "market", "customers", "orders"]
    wrong_market = await harness.source(market="SE").check()
    assert [(c.name, c.ok) for c in wrong_market] == [("credentials", True), ("market", False)]


async def test_full_read_emits_every_customer_and_order_once(harness: Harness) -> None:
    src = harness.source(page_size=40)
    pages = await read_pages(src)
    keys = [r.key for r in records(pages)] + [f.key for f in failures(pages)]
    assert len(keys) == len(set(keys))
    assert emitted_ids(pages, "contact") == harness.store.ids("customers")
    assert emitted_ids(pages, "order") == harness.store.ids("orders")
    assert not failures(pages)
    # customers first, then orders, each ascending by update time
    kinds = [r.kind for r in records(pages)]
    assert kinds == sorted(kinds, key=lambda k: k != "contact")
    stamps = [r.cursor for r in records(pages) if r.kind == "contact"]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    # the orders' customers were all read in this run: no extra lookups
    assert src.customer_lookups == 0
    assert src.api_calls == sum(harness.sandbox.stats.requests.values())


async def test_contact_shape(harness: Harness) -> None:
    pages = await read_pages(harness.source(), orders=False)
    record = records(pages)[0]
    contact = record.data
    assert isinstance(contact, Contact) and contact.external_id is not None
    raw = harness.store.customers[int(contact.external_id)]
    assert record.key == f"contact:ticketmaster:DK:{raw['id']}"
    assert record.cursor == contact.updated_at == parse(raw["updated_at"])
    assert contact.attributes["id"] == raw["id"]
    assert contact.attributes.get("cards") == raw.get("cards")


async def test_consent_matches_the_source_per_channel(harness: Harness) -> None:
    found = contacts(await read_pages(harness.source(), orders=False))
    states: dict[str, set[ConsentState]] = {"email": set(), "sms": set()}
    for cid, contact in found.items():
        mc = harness.store.customers[int(cid)].get("marketing_consent") or {}
        for channel, consent in (("email", contact.email_consent), ("sms", contact.sms_consent)):
            flag = mc.get(channel)
            want = {
                True: ConsentState.GRANTED,
                False: ConsentState.DENIED,
                None: ConsentState.UNKNOWN,
            }[flag]
            assert consent.state is want, (cid, channel)
            assert consent.source == "ticketmaster"
            states[channel].add(consent.state)
    assert states["email"] == states["sms"] == set(ConsentState)


async def test_mobiles_normalise_with_the_market_as_region(harness: Harness) -> None:
    found = contacts(await read_pages(harness.source(), orders=False))
    raw = {cid: harness.store.customers[int(cid)]["mobile"] for cid in found}
    spellings = {
        type(m).__name__ + ("+45 " if str(m).startswith("+45 ") else "") for m in raw.values()
    }
    assert {"str+45 ", "str", "int"} <= spellings
    for cid, contact in found.items():
        digits = "".join(ch for ch in str(raw[cid] or "") if ch.isdigit())[-8:]
        if contact.mobile is not None:
            assert contact.mobile == "+45" + digits
        elif raw[cid] is not None:
            assert any(i.field == "mobile" for i in contact.issues)


async def test_cursor_reads_only_what_changed_since(harness: Harness) -> None:
    since = TODAY - timedelta(days=90)
    pages = await read_pages(harness.source(), since=since)
    assert emitted_ids(pages, "contact") == harness.store.ids("customers", since)
    assert emitted_ids(pages, "order") == harness.store.ids("orders", since)
    assert all(r.cursor is not None and r.cursor >= since for r in records(pages))


async def test_window_bounds_are_half_open(harness: Harness) -> None:
    lo, hi = TODAY - timedelta(days=500), TODAY - timedelta(days=135)
    pages = await read_pages(harness.source(page_size=25), window=(lo, hi))
    assert emitted_ids(pages, "contact") == harness.store.ids("customers", lo, hi)
    assert emitted_ids(pages, "order") == harness.store.ids("orders", lo, hi)
    # since and window together: the later lower bound wins
    since = TODAY - timedelta(days=200)
    both = await read_pages(harness.source(), since=since, window=(lo, hi))
    assert emitted_ids(both, "contact") == harness.store.ids("customers", since, hi)
    empty = await read_pages(harness.source(), window=(hi, lo))
    assert empty == []


async def test_two_year_backfill_in_one_year_chunks(harness: Harness) -> None:
    src, seen = harness.source(), set[str]()
    mid, start = TODAY - timedelta(days=365), TODAY - timedelta(days=730)
    for chunk in ((start, mid), (mid, TODAY + timedelta(days=1))):
        ids = emitted_ids(await read_pages(src, window=chunk, orders=False), "contact")
        assert ids, chunk  # data in both years
        assert not ids & seen
        seen |= ids
    assert seen == harness.store.ids("customers", start)


async def test_deep_paging_past_the_cap_misses_no_one() -> None:
    sandbox = create_sandbox(seed=11, records=1500, today=TODAY, spike_arrest_per_s=None)
    h = Harness(sandbox)
    try:
        src = h.source(page_size=100)
        pages = await read_pages(src, orders=False)
        ids = emitted_ids(pages, "contact")
        assert len(h.store.customers) == 1500 and ids == h.store.ids("customers")
        assert len(records(pages)) == 1500  # no repeats either
        statuses = sandbox.stats.statuses
        assert set(statuses) == {"200"}  # never asked past the cap
        assert src.api_calls <= 17
    finally:
        await h.aclose()


async def test_one_timestamp_group_larger_than_a_page(harness: Harness) -> None:
    stamp = "2025-01-01T00:00:00Z"
    group = sorted(harness.store.customers)[:130]
    for cid in group:
        harness.store.customers[cid]["updated_at"] = stamp
    harness.store.mutate({"share": 0})  # re-sorts the index
    pages = await read_pages(harness.source(page_size=50), orders=False)
    assert emitted_ids(pages, "contact") == harness.store.ids("customers")
    assert len(records(pages)) == len(harness.store.customers)


async def test_a_group_past_the_cap_stops_the_read_instead_of_skipping(
    harness: Harness,
) -> None:
    for c in harness.store.customers.values():
        c["updated_at"] = "2025-01-01T00:00:00Z"
    harness.store.mutate({"share": 0})
    src = harness.source(page_size=20, deep_paging_limit=100)
    with pytest.raises(FatalError, match="share updated_at"):
        await read_pages(src, orders=False)


async def test_orders_carry_their_customer_and_consent(harness: Harness) -> None:
    found = bookings(await read_pages(harness.source(clock=lambda: NOW)))
    assert len(found) == len(harness.store.orders)
    statuses = set()
    for oid, booking in found.items():
        raw = harness.store.orders[oid]
        customer = harness.store.customers[raw["customer_id"]]
        assert booking.contact is not None
        assert booking.contact.external_id == str(customer["id"])
        mc = customer.get("marketing_consent") or {}
        assert booking.contact.email_consent.granted == (mc.get("email") is True)
        assert booking.contact.sms_consent.granted == (mc.get("sms") is True)
        assert booking.party_size == len(raw["tickets"]) == len(booking.tickets)
        assert booking.value is not None and booking.value.currency == "DKK"
        assert booking.event is not None and booking.venue is not None
        statuses.add(booking.status)
    assert statuses == {BookingStatus.BOOKED, BookingStatus.ATTENDED, BookingStatus.CANCELLED}


async def test_members_off_reads_orders_and_looks_customers_up(harness: Harness) -> None:
    since = TODAY - timedelta(days=60)
    src = harness.source()
    pages = await read_pages(src, since=since, members=False)
    assert {r.kind for r in records(pages)} == {"booking"}
    assert emitted_ids(pages, "order") == harness.store.ids("orders", since)
    wanted = {
        str(harness.store.orders[o]["customer_id"]) for o in harness.store.ids("orders", since)
    }
    assert src.customer_lookups == len(wanted)  # one lookup per customer, cached after
    assert harness.sandbox.stats.requests["GET /clientdata/v1/{market}/customers/{id}"] == len(
        wanted
    )
    assert src.api_calls == sum(harness.sandbox.stats.requests.values())


async def test_orders_off_reads_members_only(harness: Harness) -> None:
    pages = await read_pages(harness.source(), orders=False)
    assert {r.kind for r in records(pages)} == {"contact"}
    assert "GET /clientdata/v1/{market}/orders" not in harness.sandbox.stats.requests
    with pytest.raises(ValidationError, match="nothing to read"):
        CustomersOptions(members=False, orders=False)


async def test_unmappable_payloads_become_failures_with_reasons(harness: Harness) -> None:
    bad = harness.store.customers[2000003]
    bad["marketing_consent"] = {"email": "maybe"}
    orphan = dict(harness.store.orders["70000001"], id="79999999", customer_id=1)
    harness.store.orders["79999999"] = orphan
    harness.store.mutate({"share": 0})
    src = harness.source()
    pages = await read_pages(src)
    by_key = {f.key: f for f in failures(pages)}
    failed = by_key["contact:ticketmaster:DK:2000003"]
    assert "marketing_consent.email" in failed.reason and failed.raw == {"customer": bad}
    lost = by_key["order:ticketmaster:DK:79999999"]
    assert "customer_id" in lost.reason and lost.raw["customer"] is None
    # every order of the bad customer fails too, naming the customer's field
    theirs = [o for o, v in harness.store.orders.items() if v["customer_id"] == 2000003]
    for oid in theirs:
        assert "marketing_consent.email" in by_key[f"order:ticketmaster:DK:{oid}"].reason
    # dead-letter retry: fixed at the source, the stored raw maps again
    with pytest.raises(MappingError, match="marketing_consent"):
        src.remap("customers", failed.raw, CustomersOptions())
    fixed = {"customer": {**bad, "marketing_consent": {"email": True}}}
    record = src.remap("customers", fixed, CustomersOptions())
    assert record.key == failed.key and isinstance(record.data, Contact)
    assert record.data.email_consent.granted


async def test_remap_orders_and_options(harness: Harness) -> None:
    src = harness.source()
    order = harness.store.orders["70000002"]
    customer = harness.store.customers[order["customer_id"]]
    record = src.remap(
        "customers",
        {"order": order, "customer": customer},
        CustomersOptions(date_format="%d-%m-%Y"),
    )
    assert record.kind == "booking" and record.key == "order:ticketmaster:DK:70000002"
    assert isinstance(record.data, Booking) and record.data.contact is not None
    if "birth_date" in customer:
        born = record.data.contact.attributes["birth_date"]
        assert born == datetime.strptime(customer["birth_date"], "%d-%m-%Y").date().isoformat()
    with pytest.raises(MappingError, match="'customer' or 'order'"):
        src.remap("customers", {"something": {}}, CustomersOptions())


async def test_date_format_option_reaches_the_contacts(harness: Harness) -> None:
    iso = contacts(await read_pages(harness.source(), orders=False, date_format="%d-%m-%Y"))
    plain = contacts(await read_pages(harness.source(), orders=False))
    with_dates = [cid for cid in iso if "birth_date" in harness.store.customers[int(cid)]]
    assert with_dates
    for cid in with_dates:
        assert iso[cid].attributes["birth_date"][4] == "-"  # YYYY-MM-DD
        assert not any(i.field == "birth_date" for i in iso[cid].issues)
        assert any(i.field == "birth_date" for i in plain[cid].issues)


async def test_resume_from_a_position(harness: Harness) -> None:
    src = harness.source(page_size=30)
    full = await read_pages(src)
    everything = {r.key for r in records(full)}
    for cut in (3, len(full) // 2 + 3):  # inside the customers phase, inside the orders phase
        done, position = full[:cut], full[cut - 1].position
        assert position is not None
        resumed = await read_pages(harness.source(page_size=30), position=position)
        before = {r.key for r in records(done)}
        after = [r.key for r in records(resumed)]
        assert before | set(after) == everything
        assert len(set(after) & before) <= 1  # at most the boundary again
        if position["phase"] == "orders":
            assert not any(k.startswith("contact:") for k in after)
    # a position of other options is not trusted: the read starts over
    other = await read_pages(harness.source(), position=full[2].position, orders=False)
    assert emitted_ids(other, "contact") == harness.store.ids("customers")


async def test_resume_keeps_the_interrupted_upper_bound(harness: Harness) -> None:
    # The interrupted read began at NOW; the mutation is stamped later (wall time).
    pages = await read_pages(harness.source(page_size=50, clock=lambda: NOW))
    position = pages[1].position
    assert position is not None and position["until"] == "2025-06-15T12:30:00Z"
    result = await harness.admin("mutate", {"share": 0.05, "new_orders": 2, "seed": 3})
    resumed = await read_pages(harness.source(page_size=50), position=position)
    # nothing still in range is missed (the changed ones were emitted before they changed)
    assert harness.store.ids("customers", None, NOW) <= (
        emitted_ids(pages[:2], "contact") | emitted_ids(resumed, "contact")
    )
    # what changed after the interrupted read began is left to the next run
    assert not emitted_ids(resumed, "contact") & {str(c) for c in result["changed"]}
    assert not emitted_ids(resumed, "order") & set(result["new_orders"])


async def test_mutate_then_read_since_the_cursor(harness: Harness) -> None:
    first = await read_pages(harness.source())
    cursor = max(r.cursor for r in records(first) if r.cursor is not None)
    result = await harness.admin(
        "mutate",
        {"share": 0.05, "consent_flip_share": 0.02, "new_customers": 3, "new_orders": 5, "seed": 1},
    )
    second = await read_pages(harness.source(), since=cursor)
    touched = {
        str(c) for c in result["changed"] + result["consent_flipped"] + result["new_customers"]
    }
    assert touched <= emitted_ids(second, "contact") == harness.store.ids("customers", cursor)
    assert set(result["new_orders"]) <= emitted_ids(second, "order")
    found = contacts(second)
    for cid in result["consent_flipped"]:
        before = contacts(first)[str(cid)].email_consent.granted
        assert found[str(cid)].email_consent.granted is not before


async def test_reads_are_deterministic(harness: Harness) -> None:
    def dump(pages: Any) -> list[Any]:
        return [(r.key, r.data.model_dump()) for r in records(pages)]

    a = await read_pages(harness.source(clock=lambda: NOW))
    b = await read_pages(harness.source(clock=lambda: NOW))
    assert dump(a) == dump(b)


async def test_paths_override_end_to_end() -> None:
    paths = Paths(
        customers="markets/{market}/members",
        customer="markets/{market}/members/{id}",
        orders="markets/{market}/sales",
        customers_list="_embedded.members",
        orders_list="_embedded.sales",
        updated_since="from",
        updated_until="to",
        api_key="key",
    )
    h = Harness(create_sandbox(records=40, today=TODAY, spike_arrest_per_s=None, paths=paths))
    try:
        pages = await read_pages(
            h.source(paths=paths, page_size=7), since=TODAY - timedelta(days=300)
        )
        since = TODAY - timedelta(days=300)
        assert emitted_ids(pages, "contact") == h.store.ids("customers", since)
        assert emitted_ids(pages, "order") == h.store.ids("orders", since)
    finally:
        await h.aclose()


async def test_quota_violation_is_rate_limited_and_names_no_key() -> None:
    h = Harness(create_sandbox(records=30, today=TODAY, spike_arrest_per_s=None, daily_quota=1))
    try:
        with pytest.raises(RateLimited) as info:
            await read_pages(h.source(page_size=10, max_retries=1))
        assert "quota" in str(info.value).lower()
        assert "sandbox-tm-key" not in str(info.value) and "[redacted]" in str(info.value)
    finally:
        await h.aclose()


# -- the 5 requests per second limit (real time: a few seconds) ----------------------------


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_spike_arrest_is_absorbed_by_retries_to_the_same_result() -> None:
    free = Harness(create_sandbox(seed=5, records=40, today=TODAY, spike_arrest_per_s=None))
    limited = Harness(create_sandbox(seed=5, records=40, today=TODAY))  # arrests above 5/s
    try:
        truth = await read_pages(free.source(page_size=10, clock=lambda: NOW))
        # No budget at all: the client goes as fast as it can, is arrested, waits the
        # Retry-After and carries on.
        unbudgeted = limited.source(page_size=10, sleep=_real_sleep, clock=lambda: NOW)
        pages = await read_pages(unbudgeted)
        assert unbudgeted.client.api.statuses[429] > 0
        assert limited.sandbox.stats.statuses["429"] == unbudgeted.client.api.statuses[429]
        assert [r.key for r in records(pages)] == [r.key for r in records(truth)]
        assert [r.data for r in records(pages)] == [r.data for r in records(truth)]
    finally:
        await free.aclose()
        await limited.aclose()


async def test_the_default_budget_keeps_below_the_spike_arrest() -> None:
    limited = create_sandbox(seed=5, records=40, today=TODAY)
    h = Harness(limited)
    try:
        src = h.source(page_size=10, sleep=_real_sleep, rate_per_second=5.0)
        assert src.config.rate_burst == 1
        started = datetime.now(UTC)
        pages = await read_pages(src)
        assert emitted_ids(pages, "contact") == h.store.ids("customers")
        # a smooth 5/s with no bursts never trips the spike arrest
        assert src.client.api.statuses[429] == 0
        assert datetime.now(UTC) - started < timedelta(seconds=10)
    finally:
        await h.aclose()


@pytest.mark.parametrize("phase", ["customers", "orders"])
async def test_a_resume_costs_no_more_calls_than_a_whole_read(harness: Harness, phase: str) -> None:
    """After a crash the orders' buyers come from the customer list read again (a page per
    30 customers here), not from one look-up per buyer, and no customer is emitted twice."""
    whole = harness.source(page_size=30)
    full = await read_pages(whole)
    cut = [i for i, p in enumerate(full) if p.position and p.position["phase"] == phase][1]
    position = full[cut].position
    assert position is not None
    resumed_src = harness.source(page_size=30)
    resumed = await read_pages(resumed_src, position=position)
    assert emitted_ids(resumed, "contact") == emitted_ids(full[cut + 1 :], "contact")
    assert emitted_ids(resumed, "order") == emitted_ids(full[cut + 1 :], "order")
    assert whole.customer_lookups == 0
    # at most the customers at the resume point's timestamp, which the resumed scan skips
    assert resumed_src.customer_lookups <= len(position["skip"])
    # the list pages before the resume point again, the page at the split twice
    assert 0 < resumed_src.api_calls <= whole.api_calls + 2
    by_key = {r.key: r for r in records(full)}
    for record in records(resumed):  # the buyers as the whole read had them
        assert record.data == by_key[record.key].data
