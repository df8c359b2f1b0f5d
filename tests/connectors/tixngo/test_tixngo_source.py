"""The TIXNGO source against its sandbox over real HTTP (ASGI transport), and against a
second, independent feed (a plain handler with keys of other shapes) for what the sandbox
does not exercise: keys are opaque, and the feed may end in more than one way."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from ticketbridge.connectors.base import Page, ReadRequest, StreamOptions
from ticketbridge.connectors.tixngo import TixngoConfig, create_sandbox
from ticketbridge.errors import AuthError, FatalError, MappingError
from ticketbridge.model import Person, Ticket, normalize_email

from .support import TODAY, Harness, last_position, read_pages, records, tickets


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


def tickets_of(pages: list[Page]) -> list[Ticket]:
    """Every record's ticket, in order (repeats kept)."""
    out = []
    for record in records(pages):
        assert isinstance(record.data, Ticket)
        out.append(record.data)
    return out


def person(raw: dict[str, Any] | None) -> Person | None:
    if raw is None:
        return None
    return Person(
        external_id=raw.get("id"),
        email=normalize_email(raw["email"]),
        first_name=raw["firstName"],
        last_name=raw["lastName"],
    )


def expected(raw: dict[str, Any], mode: str = "lifecycle") -> Ticket:
    """The canonical ticket for a raw update, built from the sandbox's own data."""
    return Ticket(
        number=raw["ticketId"],
        mobile_status=raw["status"],
        mobile_status_mode=mode,
        owner=person(raw["owner"]),
        holder=person(raw["holder"]),
        assignee=person(raw["assignee"]),
        updated_at=datetime.fromisoformat(raw["updatedAt"]),
        event=None,  # compared separately
        attributes={"previous_status": raw["previousStatus"]},
    )


# --- the diff feed, as the engine reads it ------------------------------------------------


async def test_first_read_pages_by_1000_and_maps_every_ticket_as_served(h: Harness) -> None:
    truth = await h.tickets()
    assert len(truth) == 2500
    pages = await read_pages(h.source())
    got = tickets(pages)
    assert set(got) == set(truth)
    for number, ticket in got.items():
        assert ticket.model_copy(update={"event": None}) == expected(truth[number]), number
        raw_event = truth[number]["event"]
        assert ticket.event is not None and ticket.event.external_id == raw_event["id"]
        assert ticket.event.name == raw_event["name"]
        assert ticket.event.starts_at == datetime.fromisoformat(raw_event["startTime"])
        assert ticket.event.venue is not None
        assert ticket.event.venue.name == raw_event["address"]["site"]
    # ceil(N / 1000) pages, then one empty answer with the same key: "no news".
    assert await h.diff_calls() == math.ceil(2500 / 1000) + 1
    assert [len(p.records) for p in pages] == [1000, 1000, 500]
    assert all(p.position is not None for p in pages)
    statuses = {t.mobile_status for t in got.values()}
    assert {"INJECTED", "DOWNLOADED", "ASSIGNED", "TRANSFERRED", "CONTROLLED"} <= statuses
    # Both sides of a transfer and of an assignment are there.
    assert any(t.assignee is not None and t.holder == t.assignee for t in got.values())
    assert any(t.owner is None for t in got.values())  # injected, not yet downloaded
    # Addresses are normalised as everywhere else (the domain in lower case).
    shouted = [
        r
        for r in truth.values()
        if r["owner"] and (domain := r["owner"]["email"].split("@")[1]) != domain.lower()
    ]
    assert shouted, "the sandbox serves some addresses with an upper-case domain"
    for raw in shouted:
        owner = got[raw["ticketId"]].owner
        assert owner is not None and owner.email == normalize_email(raw["owner"]["email"])


async def test_rerun_from_the_stored_key_makes_one_call_and_reads_nothing(h: Harness) -> None:
    first = await read_pages(h.source())
    calls = await h.diff_calls()
    again = await read_pages(h.source(), position=last_position(first))
    assert again == []
    assert await h.diff_calls() == calls + 1


async def test_after_mutate_exactly_the_changed_tickets_are_read(h: Harness) -> None:
    first = await read_pages(h.source())
    changed = await h.admin("POST", "mutate", {"share": 0.1, "seed": 3})
    assert changed["changed"] and changed["transferred"]
    pages = await read_pages(h.source(), position=last_position(first))
    got = tickets(pages)
    assert sorted(got) == sorted(changed["changed"])
    truth = await h.tickets()
    for number, ticket in got.items():
        assert ticket.model_copy(update={"event": None}) == expected(truth[number])
    for number in changed["transferred"]:
        ticket = got[number]
        assert ticket.mobile_status == "TRANSFERRED"
        assert ticket.owner is not None and ticket.holder is not None
        assert ticket.owner.email == ticket.holder.email, "the new owner is the holder"
        assert ticket.attributes["previous_status"] == "PENDING_TRANSFER"


