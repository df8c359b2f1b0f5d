"""The destination against the sandbox over real HTTP: matching, import types, consent safety,
mapping, tracking events once per order, auth and retries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from ticketbridge.connectors.base import Change, Destination
from ticketbridge.connectors.heyloyalty import (
    CONNECTOR,
    HeyloyaltyDestination,
    MembersOptions,
    create_sandbox,
)
from ticketbridge.errors import AuthError, FatalError
from ticketbridge.model import ConsentState

from .support import (
    BASE,
    Harness,
    change_for,
    make_contact,
    make_order,
    member_by_email,
    options,
)

DEFAULT = options()


async def write(
    dest: HeyloyaltyDestination, opts: MembersOptions, *records: Any, action: str = "create"
) -> list[Any]:
    changes = [change_for(dest, r, opts, action) for r in records]
    return await dest.write("members", changes, opts)


def member_writes(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {k: v for k, v in stats["writes"].items() if k.startswith("member:")}


def test_connector_registration() -> None:
    assert CONNECTOR.sandbox is not None
    assert CONNECTOR.platform == "heyloyalty" and CONNECTOR.sandbox.create is create_sandbox
    assert CONNECTOR.sandbox.env == {"HEYLOYALTY_API_SECRET": "sandbox-hl-secret"}
    assert CONNECTOR.sandbox.config("http://127.0.0.1:8404") == {
        "platform": "heyloyalty",
        "base_url": "http://127.0.0.1:8404/loyalty/v1",
        "api_key": "sandbox-hl-key",
        "api_secret": "${HEYLOYALTY_API_SECRET}",
        "list_id": 4711,
        "tracking_base_url": "http://127.0.0.1:8404/tracking/api",
        "tracking_id": "sandbox-tracking",
    }
    [spec] = CONNECTOR.objects
    assert spec.name == "members" and spec.accepts == ("contact", "booking")
    assert dict(spec.default_policy) == {"member": "always", "purchase": "on_create"}


async def test_is_a_destination(harness: Harness) -> None:
    assert isinstance(harness.destination(), Destination)


async def test_check_passes_with_the_right_signature(harness: Harness) -> None:
    results = {r.name: r for r in await harness.destination().check()}
    assert all(r.ok for r in results.values()), results
    assert (await harness.stats())["writes"] == {}


async def test_check_names_missing_fields_and_a_missing_list(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(mapping={"fields": {"Shoe": "shoe.size"}})
    results = {r.name: r for r in await dest.check_options(opts)}
    assert not results["fields"].ok and "Shoe" in results["fields"].detail
    gone = {r.name: r for r in await harness.destination(list_id=999).check()}
    assert not gone["list"].ok and "List not found" in gone["list"].detail


async def test_wrong_secret_is_an_auth_error_and_writes_nothing(harness: Harness) -> None:
    dest = harness.destination(api_secret="not-the-secret")
    with pytest.raises(AuthError) as caught:
        await write(dest, DEFAULT, make_contact())
    assert caught.value.status == 401 and "heyloyalty" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)
    assert (await harness.stats())["writes"] == {}
    [signature, _] = await dest.check()
    assert not signature.ok and "api_secret" in signature.detail


async def test_upsert_on_email_creates_then_updates_the_same_member(harness: Harness) -> None:
    dest = harness.destination()
    [first] = await write(dest, DEFAULT, make_contact())
    [second] = await write(dest, DEFAULT, make_contact(first_name="Janet"))
    assert first.ok and first.dest_ids == second.dest_ids
    data = await harness.data()
    assert data["counts"]["members"] == 1
    member = member_by_email(data, "jane.doe@example.com")
    assert member["fields"]["firstname"] == "Janet" and member["fields"]["mobile"] == "12345678"
    assert member["status"]["status"] == "active" and member["pending_optin"] is False
    # Created active on both channels, the mobile channel is then turned off: the contact
    # granted e-mail only (issue 20.11). The second write is one upsert, no status change.
    assert member["status"]["email"] == "active" and member["status"]["mobile"] == "unsubscribed"
    key = "member:" + first.dest_ids["member"]
    assert (await harness.stats())["writes"] == {key: {"create": 1, "update": 2}}


async def test_upsert_on_mobile_matches_across_formats(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(match="mobile")
    [first] = await write(dest, opts, make_contact("1", mobile="+45 12 34 56 78"))
    [second] = await write(
        dest, opts, make_contact("2", mobile="12345678", email="other@example.com")
    )
    assert first.dest_ids == second.dest_ids
    data = await harness.data()
    assert data["counts"]["members"] == 1
    assert data["members"][0]["fields"]["email"] == "other@example.com"


async def test_import_type_create_never_updates(harness: Harness) -> None:
    dest = harness.destination()
    [made] = await write(dest, DEFAULT, make_contact())
    before = await harness.stats()
    opts = options(import_type="create")
    [again] = await write(dest, opts, make_contact(first_name="Changed"))
    assert again.ok and again.skipped == "exists; import type is create only"
    assert again.dest_ids == made.dest_ids
    assert member_writes(await harness.stats()) == member_writes(before)


async def test_import_type_update_never_creates(harness: Harness) -> None:
    dest = harness.destination()
    [absent] = await write(dest, options(import_type="update"), make_contact())
    assert absent.ok and absent.skipped and "update only" in absent.skipped
    assert (await harness.data())["counts"]["members"] == 0
    await write(dest, DEFAULT, make_contact())
    [updated] = await write(dest, options(import_type="update"), make_contact(first_name="X"))
    assert updated.ok and updated.skipped is None
    assert (
        member_by_email(await harness.data(), "jane.doe@example.com")["fields"]["firstname"] == "X"
    )


async def test_duplicate_identities_in_one_batch_are_written_in_turn(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(import_type="create")
    outcomes = await write(dest, opts, make_contact("1"), make_contact("2"))
    assert sorted(o.skipped or "" for o in outcomes) == ["", "exists; import type is create only"]
    assert (await harness.data())["counts"]["members"] == 1


async def test_unsubscribed_member_is_not_resubscribed_when_disallowed(harness: Harness) -> None:
    dest = harness.destination()
    await write(dest, DEFAULT, make_contact())
    changed = await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    assert changed["unsubscribed"] == ["jane.doe@example.com"]
    before = member_writes(await harness.stats())
    opts = options(resubscribe_unsubscribed=False)
    [outcome] = await write(dest, opts, make_contact(first_name="Again"))
    assert outcome.ok and outcome.skipped == "unsubscribed; not re-subscribed"
    assert member_writes(await harness.stats()) == before  # zero writes
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["status"] == "unsubscribed" and member["fields"]["firstname"] == "Jane"


async def test_a_member_left_unsubscribed_still_gets_the_sources_no(harness: Harness) -> None:
    """Not re-subscribed means no upsert, not that the contact's later "no" to SMS is lost:
    the withdrawal is written as a status change alone, and the member stays unsubscribed."""
    dest = harness.destination()
    await write(dest, DEFAULT, make_contact(sms_consent=ConsentState.GRANTED))
    await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["mobile"] == "active"
    before = (await harness.stats())["requests"]
    withdrawn = make_contact(first_name="Again", sms_consent=ConsentState.DENIED)
    [outcome] = await write(dest, options(resubscribe_unsubscribed=False), withdrawn)
    assert outcome.ok and outcome.skipped == "unsubscribed; not re-subscribed"
    after = (await harness.stats())["requests"]
    calls = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert "POST /loyalty/v1/lists/{list_id}/members/upsert" not in calls
    assert calls["PATCH /loyalty/v1/lists/{list_id}/members/{member_id}"] == 1
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["mobile"] == "unsubscribed"
    # A PATCH re-activates an unsubscribed member too: it carried back what was off.
    assert member["status"]["status"] == "unsubscribed"
    assert member["status"]["email"] == "unsubscribed"
    assert member["fields"]["firstname"] == "Jane"  # not updated


async def test_unsubscribed_member_is_resubscribed_when_allowed(harness: Harness) -> None:
    dest = harness.destination()
    await write(dest, DEFAULT, make_contact())
    await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    [outcome] = await write(dest, options(resubscribe_unsubscribed=True), make_contact())
    assert outcome.ok and outcome.skipped is None
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["status"] == "active" and member["status"]["email"] == "active"


async def test_a_resubscribed_member_stays_off_the_channel_the_source_says_no_to(
    harness: Harness,
) -> None:
    """Updating an unsubscribed member re-activates it (platforms.md 5.4). The look-up before
    the upsert showed its e-mail unsubscribed, and the source says no to e-mail too: after the
    upsert that channel must be turned off again, not taken as off already."""
    dest = harness.destination()
    await write(dest, DEFAULT, make_contact())
    await harness.admin("POST", "mutate", {"unsubscribe": ["jane.doe@example.com"]})
    contact = make_contact(email_consent=ConsentState.DENIED, sms_consent=ConsentState.GRANTED)
    [outcome] = await write(dest, options(resubscribe_unsubscribed=True), contact)
    assert outcome.ok and outcome.skipped is None
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["email"] == "unsubscribed"
    assert member["status"]["mobile"] == "active"


async def test_mapping_fills_cardnumber_and_remove_stops_sending(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(
        mapping={
            "fields": {"Cardnumber": "cards.Cardnumber", "reference": "id"},
            "remove": ["birthdate"],
        }
    )
    [outcome] = await write(dest, opts, make_contact("77"))
    assert outcome.ok
    fields = member_by_email(await harness.data(), "jane.doe@example.com")["fields"]
    assert fields["Cardnumber"] == "1234" and fields["reference"] == "77"
    assert "birthdate" not in fields


async def test_custom_separator_over_http(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(mapping={"separator": "/", "fields": {"Cardnumber": "cards/Cardnumber"}})
    await write(dest, opts, make_contact())
    fields = member_by_email(await harness.data(), "jane.doe@example.com")["fields"]
    assert fields["Cardnumber"] == "1234"


async def test_unknown_list_field_rejects_that_record_only(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(mapping={"fields": {"Shoe": "shoe.size"}})
    with_shoe = make_contact("1", attributes={"shoe": {"size": 42}})
    without = make_contact("2", email="other@example.com", attributes={})
    outcomes = {o.key: o for o in await write(dest, opts, with_shoe, without)}
    bad = outcomes[with_shoe.key]
    assert not bad.ok and bad.reason and "'Shoe'" in bad.reason and "shoe.size" in bad.reason
    assert outcomes[without.key].ok
    assert (await harness.data())["counts"]["members"] == 1


async def test_a_422_is_a_per_record_refusal(harness: Harness) -> None:
    dest = harness.destination()
    change = change_for(dest, make_contact(), DEFAULT)
    change.fields["member"]["birthdate"] = "03/02/1985"  # not Y-m-d
    [outcome] = await dest.write("members", [change], DEFAULT)
    assert not outcome.ok and outcome.reason and "birthdate" in outcome.reason


async def test_if_empty_fields_keep_what_the_list_has(harness: Harness) -> None:
    dest = harness.destination()
    await write(dest, DEFAULT, make_contact(first_name="Jane"))
    change = change_for(dest, make_contact(first_name="Other"), DEFAULT, "update")
    change = replace(change, if_empty=frozenset({"member.firstname"}))
    [outcome] = await dest.write("members", [change], DEFAULT)
    assert outcome.ok
    fields = member_by_email(await harness.data(), "jane.doe@example.com")["fields"]
    assert fields["firstname"] == "Jane"


async def test_optin_automations_and_webhooks_switches(harness: Harness) -> None:
    dest = harness.destination()
    opts = options(send_optin=True, trigger_automations=True, send_webhooks=True)
    await write(dest, opts, make_contact())
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["pending_optin"] is True and member["optin_mails"] == 1
    assert member["automations"] == 1 and member["webhooks"] == 1
    # The pending member is found again (search_temporary), not created twice.
    await write(dest, opts, make_contact())
    assert (await harness.data())["counts"]["members"] == 1


async def test_tracking_events_are_imported_once_per_order(harness: Harness) -> None:
    dest = harness.destination()
    orders = [make_order(str(n)) for n in (1, 2, 3)]
    changes = [change_for(dest, r, DEFAULT) for r in orders]
    first = await dest.write("members", changes, DEFAULT)
    assert all(o.ok for o in first) and first[0].dest_ids == {"purchase": "1"}
    # The engine re-sends the batch (e.g. a later batch failed): nothing is imported twice.
    again = await dest.write("members", changes, DEFAULT)
    assert all(o.ok for o in again)
    stats = await harness.stats()
    assert stats["requests"]["POST /tracking/api/transaction/import/{tracking_id}"] == 1
    assert {k: v for k, v in stats["writes"].items() if k.startswith("tracking:")} == {
        "tracking:1": {"create": 1},
        "tracking:2": {"create": 1},
        "tracking:3": {"create": 1},
    }
    rows = (await harness.data())["tracking"]
    assert len(rows) == 3 and {r["event_type"] for r in rows} == {"purchasedBasket"}
    # An update never re-sends a purchase, even with a policy that lets it through.
    update = replace(changes[0], action="update")
    [skipped] = await harness.destination().write("members", [update], DEFAULT)
    assert skipped.ok and skipped.skipped
    assert len((await harness.data())["tracking"]) == 3


async def test_a_refused_order_is_isolated_from_its_batch(harness: Harness) -> None:
    dest = harness.destination()
    changes = [change_for(dest, make_order(str(n)), DEFAULT) for n in range(1, 5)]
    changes[2].fields["purchase"]["created_at"] = "yesterday"
    outcomes = {o.key: o for o in await dest.write("members", changes, DEFAULT)}
    bad = outcomes[changes[2].key]
    assert not bad.ok and bad.reason and "created_at" in bad.reason
    assert sum(o.ok for o in outcomes.values()) == 3
    writes = (await harness.stats())["writes"]
    assert sorted(k for k in writes if k.startswith("tracking:")) == [
        "tracking:1",
        "tracking:2",
        "tracking:4",
    ]
    assert all(v == {"create": 1} for v in writes.values())


async def test_purchases_need_a_tracking_id(harness: Harness) -> None:
    dest = harness.destination(tracking_id=None)
    [outcome] = await write(dest, DEFAULT, make_order())
    assert not outcome.ok and outcome.reason and "tracking_id" in outcome.reason


async def test_cancelled_order_is_skipped_not_sent(harness: Harness) -> None:
    dest = harness.destination()
    record = make_order(cancelled=True)
    change = Change(key=record.key, action="create", record=record, fields={})
    [outcome] = await dest.write("members", [change], DEFAULT)
    assert outcome.ok and outcome.skipped and "cancelled" in outcome.skipped
    assert (await harness.stats())["total_requests"] == 0


async def test_contacts_and_orders_in_one_batch(harness: Harness) -> None:
    dest = harness.destination()
    outcomes = await write(dest, DEFAULT, make_contact(), make_order())
    assert [o.ok for o in outcomes] == [True, True]
    data = await harness.data()
    assert data["counts"] == {"members": 1, "tracking_rows": 1, "tracked_orders": 1}


async def test_429_is_retried(harness: Harness) -> None:
    await harness.admin("POST", "faults", {"rate_429": 0.5, "retry_after_s": 2, "seed": 3})
    dest = harness.destination()
    contacts = [make_contact(str(n), email=f"c{n}@example.com") for n in range(6)]
    outcomes = await write(dest, DEFAULT, *contacts, make_order())
    assert all(o.ok for o in outcomes)
    stats = await harness.stats()
    assert stats["faults"].get("429", 0) >= 1 and 2.0 in harness.sleeps
    assert (await harness.data())["counts"]["members"] == 6


async def test_a_cut_short_import_answer_is_not_sent_again(harness: Harness) -> None:
    # The import stored the rows but its answer arrives broken: asking again would double them.
    await harness.admin("POST", "faults", {"malformed_rate": 1.0})
    dest = harness.destination()
    outcomes = await write(dest, DEFAULT, make_order("1"), make_order("2"))
    assert all(o.ok for o in outcomes)
    writes = (await harness.stats())["writes"]
    assert writes == {"tracking:1": {"create": 1}, "tracking:2": {"create": 1}}


async def test_the_upsert_sends_list_fields_only_and_a_withdrawal_is_a_status_patch(
    harness: Harness,
) -> None:
    """Issue 20.11: ``status`` inside the upsert's member is not documented (5.4); a server
    that refuses it refused every member. A withdrawal goes by PATCH of the member's status."""
    dest = harness.destination()
    [first] = await write(dest, DEFAULT, make_contact(sms_consent=ConsentState.GRANTED))
    assert first.ok, first.reason
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["email"] == "active" and member["status"]["mobile"] == "active"
    requests = (await harness.stats())["requests"]
    assert not any("PATCH" in r for r in requests), "both channels granted: nothing to turn off"

    [withdrawn] = await write(
        dest, DEFAULT, make_contact(email_consent=ConsentState.DENIED), action="update"
    )
    assert withdrawn.ok, withdrawn.reason
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["email"] == "unsubscribed"
    assert member["status"]["mobile"] == "active", "an unknown SMS consent is left alone"
    requests = (await harness.stats())["requests"]
    assert sum(n for r, n in requests.items() if r.startswith("PATCH")) == 1


