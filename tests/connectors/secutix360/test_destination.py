"""The destination against the S-360 sandbox over real HTTP: external statuses with their
mode, cultural contacts created once, envelope errors as dead letters, token renewal,
retried outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from ticketbridge.connectors.base import Destination
from ticketbridge.connectors.secutix360 import (
    CONNECTOR,
    TICKET_FEEDBACK,
    Secutix360Destination,
    TicketFeedbackOptions,
)
from ticketbridge.errors import AuthError, RecordRejected
from ticketbridge.http import HttpContext

from .support import (
    BASE,
    CREATE,
    SEARCH,
    STATUS,
    TOKEN,
    FakeClock,
    Harness,
    change_for,
    make_ticket,
    person,
    write,
)


def test_registration() -> None:
    assert CONNECTOR.platform == "secutix360" and CONNECTOR.sandbox is not None
    assert CONNECTOR.objects == (TICKET_FEEDBACK,)
    assert TICKET_FEEDBACK.accepts == ("ticket",)
    assert TICKET_FEEDBACK.entities == ("ticket", "owner", "holder")
    config = CONNECTOR.sandbox.config("http://127.0.0.1:8420")
    assert config["operator_password"] == "${S360_OPERATOR_PASSWORD}"


async def test_is_a_destination(harness: Harness) -> None:
    assert isinstance(harness.destination(), Destination)


async def test_status_is_stored_as_the_external_status_with_its_mode(harness: Harness) -> None:
    dest = harness.destination()
    owner = person("owner@example.org", "Olga", "Owner")
    holder = person("holder@example.org", "Hugo", "Holder")
    records = [
        make_ticket("S360-000001", status="ASSIGNED", owner=owner, holder=holder),
        make_ticket("S360-000002", status="TRANSFER_PENDING", mode="history", previous="RECEIVED"),
    ]
    outcomes = await write(dest, [change_for(dest, r) for r in records])
    assert all(o.ok for o in outcomes.values()), outcomes

    row = await harness.ticket("S360-000001")
    assert (row["external_status"], row["external_status_mode"]) == ("ASSIGNED", "lifecycle")
    assert row["previous_external_status"] == "INJECTED"
    assert row["external_status_date"] == "2026-11-20T10:00:00Z"
    assert row["s360_status"] == "Printed", "the S-360 ticket status is not the external one"
    owner_row = await harness.contact(row["owner_contact_number"])
    holder_row = await harness.contact(row["holder_contact_number"])
    assert (owner_row["email"], owner_row["first_name"]) == ("owner@example.org", "Olga")
    assert (holder_row["email"], holder_row["last_name"]) == ("holder@example.org", "Holder")
    ids = outcomes["ticket:tixngo:S360-000001"].dest_ids
    assert ids["owner_contact"] == str(row["owner_contact_number"])
    assert ids["holder_contact"] == str(row["holder_contact_number"])
    assert ids["ticket"] == "S360-000001"

    legacy = await harness.ticket("S360-000002")
    assert (legacy["external_status"], legacy["external_status_mode"]) == (
        "TRANSFER_PENDING",
        "history",
    )
    assert legacy["owner_contact_number"] is None  # nobody named: nobody stored
    writes = (await harness.stats())["writes"]
    assert writes["ticket:S360-000001"] == {"create": 1}


async def test_a_person_is_created_once_per_batch_and_across_batches(harness: Harness) -> None:
    dest = harness.destination()
    fan = "Fan.Number1@Example.org"
    records = [
        make_ticket(f"S360-00000{i}", owner=person(fan.lower() if i % 2 else fan))
        for i in (1, 2, 3)
    ]
    await write(dest, [change_for(dest, r) for r in records])
    assert len(await harness.contacts_with(fan)) == 1
    requests = await harness.requests()
    assert requests[SEARCH] == 1 and requests[CREATE] == 1, "one address, one look-up"

    # Another run (a new destination, nothing remembered): found by search, not created.
    again = harness.destination()
    await write(again, [change_for(again, make_ticket("S360-000004", owner=person(fan.upper())))])
    assert len(await harness.contacts_with(fan)) == 1
    data = await harness.data()
    assert data["duplicate_emails"] == [] and data["contacts_created"] == 1
    numbers = {
        (await harness.ticket(f"S360-00000{i}"))["owner_contact_number"] for i in (1, 2, 3, 4)
    }
    assert len(numbers) == 1


async def test_a_contact_s360_has_already_is_matched_not_created() -> None:
    h = Harness(records=20)
    try:
        buyer = h.store.contacts[min(h.store.contacts)]
        dest = h.destination()
        await write(dest, [change_for(dest, make_ticket("S360-000001", owner=person(buyer.email)))])
        row = await h.ticket("S360-000001")
        assert row["owner_contact_number"] == buyer.contact_number
        assert (await h.data())["contacts_created"] == 0
    finally:
        await h.aclose()


async def test_concurrent_writes_naming_one_new_person_create_it_once(harness: Harness) -> None:
    dest = harness.destination()
    new = person("newcomer@example.org", "Nina", "New")
    batches = [
        [change_for(dest, make_ticket(f"S360-0000{b}{i}", holder=new)) for i in range(3)]
        for b in range(4)
    ]
    results = await asyncio.gather(*(write(dest, batch) for batch in batches))
    assert all(o.ok for r in results for o in r.values())
    assert len(await harness.contacts_with("newcomer@example.org")) == 1
    assert (await harness.requests())[CREATE] == 1


async def test_a_transfer_creates_the_new_holder_once_and_a_second_one_none(
    harness: Harness,
) -> None:
    dest = harness.destination()
    owner = person("seller@example.org", "Sam", "Seller")
    first = [make_ticket(f"S360-00000{i}", owner=owner, holder=owner) for i in (1, 2)]
    created = await write(dest, [change_for(dest, r) for r in first])
    assert (await harness.data())["contacts_created"] == 1
    searches = (await harness.requests())[SEARCH]

    # Ticket 1 is transferred to Bob: a new run (a new destination) with the ledger's ids.
    bob = person("bob@example.org", "Bob", "Buyer")
    later = harness.destination()
    moved = make_ticket("S360-000001", status="TRANSFERRED", owner=bob, holder=bob)
    change = change_for(
        later,
        moved,
        "update",
        changed=("ticket", "owner", "holder"),
        dest_ids=created["ticket:tixngo:S360-000001"].dest_ids,
    )
    outcome = (await write(later, [change]))["ticket:tixngo:S360-000001"]
    assert outcome.ok
    row = await harness.ticket("S360-000001")
    bob_row = await harness.contact(row["holder_contact_number"])
    assert bob_row["email"] == "bob@example.org" and row["owner_contact_number"] == int(
        outcome.dest_ids["owner_contact"]
    )
    assert (await harness.data())["contacts_created"] == 2
    assert (await harness.requests())[SEARCH] == searches + 1  # Bob only

    # Ticket 2 goes to Bob too: he exists, so nothing is created.
    third = harness.destination()
    again = make_ticket("S360-000002", status="TRANSFERRED", owner=bob, holder=bob)
    change = change_for(
        third,
        again,
        "update",
        changed=("ticket", "owner", "holder"),
        dest_ids=created["ticket:tixngo:S360-000002"].dest_ids,
    )
    assert (await write(third, [change]))["ticket:tixngo:S360-000002"].ok
    assert (await harness.data())["contacts_created"] == 2
    assert (await harness.ticket("S360-000002"))["holder_contact_number"] == bob_row[
        "contact_number"
    ]


async def test_an_update_of_the_status_alone_sends_only_the_status(harness: Harness) -> None:
    dest = harness.destination()
    owner = person("keeper@example.org")
    created = await write(dest, [change_for(dest, make_ticket(owner=owner, holder=owner))])
    ids = created["ticket:tixngo:S360-000001"].dest_ids
    searches = (await harness.requests())[SEARCH]

    later = harness.destination()
    scanned = make_ticket(status="CONTROLLED", owner=owner, holder=owner, previous="ASSIGNED")
    change = change_for(later, scanned, "update", changed=("ticket",), dest_ids=ids)
    assert (await write(later, [change]))["ticket:tixngo:S360-000001"].ok
    row = await harness.ticket("S360-000001")
    assert row["external_status"] == "CONTROLLED"
    assert str(row["owner_contact_number"]) == ids["owner_contact"]  # kept as it was
    assert (await harness.requests())[SEARCH] == searches, "no look-up for unchanged people"
    assert (await harness.stats())["writes"]["ticket:S360-000001"] == {"create": 1, "update": 1}


async def test_a_person_without_email_is_not_created_and_the_ticket_still_written(
    harness: Harness,
) -> None:
    dest = harness.destination()
    anonymous = person(None, "No", "Mail")
    outcome = (await write(dest, [change_for(dest, make_ticket(owner=anonymous))]))[
        "ticket:tixngo:S360-000001"
    ]
    assert outcome.ok and "owner_contact" not in outcome.dest_ids
    row = await harness.ticket("S360-000001")
    assert row["external_status"] == "DOWNLOADED" and row["owner_contact_number"] is None
    assert (await harness.data())["contacts_created"] == 0


async def test_envelope_refusals_are_outcomes_with_the_status_detail(harness: Harness) -> None:
    await harness.mutate(
        op="refuse", ids=["S360-000002"], code="INVALID_PARAMETER", detail="Ticket is cancelled"
    )
    dest = harness.destination()
    records = [make_ticket(f"S360-00000{i}") for i in (1, 2, 3)]
    outcomes = await write(dest, [change_for(dest, r) for r in records])
    refused = outcomes["ticket:tixngo:S360-000002"]
    assert not refused.ok
    assert refused.reason is not None
    assert "INVALID_PARAMETER" in refused.reason and "Ticket is cancelled" in refused.reason
    assert refused.reason.startswith("ticket:tixngo:S360-000002: ")
    assert outcomes["ticket:tixngo:S360-000001"].ok and outcomes["ticket:tixngo:S360-000003"].ok


async def test_an_unknown_ticket_is_refused_when_s360_knows_only_its_own() -> None:
    h = Harness(records=3, accept_unknown_tickets=False)
    try:
        dest = h.destination()
        outcomes = await write(
            dest, [change_for(dest, make_ticket(n)) for n in ("S360-000003", "S360-999999")]
        )
        assert outcomes["ticket:tixngo:S360-000003"].ok
        unknown = outcomes["ticket:tixngo:S360-999999"]
        assert not unknown.ok and unknown.reason is not None
        assert "TICKET_NOT_FOUND" in unknown.reason and "S360-999999" in unknown.reason
        assert all(t["ticket_id"] != "S360-999999" for t in (await h.data())["tickets"])
    finally:
        await h.aclose()


@pytest.mark.parametrize("answer", ["http", "envelope"])
async def test_a_revoked_token_is_renewed_once_and_the_call_sent_again(
    harness: Harness, answer: str
) -> None:
    await harness.mutate(op="expired_answer", **{"as": answer})
    dest = harness.destination()
    await write(dest, [change_for(dest, make_ticket("S360-000001"))])
    await harness.mutate(op="revoke_tokens")
    outcomes = await write(dest, [change_for(dest, make_ticket("S360-000002"))])
    assert outcomes["ticket:tixngo:S360-000002"].ok
    assert (await harness.requests())[TOKEN] == 2
    assert dest.client.bearer is not None and dest.client.bearer.fetches == 2


async def test_a_token_is_renewed_before_it_expires() -> None:
    clock = FakeClock()
    h = Harness(token_ttl_s=600, clock=clock)
    try:
        dest = h.destination(clock=clock)
        await write(dest, [change_for(dest, make_ticket("S360-000001"))])
        clock.advance(590)  # inside the refresh margin (a tenth of 600 s)
        await write(dest, [change_for(dest, make_ticket("S360-000002"))])
        requests = await h.requests()
        assert requests[TOKEN] == 2
        assert (await h.stats())["statuses"].get("401") is None, "renewed before, not after"
    finally:
        await h.aclose()


async def test_wrong_credentials_are_an_auth_error_without_the_secret(harness: Harness) -> None:
    dest = harness.destination(operator_password="not-the-password")
    with pytest.raises(AuthError) as caught:
        await write(dest, [change_for(dest, make_ticket())])
    assert "secutix360" in str(caught.value) and "not-the-password" not in str(caught.value)
    checks = await harness.destination(operator_password="not-the-password").check()
    assert [c.ok for c in checks] == [False, False, False]
    assert not (await harness.stats())["writes"]


async def test_basic_auth_writes_and_checks(harness: Harness) -> None:
    dest = harness.destination(auth="basic")
    assert all(c.ok for c in await dest.check())
    assert (await write(dest, [change_for(dest, make_ticket())]))["ticket:tixngo:S360-000001"].ok
    assert TOKEN not in await harness.requests()


async def test_check_names_what_answers(harness: Harness) -> None:
    checks = await harness.destination().check()
    assert [(c.name, c.ok) for c in checks] == [
        ("credentials", True),
        ("access control", True),
        ("contacts", True),
    ]
    assert "externalAccessControlService/v1_6" in checks[1].detail


@pytest.mark.parametrize("status", [503, 429])
async def test_outages_and_rate_limits_are_retried(harness: Harness, status: int) -> None:
    await harness.faults(fail_next=3, fail_status=status, retry_after_s=4)
    dest = harness.destination()
    owner = person("patient@example.org")
    outcomes = await write(dest, [change_for(dest, make_ticket(owner=owner))])
    assert outcomes["ticket:tixngo:S360-000001"].ok
    assert (await harness.stats())["faults"] == {"fail_next": 3}
    assert len(await harness.contacts_with("patient@example.org")) == 1
    if status == 429:
        assert len([s for s in harness.sleeps if s >= 4]) == 3, harness.sleeps


async def test_a_technical_error_in_the_envelope_is_retried(harness: Harness) -> None:
    dest = harness.destination()
    await harness.mutate(op="refuse", ids=["S360-000001"], code="TECHNICAL_ERROR", detail="db")
    with pytest.raises(Exception) as caught:
        await write(dest, [change_for(dest, make_ticket())])
    assert "TECHNICAL_ERROR" in str(caught.value)
    assert (await harness.requests())[STATUS] == 1 + dest.config.max_retries


class _LoseFirstCreateAnswer:
    """Runs the sandbox, but the answer to the first createCulturalContacts never arrives
    (a 504 instead): the contact was made all the same."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lost = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lost or not scope.get("path", "").endswith("/createCulturalContacts"):
            await self.app(scope, receive, send)
            return
        self.lost += 1

        async def swallow(message: Any) -> None:
            return None

        await self.app(scope, receive, swallow)
        await send({"type": "http.response.start", "status": 504, "headers": []})
        await send({"type": "http.response.body", "body": b"gateway timeout"})


async def test_a_create_whose_answer_was_lost_is_not_sent_again() -> None:
    h = Harness()
    lossy = _LoseFirstCreateAnswer(h.sandbox.app)
    ctx = HttpContext(sleep=h.ctx.sleep)
    ctx.mount_app(BASE, lossy)
    try:
        dest = Secutix360Destination(h.config(), ctx)
        try:
            outcomes = await write(
                dest, [change_for(dest, make_ticket(owner=person("once@example.org")))]
            )
        finally:
            await dest.aclose()
        assert lossy.lost == 1 and outcomes["ticket:tixngo:S360-000001"].ok
        assert len(await h.contacts_with("once@example.org")) == 1
        row = await h.ticket("S360-000001")
        assert (
            str(row["owner_contact_number"])
            == outcomes["ticket:tixngo:S360-000001"].dest_ids["owner_contact"]
        )
    finally:
        await h.aclose()


async def test_options_reject_a_person_without_email(harness: Harness) -> None:
    dest = harness.destination()
    strict = TicketFeedbackOptions(person_without_email="reject")
    with pytest.raises(RecordRejected, match=r"S360-000001: holder\.email is empty"):
        dest.prepare("ticket_feedback", make_ticket(holder=person(None)), strict)