async def test_resuming_after_any_page_gives_the_rest_exactly_once(h: Harness) -> None:
    pages = await read_pages(h.source(), page_size=300)
    assert len(pages) == 9
    for at in (0, 4, 7):
        rest = await read_pages(h.source(), position=pages[at].position, page_size=300)
        assert [r.key for r in records(rest)] == [r.key for r in records(pages[at + 1 :])]


async def test_a_ticket_changed_while_the_feed_is_read_is_read_again_later(h: Harness) -> None:
    source = h.source()
    read = source.read(
        ReadRequest(stream="ticket_updates", options=StreamOptions(), page_size=1000)
    )
    first = await anext(read)
    early = first.records[0].data
    assert isinstance(early, Ticket)
    await h.admin(
        "POST", "mutate", {"op": "step", "ticket_id": early.number, "status": "DELETION_PENDING"}
    )
    rest = [page async for page in read]
    again = [t for t in tickets_of(rest) if t.number == early.number]
    assert [t.mobile_status for t in again] == ["DELETION_PENDING"]


async def test_a_key_from_another_checkpoint_shape_is_a_clear_error(h: Harness) -> None:
    with pytest.raises(FatalError, match="paginationKey"):
        await read_pages(h.source(), position={"paginationKey": {"page": 2}})


# --- statuses and bad records ---------------------------------------------------------------


async def test_an_unknown_status_is_a_failure_with_its_reason_not_a_crash(h: Harness) -> None:
    first = await read_pages(h.source())
    await h.admin("POST", "mutate", {"op": "edit", "ticket_id": "S360-000010", "status": "LOST"})
    await h.admin(
        "POST", "mutate", {"op": "edit", "ticket_id": "S360-000011", "status": "RECEIVED"}
    )
    await h.admin("POST", "mutate", {"op": "step", "ticket_id": "S360-000012", "status": "DELETED"})
    pages = await read_pages(h.source(), position=last_position(first))
    failures = {f.key: f for p in pages for f in p.failures}
    assert set(failures) == {"ticket:tixngo:S360-000010", "ticket:tixngo:S360-000011"}
    assert failures["ticket:tixngo:S360-000010"].reason == (
        "status: 'LOST' is not a TIXNGO lifecycle-mode status"
    )
    assert (
        "history-mode status: is status_mode right?" in failures["ticket:tixngo:S360-000011"].reason
    )
    assert failures["ticket:tixngo:S360-000010"].raw["status"] == "LOST"
    assert [r.key for r in records(pages)] == ["ticket:tixngo:S360-000012"]
    # The stored payload is mapped again on retry, and fails again with the same reason.
    source = h.source()
    with pytest.raises(MappingError, match="'LOST' is not a TIXNGO lifecycle-mode status"):
        source.remap("ticket_updates", failures["ticket:tixngo:S360-000010"].raw, StreamOptions())
    fixed = {**failures["ticket:tixngo:S360-000010"].raw, "status": "CONTROLLED"}
    (remapped,) = tickets_of([Page([source.remap("ticket_updates", fixed, StreamOptions())])])
    assert remapped.mobile_status == "CONTROLLED"


async def test_history_mode_reads_the_legacy_list_and_lifecycle_refuses_it() -> None:
    h = Harness(create_sandbox(seed=7, records=200, today=TODAY, mode="history"))
    try:
        history = await read_pages(h.source(status_mode="history"))
        got = tickets(history)
        assert len(got) == 200 and not [f for p in history for f in p.failures]
        assert {t.mobile_status_mode for t in got.values()} == {"history"}
        assert {t.mobile_status for t in got.values()} <= {
            "INJECTED",
            "RECEIVED",
            "ACTIVATED",
            "TRANSFER_PENDING",
            "TRANSFERRED",
            "CONTROLLED",
            "DELETION_PENDING",
            "DELETED",
        }
        assert "RECEIVED" in {t.mobile_status for t in got.values()}
        wrong = await read_pages(h.source())
        reasons = {f.reason for p in wrong for f in p.failures}
        assert (
            "status: 'RECEIVED' is not a TIXNGO lifecycle-mode status (it is a "
            "history-mode status: is status_mode right?)" in reasons
        )
        checked = await h.source(status_mode="history").check()
        assert [(c.name, c.ok) for c in checked] == [("credentials", True), ("status_mode", True)]
    finally:
        await h.aclose()


# --- an independent feed: keys of any shape, other endings -------------------------------