async def test_an_sms_only_consent_never_becomes_an_active_email(harness: Harness) -> None:
    dest = harness.destination()
    record = make_contact(email_consent=ConsentState.UNKNOWN, sms_consent=ConsentState.GRANTED)
    [outcome] = await write(dest, options(match="mobile"), record)
    assert outcome.ok, outcome.reason
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["mobile"] == "active"
    assert member["status"]["email"] != "active"


def _members_lookup(harness: Harness, answer: Any) -> None:
    """Make the sandbox answer every multi-value (``logic=or``) member look-up with
    ``answer(params)``, as a server that does not honour ``logic=or`` would."""
    inner = harness.transport

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.params.get("logic") == "or":
            return httpx.Response(200, json=answer(request.url.params))
        return await inner.handle_async_request(request)

    harness.ctx.mount(BASE, httpx.MockTransport(handle))


async def test_an_empty_answer_to_the_or_lookup_never_resubscribes(harness: Harness) -> None:
    """Issue 20.13: the guard read "no member" from an empty multi-value answer, and the
    upserts re-activated 4 of 4 unsubscribed members."""
    emails = [f"guest{i}@example.com" for i in range(4)]
    records = [make_contact(str(i), email=e, mobile=None) for i, e in enumerate(emails)]
    await write(harness.destination(), DEFAULT, *records)
    await harness.admin("POST", "mutate", {"unsubscribe": emails})
    _members_lookup(harness, lambda params: {"members": []})
    opts = options(resubscribe_unsubscribed=False)
    outcomes = await write(harness.destination(), opts, *records, action="update")
    assert [o.skipped for o in outcomes] == ["unsubscribed; not re-subscribed"] * 4
    data = await harness.data()
    assert [member_by_email(data, e)["status"]["status"] for e in emails] == ["unsubscribed"] * 4


