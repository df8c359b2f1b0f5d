"""The destination against the sandbox over real HTTP: writes, idempotency, consent safety."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.airship_crm import (
    CONNECTOR,
    AirshipCrmDestination,
    ContactBookingsOptions,
)
from ticketbridge.connectors.airship_crm.sandbox import create_sandbox
from ticketbridge.connectors.base import Change, Destination
from ticketbridge.errors import AuthError
from ticketbridge.model import BookingStatus, ConsentState, Contact

from .support import Harness, change_for, make_booking

OPTS = ContactBookingsOptions.model_validate({"groups": {"event_tags": ["Golf", "Bowling"]}})
BY_ID = OPTS.model_copy(update={"booking_updates": "by_id"})


def by_email(data: dict[str, Any], email: str) -> dict[str, Any]:
    return next(c for c in data["contacts"] if c["email"] == email)


def by_ref(data: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(b for b in data["bookings"] if b["booking_reference"] == ref)


async def create(dest: AirshipCrmDestination, *records: Any) -> list[Any]:
    return await dest.write(
        "contact_bookings", [change_for(dest, r, options=OPTS) for r in records], OPTS
    )


def test_connector_registration() -> None:
    assert CONNECTOR.sandbox is not None
    assert CONNECTOR.platform == "airship_crm"
    # The registered factory (named lazily, see connectors.base.lazy_sandbox) makes this sandbox.
    made = CONNECTOR.sandbox.create(seed=7, records=3, today=None)
    assert made.platform == "airship_crm"
    assert made.store.dump() == create_sandbox(seed=7, records=3).store.dump()
    assert CONNECTOR.sandbox.env == {"AIRSHIP_TOKEN": "sandbox-airship-token"}
    assert CONNECTOR.sandbox.config("http://127.0.0.1:8402") == {
        "platform": "airship_crm",
        "base_url": "http://127.0.0.1:8402/v1",
        "token": "${AIRSHIP_TOKEN}",
        "account_id": 1,
    }
    spec = CONNECTOR.objects[0]
    assert spec.name == "contact_bookings" and spec.accepts == ("booking",)
    assert dict(spec.default_policy) == {"contact": "on_create", "booking": "always"}


async def test_is_a_destination(harness: Harness) -> None:
    assert isinstance(harness.destination(), Destination)


async def test_create_writes_contact_booking_and_groups_under_the_unit(harness: Harness) -> None:
    dest = harness.destination()
    [outcome] = await create(dest, make_booking("R1", tags=("golf",), venue="Bowl Arena"))
    assert outcome.ok and outcome.key == "booking:ticketco:R1"
    data = await harness.data()
    contact = by_email(data, "jane.doe@example.com")
    assert outcome.dest_ids == {"contact": str(contact["id"])}
    assert contact["mobile_number"] == "447700900123"
    assert contact["allow_email"] is True and contact["allow_sms"] is None
    assert contact["source_name"] == "TicketCo"
    [unit] = contact["units"]
    assert unit["name"] == "Bowl Arena" and unit["id"] == 1002
    assert sorted((g["name"], g["folder_name"]) for g in unit["groups"]) == [
        ("Booking", "TicketCo"),
        ("Golf", "TicketCo"),
    ]
    booking = by_ref(data, "R1")
    assert booking["contact_id"] == contact["id"] and booking["unit_id"] == 1002
    assert booking["stage_value"] == 1 and booking["party_size"] == 2
    assert booking["party_datetime"] == "2024-06-01 19:00:00"
    assert booking["deposit_paid"] == "45.00" and booking["source_id"] == 1
    assert booking["type_id"] == 13
    assert dest.api_calls == 2  # units once, then one POST /contact


async def test_repeated_create_does_not_duplicate(harness: Harness) -> None:
    dest = harness.destination()
    record = make_booking("R1")
    first = await create(dest, record)
    second = await create(dest, record)  # e.g. a killed run re-run before the ledger commit
    assert first[0].dest_ids == second[0].dest_ids
    data = await harness.data()
    assert data["counts"]["contacts"] == 1 and data["counts"]["bookings"] == 1
    assert len(data["groups"]) == 1
    writes = (await harness.stats())["writes"]
    assert writes["contact:jane.doe@example.com"] == {"create": 1, "update": 1}
    assert writes["booking:R1"] == {"create": 1, "update": 1}


async def test_second_booking_of_same_contact_attaches_to_it(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1"), make_booking("R2", email="JANE.DOE@example.com"))
    data = await harness.data()
    assert data["counts"] == {"units": 4, "groups": 1, "contacts": 1, "bookings": 2}


async def test_update_is_one_upsert_of_the_booking_by_default(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1", email_consent=ConsentState.GRANTED))
    before = by_email(await harness.data(), "jane.doe@example.com")

    # Attended, and the source now says "no email": the booking changes, the profile must not.
    changed = make_booking("R1", status=BookingStatus.ATTENDED, party_size=4)
    change = change_for(
        dest, changed, "update", dest_ids={"contact": str(before["id"])}, options=OPTS
    )
    assert "contact" not in change.fields
    [outcome] = await dest.write("contact_bookings", [change], OPTS)
    assert outcome.ok and outcome.dest_ids == {"contact": str(before["id"])}

    data = await harness.data()
    booking = by_ref(data, "R1")
    assert booking["stage_value"] == 100 and booking["party_size"] == 4
    assert booking["contact_id"] == before["id"] and data["counts"]["bookings"] == 1
    after = by_email(data, "jane.doe@example.com")
    assert {**after, "updated_at": None} == {**before, "updated_at": None}
    requests = (await harness.stats())["requests"]
    # One call per changed booking: no look-up of an id Airship's create never returned.
    assert requests["POST /v1/contact"] == 2 and "GET /v1/bookings" not in requests
    assert "POST /v1/bookings/{booking_id}" not in requests


async def test_update_by_id_looks_the_id_up_once(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1", email_consent=ConsentState.GRANTED))
    before = by_email(await harness.data(), "jane.doe@example.com")
    requests_before = (await harness.stats())["requests"]

    # Attended, and the source now says "no email": the booking changes, the profile must not.
    changed = make_booking(
        "R1", status=BookingStatus.ATTENDED, party_size=4, email_consent=ConsentState.DENIED
    )
    change = change_for(
        dest, changed, "update", dest_ids={"contact": str(before["id"])}, options=BY_ID
    )
    assert "contact" not in change.fields
    [outcome] = await dest.write("contact_bookings", [change], BY_ID)
    assert outcome.ok

    data = await harness.data()
    booking = by_ref(data, "R1")
    assert booking["stage_value"] == 100 and booking["party_size"] == 4
    assert outcome.dest_ids == {"contact": str(before["id"]), "booking": str(booking["id"])}
    after = by_email(data, "jane.doe@example.com")
    assert after == before  # allow_email still True, nothing else touched
    requests = (await harness.stats())["requests"]
    assert requests.get("POST /v1/contact") == requests_before["POST /v1/contact"] == 1
    assert requests["GET /v1/bookings"] == 1  # id looked up by reference
    assert requests["POST /v1/bookings/{booking_id}"] == 1

    # With the id known (as the ledger stores it) no lookup is needed.
    again = change_for(
        dest,
        make_booking("R1", status=BookingStatus.CANCELLED),
        "update",
        dest_ids=outcome.dest_ids,
        options=BY_ID,
    )
    [outcome2] = await dest.write("contact_bookings", [again], BY_ID)
    assert outcome2.ok and by_ref(await harness.data(), "R1")["stage_value"] == 550
    requests = (await harness.stats())["requests"]
    assert requests["GET /v1/bookings"] == 1 and requests["POST /v1/contact"] == 1


async def test_update_with_contact_policy_always_upserts_contact(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1"))
    record = make_booking("R1", tags=("Bowling",))
    change = change_for(dest, record, "update", entities=("contact", "booking"), options=OPTS)
    [outcome] = await dest.write("contact_bookings", [change], OPTS)
    assert outcome.ok and set(outcome.dest_ids) == {"contact"}
    contact = by_email(await harness.data(), "jane.doe@example.com")
    assert {g["name"] for g in contact["units"][0]["groups"]} == {"Booking", "Bowling"}
    requests = (await harness.stats())["requests"]
    # Profile and booking in one upsert.
    assert requests["POST /v1/contact"] == 2 and "POST /v1/bookings/{booking_id}" not in requests


async def test_preserve_consent_on_second_upsert(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1", email_consent=ConsentState.GRANTED))
    mutated = await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    assert mutated["unsubscribed"] == ["jane.doe@example.com"]
    # A new booking of the same customer, whose ticketing consent still says "granted".
    [outcome] = await create(dest, make_booking("R2", email_consent=ConsentState.GRANTED))
    assert outcome.ok
    data = await harness.data()
    assert by_email(data, "jane.doe@example.com")["allow_email"] is False
    assert data["counts"]["bookings"] == 2

    # Without the rule the CRM's opt-out would be overwritten: the rule is what protects it.
    bare = ContactBookingsOptions(preserve_consent=False)
    await dest.write("contact_bookings", [change_for(dest, make_booking("R3"), options=bare)], bare)
    assert by_email(await harness.data(), "jane.doe@example.com")["allow_email"] is True


async def test_unknown_venue_is_a_per_record_refusal(harness: Harness) -> None:
    dest = harness.destination()
    outcomes = await create(
        dest,
        make_booking("R1", venue="Moon Base"),
        make_booking("R2", email="other@example.com", mobile=None),
    )
    by_key = {o.key: o for o in outcomes}
    bad = by_key["booking:ticketco:R1"]
    assert not bad.ok
    assert bad.reason == "venue 'Moon Base' is not a unit of Airship account 1"
    assert by_key["booking:ticketco:R2"].ok
    assert (await harness.data())["counts"]["bookings"] == 1


async def test_422_is_a_per_record_outcome_naming_the_field(harness: Harness) -> None:
    dest = harness.destination()
    # Valid syntax for us, but Airship finds no MX for the domain.
    bad = make_booking("R1", contact=Contact(email="jane@nomx.invalid", first_name="Jane"))
    good = [make_booking(f"R{i}", email=f"guest{i}@example.com", mobile=None) for i in range(2, 6)]
    outcomes = await create(dest, bad, *good)
    assert len(outcomes) == 5
    refused = [o for o in outcomes if not o.ok]
    assert [o.key for o in refused] == ["booking:ticketco:R1"]
    assert refused[0].reason is not None
    assert "email: The email must be a valid email address." in refused[0].reason
    assert "sandbox-airship-token" not in refused[0].reason
    assert (await harness.data())["counts"]["bookings"] == 4


async def test_401_raises_auth_error_without_leaking_the_token(harness: Harness) -> None:
    dest = harness.destination(token="wrong-token-value")
    with pytest.raises(AuthError) as caught:
        await create(dest, make_booking("R1"))
    assert caught.value.status == 401 and "Unauthorized" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value)
    assert (await harness.data())["counts"]["contacts"] == 0


async def test_wrong_account_is_refused(harness: Harness) -> None:
    dest = harness.destination(account_id=2)
    with pytest.raises(AuthError) as caught:
        await create(dest, make_booking("R1"))
    assert caught.value.status == 403
    checks = {c.name: c for c in await dest.check()}
    assert checks["token"].ok and not checks["account"].ok


async def test_429_with_retry_after_reaches_the_same_final_state(harness: Harness) -> None:
    records = [make_booking(f"R{i}", email=f"guest{i}@example.com", mobile=None) for i in range(12)]
    clean = Harness(create_sandbox())
    await create(clean.destination(), *records)
    expected = await clean.data()
    await clean.aclose()

    await harness.admin("POST", "faults", {"rate_429": 0.4, "retry_after_s": 2, "seed": 7})
    outcomes = await create(harness.destination(max_retries=10), *records)
    assert all(o.ok for o in outcomes)
    stats = await harness.stats()
    assert stats["faults"]["429"] > 0 and stats["statuses"]["429"] == stats["faults"]["429"]
    assert 2.0 in harness.sleeps  # Retry-After honoured
    data = await harness.data()

    def content(d: dict[str, Any]) -> tuple[Any, ...]:
        contacts = sorted((c["email"], c["allow_email"], len(c["units"])) for c in d["contacts"])
        bookings = sorted((b["booking_reference"], b["stage_value"]) for b in d["bookings"])
        return d["counts"], contacts, bookings

    assert content(data) == content(expected)


async def test_429_body_uses_airship_error_shape(harness: Harness) -> None:
    await harness.admin("POST", "faults", {"rate_429": 1.0, "retry_after_s": 3})
    async with httpx.AsyncClient(transport=harness.transport, base_url="http://x") as http:
        response = await http.get("/v1/account/units", params={"account_id": 1})
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json() == {"errors": [{"message": "Too Many Attempts."}]}


async def test_booking_missing_on_update_by_id_is_refused_not_recreated(harness: Harness) -> None:
    dest = harness.destination()
    change = change_for(dest, make_booking("R404"), "update", options=BY_ID)
    [outcome] = await dest.write("contact_bookings", [change], BY_ID)
    assert not outcome.ok and outcome.reason is not None
    assert "'R404' not found in Airship account 1" in outcome.reason
    assert "POST /v1/contact" not in (await harness.stats())["requests"]


async def test_stale_booking_id_is_looked_up_again(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1"))
    change = change_for(
        dest,
        make_booking("R1", party_size=7),
        "update",
        dest_ids={"booking": "999999"},
        options=BY_ID,
    )
    [outcome] = await dest.write("contact_bookings", [change], BY_ID)
    booking = by_ref(await harness.data(), "R1")
    assert outcome.ok and outcome.dest_ids["booking"] == str(booking["id"])
    assert booking["party_size"] == 7


async def test_if_empty_fields_only_fill_blanks(harness: Harness) -> None:
    dest = harness.destination()
    await create(dest, make_booking("R1", email_consent=ConsentState.UNKNOWN))
    record = make_booking("R2", email_consent=ConsentState.DENIED)
    record.data.contact.first_name = "Janet"  # type: ignore[union-attr]
    change = change_for(dest, record, options=OPTS)
    change = Change(
        **{**change.__dict__, "if_empty": frozenset({"contact.first_name", "contact.allow_email"})}
    )
    [outcome] = await dest.write("contact_bookings", [change], OPTS)
    assert outcome.ok
    contact = by_email(await harness.data(), "jane.doe@example.com")
    assert contact["first_name"] == "Jane"  # had a value: kept
    assert contact["allow_email"] is False  # was empty: filled


async def test_writes_run_with_bounded_concurrency(harness: Harness) -> None:
    in_flight = peak = 0

    class Tracking(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.005)
                return await harness.transport.handle_async_request(request)
            finally:
                in_flight -= 1

    harness.ctx.mount("http://airship.sandbox.test", Tracking())
    records = [make_booking(f"R{i}", email=f"g{i}@example.com", mobile=None) for i in range(20)]
    outcomes = await create(harness.destination(concurrency=3), *records)
    assert all(o.ok for o in outcomes) and len(outcomes) == 20
    assert 1 < peak <= 3


async def test_check_and_check_venues(harness: Harness) -> None:
    dest = harness.destination()
    checks = await dest.check()
    assert [(c.name, c.ok) for c in checks] == [("token", True), ("account", True), ("units", True)]
    assert "Riverside Hall" in checks[2].detail
    venues = await dest.check_venues(["Riverside Hall", "riverside  hall", "Moon Base"])
    assert [v.ok for v in venues] == [True, True, False]
    assert "not a unit of Airship account 1" in venues[2].detail
    bad = await harness.destination(token="nope").check()
    assert [(c.name, c.ok) for c in bad] == [("token", False), ("account", False)]


async def test_units_follow_laravel_pagination() -> None:
    names = [f"Venue {i:03d}" for i in range(150)]
    h = Harness(create_sandbox(units=names))
    try:
        dest = h.destination()
        venues = await dest.check_venues(["Venue 000", "Venue 149"])
        assert all(v.ok for v in venues)
        assert (await h.stats())["requests"]["GET /v1/account/units"] == 2
    finally:
        await h.aclose()