class Feed:
    """A diff endpoint written from platforms.md 6.4 alone: ``pages[key]`` is the answer to
    that key (``None``: the first call). Records every key it was sent."""

    def __init__(self, pages: dict[Any, Any]) -> None:
        self.pages = pages
        self.sent: list[str | None] = []
        self.limits: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        key = request.url.params.get("paginationKey")
        self.sent.append(key)
        self.limits.append(request.url.params["limit"])
        return httpx.Response(200, json=self.pages[key])


def update(n: int, status: str = "DOWNLOADED") -> dict[str, Any]:
    return {
        "ticketId": f"T{n}",
        "status": status,
        "updatedAt": "2026-05-01T10:00:00+02:00",
        "owner": {"id": f"u{n}", "email": f"o{n}@example.org", "firstName": "O", "lastName": "N"},
        "holder": {"email": f"h{n}@example.org", "firstName": "H", "lastName": "D"},
    }


def on(feed: Feed) -> httpx.MockTransport:
    return httpx.MockTransport(feed.handler)


async def test_keys_are_sent_back_exactly_as_given_whatever_they_look_like(h: Harness) -> None:
    odd = "a b/c?d=e&f+g%20=="  # spaces, reserved characters, an escape: all sent as given
    feed = Feed(
        {
            None: {"tickets": [update(1), update(2)], "nextPageKey": odd},
            odd: {"tickets": [update(3)], "nextPageKey": 41},
            "41": {"tickets": [], "nextPageKey": 41},
        }
    )
    pages = await read_pages(h.source(transport=on(feed)), page_size=2)
    assert feed.sent == [None, odd, "41"]
    assert feed.limits == ["2", "2", "2"]
    assert [p.position for p in pages] == [{"paginationKey": odd}, {"paginationKey": 41}]
    resumed = Feed({"41": {"tickets": [], "nextPageKey": 41}})
    assert await read_pages(h.source(transport=on(resumed)), position={"paginationKey": 41}) == []
    assert resumed.sent == ["41"]


async def test_no_next_key_ends_the_read_and_keeps_the_last_key(h: Harness) -> None:
    feed = Feed(
        {
            None: {"tickets": [update(1)], "nextPageKey": "k1"},
            "k1": {"tickets": [update(2)]},  # the reporting endpoint's end: no key
        }
    )
    pages = await read_pages(h.source(transport=on(feed)))
    assert feed.sent == [None, "k1"]
    assert [p.position for p in pages] == [{"paginationKey": "k1"}, None]
    assert [r.key for r in records(pages)] == ["ticket:tixngo:T1", "ticket:tixngo:T2"]
    nothing = Feed({None: {"tickets": [], "nextPageKey": None}})
    assert await read_pages(h.source(transport=on(nothing))) == []


async def test_an_empty_page_with_a_new_key_moves_on(h: Harness) -> None:
    feed = Feed(
        {
            "k0": {"tickets": [], "nextPageKey": "k1"},
            "k1": {"tickets": [update(1)], "nextPageKey": "k2"},
            "k2": {"tickets": [], "nextPageKey": "k2"},
        }
    )
    pages = await read_pages(h.source(transport=on(feed)), position={"paginationKey": "k0"})
    assert feed.sent == ["k0", "k1", "k2"]
    assert [p.position for p in pages] == [{"paginationKey": "k1"}, {"paginationKey": "k2"}]


async def test_a_ticket_twice_in_one_page_is_read_once_as_it_is_last(h: Harness) -> None:
    feed = Feed(
        {
            None: {
                "tickets": [update(1, "PENDING_TRANSFER"), update(2), update(1, "TRANSFERRED")],
                "nextPageKey": "k1",
            },
            "k1": {"tickets": [], "nextPageKey": "k1"},
        }
    )
    got = tickets_of(await read_pages(h.source(transport=on(feed))))
    assert [(t.number, t.mobile_status) for t in got] == [
        ("T2", "DOWNLOADED"),
        ("T1", "TRANSFERRED"),
    ]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ([], "expected an object with 'tickets', got a list"),
        ({"items": [], "nextPageKey": "x"}, "expected an object with 'tickets'"),
        ({"tickets": None, "nextPageKey": "x"}, "expected a list under 'tickets', got null"),
        ({"tickets": ["T1"], "nextPageKey": "x"}, "an entry of 'tickets' is a string"),
        ({"tickets": [], "nextPageKey": {"k": 1}}, "'nextPageKey' is an object"),
        (None, "got null"),
    ],
)
async def test_an_answer_of_another_shape_fails_the_read_naming_the_path(
    h: Harness, body: Any, why: str
) -> None:
    feed = Feed({None: body})
    with pytest.raises(FatalError) as raised:
        await read_pages(h.source(transport=on(feed)))
    assert "GET /organizer/tickets/diff" in str(raised.value)
    assert why in str(raised.value)