async def test_a_lookup_answer_that_ignores_the_filter_stops_the_write(harness: Harness) -> None:
    """Members that match none of the values asked for: the filter was not applied, so the
    answer cannot tell who unsubscribed; the write stops rather than guess."""
    records = [make_contact(str(i), email=f"guest{i}@example.com") for i in range(2)]
    _members_lookup(harness, lambda params: {"members": [{"id": "x", "email": "other@x.dk"}]})
    with pytest.raises(FatalError, match="filter was not applied"):
        await write(harness.destination(), options(resubscribe_unsubscribed=False), *records)


async def test_a_404_from_the_tracking_host_leaves_the_members_written(harness: Harness) -> None:
    """Issue 20.14: a wrong tracking_id once failed the whole write, members included."""
    dest = harness.destination(tracking_id="no-such-integration")
    contact, order = make_contact(), make_order()
    outcomes = {o.key: o for o in await write(dest, DEFAULT, contact, order)}
    assert outcomes[contact.key].ok, outcomes[contact.key].reason
    refused = outcomes[order.key]
    assert not refused.ok and refused.reason is not None
    assert "HTTP 404" in refused.reason and "tracking_id" in refused.reason
    assert member_by_email(await harness.data(), "jane.doe@example.com")


async def test_check_names_a_missing_api_not_the_signature(harness: Harness) -> None:
    dest = harness.destination(base_url=BASE + "/not/the/api")
    results = {r.name: r for r in await dest.check()}
    assert "signature" not in results
    assert not results["api"].ok and "404" in results["api"].detail
    assert "base_url" in results["api"].detail


async def test_a_member_whose_create_answer_was_lost_is_still_subscribed_as_granted(
    harness: Harness,
) -> None:
    """Found by the reliability suite: the upsert creates the member (active on both
    channels), its answer is cut off, the retry's upsert says "update", and the SMS channel the
    contact never granted stayed active. The look-up before a first write tells them apart."""
    await harness.admin(
        "POST", "faults", {"malformed_rate": 0.5, "only_methods": ["POST"], "seed": 1}
    )  # the first POST's answer is cut in half, the second's is whole
    [outcome] = await write(harness.destination(), DEFAULT, make_contact())
    assert outcome.ok
    assert (await harness.stats())["faults"] == {"malformed": 1}
    member = member_by_email(await harness.data(), "jane.doe@example.com")
    assert member["status"]["email"] == "active"
    assert member["status"]["mobile"] == "unsubscribed"  # as for a member created at once
