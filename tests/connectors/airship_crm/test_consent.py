"""Consent through whole runs (engine + destination + sandbox): a withdrawal always reaches
Airship, an opt-in only on create, and the result does not depend on write order (issue
20.1 and 20.2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import RecordsSource
from ticketbridge.connectors.base import Record, StreamSpec
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.engine.state.sql import SqlStateStore, open_store
from ticketbridge.model import ConsentState
from ticketbridge.project import load_project_text

from .support import BASE, Harness, make_booking

BOOKINGS = StreamSpec("bookings", "booking", ("window",))
GRANTED, DENIED, UNKNOWN = ConsentState.GRANTED, ConsentState.DENIED, ConsentState.UNKNOWN
EMAIL = "jane.doe@example.com"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def sync(
    policy: dict[str, Any] | None = None,
    require_consent: str | None = None,
    **options: Any,
) -> SyncSpec:
    """The sync as a project file makes it (the object's defaults, the user's policy)."""
    block: dict[str, Any] = {
        "source": {"connection": "ticketco", "stream": "bookings"},
        "destination": {"connection": "airship", "object": "contact_bookings", **options},
        "match": ["email", "mobile"],
    }
    if policy:
        block["write_policy"] = policy
    if require_consent:
        block["require_consent"] = require_consent
    project = {
        "connections": {
            "ticketco": {"platform": "ticketco", "base_url": "http://ticketco.test", "token": "t"},
            "airship": {"platform": "airship_crm", "base_url": BASE + "/v1", "token": "t",
                        "account_id": 1},
        },
        "syncs": {"tc-to-airship": block},
    }  # fmt: skip
    return load_project_text(yaml.safe_dump(project)).get_sync("tc-to-airship")


def booking(ref: str, email: ConsentState, sms: ConsentState = UNKNOWN, **kw: Any) -> Record:
    return make_booking(ref, email_consent=email, sms_consent=sms, **kw)


async def consent(harness: Harness, email: str = EMAIL) -> tuple[bool | None, bool | None]:
    contact = next(c for c in (await harness.data())["contacts"] if c["email"] == email)
    return contact["allow_email"], contact["allow_sms"]


async def run(state: SqlStateStore, harness: Harness, spec: SyncSpec, *records: Record) -> Any:
    result = await run_sync(
        state, spec, RecordsSource(list(records), BOOKINGS), harness.destination()
    )
    assert result.outcome == "ok", result
    return result


@pytest.mark.parametrize("policy", ["on_create", "always"])
async def test_a_withdrawal_reaches_airship_and_an_opt_in_does_not_come_back(
    state: SqlStateStore, harness: Harness, policy: str
) -> None:
    spec = sync({"contact": policy}, require_consent="email")
    await run(state, harness, spec, booking("R1", GRANTED))
    assert await consent(harness) == (True, None)

    # The customer unticks the box: with require_consent the booking no longer passes the
    # filter, but Airship holds the contact, so the withdrawal is written.
    second = await run(state, harness, spec, booking("R1", DENIED))
    assert second.counters.updated == 1
    assert await consent(harness) == (False, None)

    # Ticked again later: an opt-in of an existing profile is not written by side effect.
    await run(state, harness, spec, booking("R1", GRANTED))
    assert await consent(harness) == (False, None)


async def test_a_withdrawal_alone_costs_one_lookup_and_one_write_and_touches_no_booking(
    state: SqlStateStore, harness: Harness
) -> None:
    await run(state, harness, sync(), booking("R1", GRANTED))
    before = await harness.stats()
    await run(state, harness, sync(), booking("R1", DENIED))
    after = await harness.stats()
    calls = {
        route: n - before["requests"].get(route, 0)
        for route, n in after["requests"].items()
        if n != before["requests"].get(route, 0)
    }
    assert calls == {"GET /v1/contacts": 1, "POST /v1/contact": 1}
    assert await consent(harness) == (False, None)


async def test_a_withdrawal_never_carries_an_opt_in_of_another_channel(
    state: SqlStateStore, harness: Harness
) -> None:
    # First: e-mail yes, SMS no. Then the other way round, under ``contact: always``: the
    # e-mail withdrawal is written, the SMS opt-in is not (preserve_consent keeps the no).
    spec = sync({"contact": "always"})
    await run(state, harness, spec, booking("R1", GRANTED, DENIED))
    assert await consent(harness) == (True, False)
    await run(state, harness, spec, booking("R1", DENIED, GRANTED))
    assert await consent(harness) == (False, False)


async def test_a_new_booking_that_withdraws_overrides_an_earlier_opt_in(
    state: SqlStateStore, harness: Harness
) -> None:
    await run(state, harness, sync(), booking("R1", GRANTED))
    await run(state, harness, sync(), booking("R1", GRANTED), booking("R2", DENIED))
    assert await consent(harness) == (False, None)


@pytest.mark.parametrize("order", ["yes-first", "no-first"])
@pytest.mark.parametrize("fault", [False, True], ids=["clean", "first-post-fails"])
async def test_two_bookings_of_one_customer_end_the_same_whatever_lands_first(
    state: SqlStateStore, harness: Harness, order: str, fault: bool
) -> None:
    """One opted-in and one opted-out booking of one customer, in one batch: the withdrawal
    wins however they are ordered and whichever write is retried."""
    yes, no = booking("R1", GRANTED), booking("R2", DENIED)
    records = [yes, no] if order == "yes-first" else [no, yes]
    if fault:
        await harness.admin(
            "POST", "faults", {"fail_next": 1, "fail_status": 503, "only_methods": ["POST"]}
        )
    result = await run(state, harness, sync(), *records)
    assert result.counters.created == 2
    assert await consent(harness) == (False, None)
    refs = [b["booking_reference"] for b in (await harness.data())["bookings"]]
    assert sorted(refs) == ["R1", "R2"]


async def test_a_withdrawal_does_not_recreate_a_contact_erased_in_airship(
    state: SqlStateStore, harness: Harness
) -> None:
    await run(state, harness, sync(), booking("R1", GRANTED))
    # The venue erases the customer in Airship (e.g. a GDPR request); later the source
    # says the customer withdrew. Nothing is there to withdraw: no profile is made for it.
    store: Any = harness.sandbox.store
    store.contacts.clear()
    store.bookings.clear()
    result = await run_sync(
        state, sync(), RecordsSource([booking("R1", DENIED)], BOOKINGS), harness.destination()
    )
    assert result.outcome == "ok" and result.counters.destination_calls == 1  # the look-up
    assert (await harness.data())["contacts"] == []