async def test_bad_records_are_failures_naming_the_field(h: Harness) -> None:
    broken_email = update(2)
    broken_email["owner"]["email"] = "not an address"
    no_id = update(3)
    del no_id["ticketId"]
    bad_time = {**update(4), "updatedAt": "yesterday"}
    bad_owner = {**update(5), "owner": "u5"}
    feed = Feed(
        {
            None: {
                "tickets": [update(1), broken_email, no_id, bad_time, bad_owner],
                "nextPageKey": "k1",
            },
            "k1": {"tickets": [], "nextPageKey": "k1"},
        }
    )
    pages = await read_pages(h.source(transport=on(feed)))
    assert [r.key for r in records(pages)] == ["ticket:tixngo:T1"]
    reasons = {f.key: f.reason for p in pages for f in p.failures}
    assert reasons["ticket:tixngo:T2"].startswith("owner.email: invalid email 'not an address'")
    assert reasons["ticket:tixngo:T4"] == "updatedAt: not an RFC 3339 time: 'yesterday'"
    assert reasons["ticket:tixngo:T5"].startswith("owner: ")
    (no_id_key,) = [k for k in reasons if k.startswith("ticket:tixngo:?")]
    assert reasons[no_id_key] == "ticketId: missing"
    again = await read_pages(h.source(transport=on(feed)))
    assert no_id_key in {f.key for p in again for f in p.failures}, "the same key every read"


# --- credentials -----------------------------------------------------------------------------


async def test_wrong_api_key_is_an_auth_error_without_the_key(h: Harness) -> None:
    source = h.source(api_key=SecretStr("wrong-key-4711"))
    with pytest.raises(AuthError) as raised:
        await read_pages(source)
    assert "tixngo" in str(raised.value) and "wrong-key-4711" not in str(raised.value)
    results = await h.source(api_key=SecretStr("wrong-key-4711")).check()
    assert [(r.name, r.ok) for r in results] == [("credentials", False)]
    assert "HTTP 401" in results[0].detail and "wrong-key-4711" not in results[0].detail
    ok = await h.source().check()
    assert [(r.name, r.ok) for r in ok] == [("credentials", True), ("status_mode", True)]


async def test_basic_auth_and_other_header_names_are_settings() -> None:
    sandbox = create_sandbox(
        seed=7, records=20, today=TODAY, email_header="X-Tixngo-User", api_key_header="X-Key"
    )
    h = Harness(sandbox)
    try:
        with pytest.raises(AuthError):
            await read_pages(h.source())  # the default names are not these
        named = await read_pages(h.source(email_header="X-Tixngo-User", api_key_header="X-Key"))
        basic = await read_pages(h.source(auth="basic"))
        assert len(records(named)) == len(records(basic)) == 20
    finally:
        await h.aclose()


def seen_headers(calls: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"tickets": [], "nextPageKey": None})

    return handle


async def test_the_key_is_never_in_a_url(h: Harness) -> None:
    calls: list[httpx.Request] = []
    await read_pages(h.source(transport=httpx.MockTransport(seen_headers(calls))))
    await read_pages(h.source(auth="basic", transport=httpx.MockTransport(seen_headers(calls))))
    assert calls[0].headers["X-Api-Key"] == "sandbox-tixngo-api-key"
    assert calls[0].headers["X-Organizer-Email"] == "admin@fc-sandbox.example"
    assert calls[1].headers["Authorization"].startswith("Basic ")
    assert all("sandbox-tixngo-api-key" not in str(c.url) for c in calls)


def test_config_refuses_a_bad_organizer_email_and_an_unknown_mode() -> None:
    with pytest.raises(ValidationError, match="organizer_email"):
        TixngoConfig(base_url="http://x", organizer_email="admin@", api_key=SecretStr("k"))
    with pytest.raises(ValidationError, match="status_mode"):
        TixngoConfig(
            base_url="http://x",
            organizer_email="a@b.ch",
            api_key=SecretStr("k"),
            status_mode="legacy",
        )
    cfg = TixngoConfig(
        base_url="HTTP://Host/", organizer_email="Admin@Club.CH", api_key=SecretStr("secret")
    )
    assert cfg.lease_scope() == "tixngo:http://host:admin@club.ch"
    assert "secret" not in cfg.lease_scope()


# --- retries -----------------------------------------------------------------------------------


async def test_5xx_and_429_are_retried_and_the_read_is_complete(h: Harness) -> None:
    clean = [r.key for r in records(await read_pages(h.source()))]
    await h.admin(
        "POST", "faults", {"rate_5xx": 0.3, "rate_429": 0.3, "retry_after_s": 2, "seed": 3}
    )
    got = [r.key for r in records(await read_pages(h.source()))]
    assert got == clean
    faults = (await h.stats())["faults"]
    assert faults.get("5xx") and faults.get("429"), faults
    assert 2 in h.sleeps or any(s >= 2 for s in h.sleeps), "Retry-After honoured"
