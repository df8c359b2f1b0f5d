"""Races over real HTTP (uvicorn on loopback), on SQLite and on PostgreSQL.

ACME answers slowly here (50 ms a call), so without the locks both racers would read the same
``soldQuantity`` and both would win, and both booking retries would create an order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ticketbridge.sandbox import Faults

from .support import CUSTOMER, KEY, TOUR, Harness, served

pytestmark = pytest.mark.e2e


@pytest.fixture
async def slow_harness(state_url: str) -> AsyncIterator[Harness]:
    h = Harness(state_url)
    h.sandbox.faults = Faults(latency_ms=50, slow_rate=1.0)
    yield h
    await h.aclose()


async def _open_slot(tiqets: httpx.AsyncClient) -> str:
    day = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    found = (
        await tiqets.get(f"/v2/products/{TOUR}/availability", params={"start": day, "end": day})
    ).json()
    slot: str = next(k for k, v in found.items() if v["available_tickets"] >= 3)
    return slot


def _reservation(slot: str, variant: str) -> dict[str, Any]:
    return {
        "datetime": slot,
        "tickets": [{"variant_id": variant, "quantity": 1}],
        "customer": CUSTOMER,
    }


async def test_two_reservations_racing_for_the_last_ticket_one_wins(
    slow_harness: Harness,
) -> None:
    h = slow_harness
    with served(h.app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"API-Key": KEY}, timeout=30) as tiqets:
            slot = await _open_slot(tiqets)
            instance = h.instance_of(TOUR, slot)
            h.sandbox.store.mutate({"events": [{"id": instance, "soldQuantity": 19}]})
            url_ = f"/v2/products/{TOUR}/reservation"
            first, second = await asyncio.gather(
                tiqets.post(url_, json=_reservation(slot, "adult")),
                tiqets.post(url_, json=_reservation(slot, "child")),
            )
            answers = sorted([first, second], key=lambda r: r.status_code)
            assert [r.status_code for r in answers] == [200, 400], [r.text for r in answers]
            loser = answers[1].json()
            assert (loser["error_code"], loser["error"]) == (3000, "Availability error")
            day = slot[:10]
            left = (
                await tiqets.get(
                    f"/v2/products/{TOUR}/availability", params={"start": day, "end": day}
                )
            ).json()[slot]
            assert left == {"available_tickets": 0, "variants": []}
            booked = await tiqets.post(
                "/v2/booking",
                json={
                    "reservation_id": answers[0].json()["reservation_id"],
                    "order_reference": "42",
                },
            )
            assert booked.status_code == 200
    assert h.sandbox.store.instances[instance].sold == 20  # type: ignore[attr-defined]


async def test_concurrent_booking_retries_create_one_order(slow_harness: Harness) -> None:
    h = slow_harness
    with served(h.app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"API-Key": KEY}, timeout=30) as tiqets:
            slot = await _open_slot(tiqets)
            held = await tiqets.post(
                f"/v2/products/{TOUR}/reservation", json=_reservation(slot, "adult")
            )
            body = {"reservation_id": held.json()["reservation_id"], "order_reference": "7"}
            answers = await asyncio.gather(
                *(tiqets.post("/v2/booking", json=body) for _ in range(4))
            )
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    assert h.sandbox.store.dump()["counts"]["orders"] == 1
