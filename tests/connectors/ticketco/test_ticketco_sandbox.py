"""The TicketCo sandbox behaves like platforms.md section 1 says TicketCo does."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

import httpx
import pytest

from ticketbridge.connectors.registry import get
from ticketbridge.connectors.ticketco import CONNECTOR
from ticketbridge.connectors.ticketco.sandbox import (
    EVENTS_ONLY_TOKEN,
    SANDBOX_TOKEN,
    SANDBOX_VENUES,
    create_sandbox,
)
from ticketbridge.model import normalize_email, normalize_mobile

from .support import ORIGIN, TODAY, Harness

ROUTES = ["events", "events/{id}", "events/{id}/status", "item_grosses", "customers"]


async def test_registered_with_sandbox_settings() -> None:
    assert get("ticketco") is CONNECTOR
    assert CONNECTOR.sandbox is not None
    # The registered factory (named lazily, see connectors.base.lazy_sandbox) makes this sandbox.
    made = CONNECTOR.sandbox.create(seed=7, records=3, today=None)
    assert made.platform == "ticketco"
    assert made.store.dump() == create_sandbox(seed=7, records=3).store.dump()
    assert CONNECTOR.sandbox.env == {"TICKETCO_TOKEN": SANDBOX_TOKEN}
    assert CONNECTOR.sandbox.config("http://127.0.0.1:8401") == {
        "platform": "ticketco",
        "base_url": "http://127.0.0.1:8401/api/public/v1",
        "token": "${TICKETCO_TOKEN}",
    }
    assert [s.name for s in CONNECTOR.streams] == ["bookings", "tickets"]


@pytest.mark.parametrize("token", [None, "", "wrong"])
async def test_every_route_needs_the_token(harness: Harness, token: str | None) -> None:
    event_id = (await harness.get("events"))["events"][0]["id"]
    for route in ROUTES:
        params = {} if token is None else {"token": token}
        response = await harness.raw.get(
            f"/api/public/v1/{route.format(id=event_id)}", params=params
        )
        assert response.status_code == 401, route
        assert response.json() == {"error": "Unauthorized"}


async def test_token_scoped_to_events_cannot_read_item_grosses(harness: Harness) -> None:
    params = {"token": EVENTS_ONLY_TOKEN}
    assert (await harness.raw.get("/api/public/v1/events", params=params)).status_code == 200
    refused = await harness.raw.get("/api/public/v1/item_grosses", params=params)
    assert refused.status_code == 403


async def test_pages_from_one_until_empty_without_totals(harness: Harness) -> None:
    first = await harness.get("events", page=1)
    assert list(first) == ["events"]  # no total, per_page or next link
    assert len(first["events"]) == 7
    events = await harness.events()
    assert len(events) == len(harness.sandbox.store.dump()["events"])
    assert len({e["id"] for e in events}) == len(events)
    beyond = await harness.get("events", page=len(events) // 7 + 2)
    assert beyond == {"events": []}
    assert (await harness.get("customers", page=1))["customers"]


async def test_event_object_status_and_unknown_ids(harness: Harness) -> None:
    event = (await harness.get("events"))["events"][0]
    bare = await harness.get(f"events/{event['id']}")
    assert bare == event  # a bare object, no wrapper
    assert (await harness.get(f"events/{event['id']}/status")) == {"status": event["status"]}
    for path in ("events/999", "events/999/status", "events/abc"):
        response = await harness.raw.get(f"/api/public/v1/{path}", params={"token": SANDBOX_TOKEN})
        assert response.status_code == 404
    response = await harness.raw.get(
        "/api/public/v1/item_grosses", params={"token": SANDBOX_TOKEN, "event_id": 999}
    )
    assert response.status_code == 404


async def test_events_spread_over_four_months_with_offsets_and_tags(harness: Harness) -> None:
    events = await harness.events()
    starts = [datetime.fromisoformat(e["start_at"]) for e in events]
    assert all(s.utcoffset() is not None for s in starts)
    days = {(s.date() - TODAY.date()).days for s in starts}
    assert min(days) == -60 and max(days) == 60
    assert {" ".join(e["location_name"].split()) for e in events} == set(SANDBOX_VENUES)
    assert {t for e in events for t in e["tags"]} == {
        "Golf",
        "Bowling",
        "Concert",
        "Comedy",
        "Family",
    }
    assert all(e["end_at"] > e["start_at"] for e in events)


async def test_event_filters(harness: Harness) -> None:
    golf = await harness.all_pages("events", "events", tags="golf,Comedy")
    assert golf and all({"Golf", "Comedy"} & set(e["tags"]) for e in golf)
    bowl = await harness.all_pages("events", "events", location="bowl arena")
    assert bowl and all("Bowl Arena" in e["location_name"] for e in bowl)
    ended = await harness.all_pages("events", "events", status="ended")
    assert ended and all(e["status"] == "ended" for e in ended)
    day = TODAY.date() + timedelta(days=3)
    loose = f"{day.year}-{day.month}-{day.day}"  # "2017-1-1" style, as the PHP client shows
    on_day = await harness.all_pages("events", "events", start_at=loose)
    assert on_day and all(e["start_at"].startswith(day.isoformat()) for e in on_day)


async def test_pii_false_hides_personal_data(harness: Harness) -> None:
    event = next(e for e in await harness.events() if e["total_sold"])
    with_pii = (await harness.get("item_grosses", event_id=event["id"]))["item_grosses"]
    without = (await harness.get("item_grosses", event_id=event["id"], pii="false"))["item_grosses"]
    assert "buyer_email" in with_pii[0] and "holder_first_name" in with_pii[0]
    assert not any(
        k.startswith(("buyer_first", "buyer_last", "buyer_email", "buyer_phone", "holder_"))
        for item in without
        for k in item
    )
    assert [i["ref_number"] for i in with_pii] == [i["ref_number"] for i in without]


async def test_same_seed_gives_byte_identical_responses() -> None:
    async def bodies(seed: int) -> list[bytes]:
        sb = create_sandbox(seed=seed, records=120, today=TODAY, page_size=50)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sb.app), base_url=ORIGIN
        ) as client:
            out = []
            event_id = sb.store.dump()["events"][70]["id"]
            for path, params in [
                ("events", {"page": 2}),
                ("item_grosses", {"page": 1}),
                ("item_grosses", {"event_id": event_id}),
                ("customers", {"page": 3}),
            ]:
                r = await client.get(
                    f"/api/public/v1/{path}", params={"token": SANDBOX_TOKEN, **params}
                )
                out.append(r.content)
            return out

    first, second, other = await bodies(5), await bodies(5), await bodies(6)
    assert first == second
    assert first != other


def test_realistic_shares_of_bad_and_missing_data() -> None:
    store = create_sandbox(seed=3, records=4000, today=TODAY).store
    items = store.item_page(store.events, 1, 100_000, True)  # type: ignore[attr-defined]
    by_ref: dict[str, list[dict[str, object]]] = {}
    for item in items:
        by_ref.setdefault(str(item["ref_number"]), []).append(item)
    assert len(by_ref) == 4000
    counts: Counter[str] = Counter()
    for group in by_ref.values():
        first = group[0]
        counts[f"items={len(group)}"] += 1
        email, phone = first.get("buyer_email"), first.get("buyer_phone")
        email_ok = _ok(normalize_email, email)
        phone_ok = _ok(lambda v: normalize_mobile(v, "NO"), phone)
        counts["no_phone"] += phone is None
        counts["bad_email"] += email is not None and not email_ok
        counts["bad_phone"] += phone is not None and not phone_ok
        counts["neither"] += not email_ok and not phone_ok
        counts[f"opt_in={first.get('buyer_email_opt_in', 'absent')}"] += 1
        counts["cancelled"] += all(i["status"] != "sold" for i in group)
        event = store.event_by_id(str(first["event_id"]))  # type: ignore[attr-defined]
        past = event.end <= store.now  # type: ignore[attr-defined]
        counts["past"] += past
        counts["past_checked_in"] += past and any(i["checked_in_at"] for i in group)
    share = {k: v / 4000 for k, v in counts.items()}
    assert 0.15 < share["no_phone"] < 0.27
    assert 0.02 < share["bad_email"] < 0.06
    assert 0.02 < share["bad_phone"] < 0.06
    assert 0.01 < share["neither"] < 0.04
    assert 0.03 < share["cancelled"] < 0.08
    assert min(share["opt_in=True"], share["opt_in=False"], share["opt_in=absent"]) > 0.1
    assert set(k for k in counts if k.startswith("items=")) == {f"items={n}" for n in range(1, 7)}
    assert counts["past_checked_in"] / counts["past"] > 0.6


def _ok(fn: object, value: object) -> bool:
    if value is None:
        return False
    try:
        fn(value)  # type: ignore[operator]
    except ValueError:
        return False
    return True


async def test_mutate_then_reset_restores_the_seeded_state(harness: Harness) -> None:
    before = [await harness.get("item_grosses", page=p) for p in (1, 2, 30)]
    result = await harness.admin(
        "mutate",
        {"share": 0.2, "cancel_share": 0.1, "no_shows": True, "opt_in_flip_share": 0.2, "seed": 9},
    )
    assert set(result) >= {"changed", "cancelled", "no_show", "opt_in_flipped"}
    assert result["changed"] and result["cancelled"] and result["opt_in_flipped"]
    assert not set(result["changed"]) & set(result["cancelled"])
    again = await harness.admin("mutate", {"share": 0, "cancel_share": 0, "seed": 9})
    assert again["no_show"] == []  # yesterday's events ended once, not twice
    await harness.admin("reset", {})
    assert [await harness.get("item_grosses", page=p) for p in (1, 2, 30)] == before
    data = await harness.admin("data")
    assert data["counts"]["bookings"] == 1200 and data["venues"] == SANDBOX_VENUES


def test_hundred_thousand_bookings_build_quickly() -> None:
    started = time.perf_counter()
    sandbox = create_sandbox(seed=1, records=100_000, today=TODAY)
    assert time.perf_counter() - started < 5
    assert sandbox.store.dump()["counts"]["bookings"] == 100_000
