"""The spec's answers for bad requests: 403 for a bad API key, and the numeric error codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ticketbridge.supplier import FORBIDDEN_MESSAGE

from .support import CUSTOMER, ENTRY, TOUR, Harness, supplier_config

TOMORROW = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
YESTERDAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

CALLS = [
    ("GET", "/v2/products"),
    ("GET", f"/v2/products/{TOUR}/availability?start={TOMORROW}&end={TOMORROW}"),
    ("POST", f"/v2/products/{TOUR}/reservation"),
    ("POST", "/v2/booking"),
    ("DELETE", "/v2/booking/123"),
    ("GET", "/v2/unknown"),
]


def _error(answer: httpx.Response, code: int, error: str) -> str:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "error", "message"}
    assert (body["error_code"], body["error"]) == (code, error), body
    message: str = body["message"]
    return message


@pytest.mark.parametrize(("method", "path"), CALLS)
@pytest.mark.parametrize("key", [None, "wrong-key", ""])
async def test_without_the_api_key_every_path_is_403_with_the_tables_message(
    harness: Harness, method: str, path: str, key: str | None
) -> None:
    if key is None:
        del harness.http.headers["API-Key"]
    headers = {} if key is None else {"API-Key": key}
    answer = await harness.http.request(method, path, headers=headers, json={})
    assert answer.status_code == 403
    assert answer.text == FORBIDDEN_MESSAGE


async def test_the_security_schemes_empty_403_body_is_an_option(sqlite_url: str) -> None:
    h = Harness(sqlite_url, config=supplier_config(forbidden_body="empty"))
    try:
        answer = await h.http.get("/v2/products", headers={"API-Key": "nope"})
        assert answer.status_code == 403 and answer.content == b""
    finally:
        await h.aclose()


async def test_a_wrong_method_is_405(harness: Harness) -> None:
    assert (await harness.http.put("/v2/products")).status_code == 405


async def test_availability_errors(harness: Harness) -> None:
    url = f"/v2/products/{TOUR}/availability"
    get = harness.http.get
    assert (
        _error(await get(url, params={"start": TOMORROW}), 1000, "Missing argument")
        == 'Required argument "end" was not found'
    )
    assert (
        _error(await get(url), 1000, "Missing argument")
        == 'Required argument "start" was not found'
    )
    assert (
        _error(
            await get(
                "/v2/products/NOPE/availability", params={"start": TOMORROW, "end": TOMORROW}
            ),
            1001,
            "Missing product",
        )
        == "Product with ID NOPE doesn't exist"
    )
    assert _error(
        await get(url, params={"start": "21-06-2030", "end": TOMORROW}), 2000, "Malformed datetime"
    ).startswith("Incorrect date format 21-06-2030")
    _error(
        await get(url, params={"start": TOMORROW, "end": "2030-02-30"}), 2000, "Malformed datetime"
    )
    later = (datetime.now(UTC).date() + timedelta(days=8)).isoformat()
    assert (
        _error(
            await get(url, params={"start": later, "end": TOMORROW}), 2001, "Incorrect date range"
        )
        == "The end date cannot be earlier than start date"
    )


def _reservation(slot: str, **extra: Any) -> dict[str, Any]:
    return {
        "datetime": slot,
        "tickets": [{"variant_id": "adult", "quantity": 1}],
        "customer": CUSTOMER,
        **extra,
    }


async def test_reservation_errors(harness: Harness) -> None:
    slot, _ = await harness.open_slot(TOUR)
    url = f"/v2/products/{TOUR}/reservation"
    post = harness.http.post
    for body, name in (
        ({}, "datetime"),
        ({"datetime": slot}, "tickets"),
        ({"datetime": slot, "tickets": []}, "customer"),
    ):
        assert (
            _error(await post(url, json=body), 1000, "Missing argument")
            == f'Required argument "{name}" was not found'
        )
    missing_phone = _reservation(slot, customer={**CUSTOMER, "phone": None})
    assert "customer.phone" in _error(await post(url, json=missing_phone), 1000, "Missing argument")
    assert (
        _error(
            await post("/v2/products/NOPE/reservation", json=_reservation(slot)),
            1001,
            "Missing product",
        )
        == "Product with ID NOPE doesn't exist"
    )
    _error(await post(url, json=_reservation("05/05/2030")), 2000, "Malformed datetime")
    _error(await post(url, json=_reservation(f"{TOMORROW}T25:00")), 2000, "Malformed datetime")
    _error(await post(url, json=_reservation(f"{TOMORROW}T03:17")), 2002, "Invalid datetime")
    far = (datetime.now(UTC).date() + timedelta(days=300)).isoformat()
    _error(await post(url, json=_reservation(f"{far}T10:00")), 2002, "Invalid datetime")
    wrong_variant = _reservation(slot, tickets=[{"variant_id": "senior", "quantity": 1}])
    _error(await post(url, json=wrong_variant), 2003, "Wrong variant ID")
    as_number = _reservation(slot, tickets=[{"variant_id": 7, "quantity": 1}])
    _error(await post(url, json=as_number), 2004, "Incorrect type")
    _error(await post(url, json=_reservation(slot, customer="Jon")), 2004, "Incorrect type")
    _error(await post(url, content=b"not json"), 2004, "Incorrect type")
    zero = _reservation(slot, tickets=[{"variant_id": "adult", "quantity": 0}])
    _error(await post(url, json=zero), 2005, "Invalid Value")
    assert (
        _error(await post(url, json=_reservation(f"{YESTERDAY}T10:00")), 2009, "Incorrect date")
        == "Cannot use the past date"
    )
    too_many = _reservation(slot, tickets=[{"variant_id": "adult", "quantity": 21}])
    _error(await post(url, json=too_many), 3000, "Availability error")


async def test_a_variant_the_instance_does_not_price_is_2003(sqlite_url: str) -> None:
    config = supplier_config()
    mapping = config.mapping.model_copy(deep=True)
    senior = next(
        p.id
        for p in Harness(sqlite_url).sandbox.store.person_types  # type: ignore[attr-defined]
        if p.name == "Senior"
    )
    mapping.products[ENTRY].variants["senior"] = (
        mapping.products[ENTRY].variants["adult"].model_copy(update={"ticket_type_id": senior})
    )
    h = Harness(sqlite_url, config=config.model_copy(update={"mappings": {"sandbox": mapping}}))
    try:
        slot, found = await h.open_slot(ENTRY)
        assert "senior" not in {v["id"] for v in found["variants"]}
        answer = await h.reserve(ENTRY, slot, senior=1)
        _error(answer, 2003, "Wrong variant ID")
    finally:
        await h.aclose()


async def test_max_tickets_per_order_is_3008(sqlite_url: str) -> None:
    config = supplier_config()
    mapping = config.mapping.model_copy(deep=True)
    mapping.products[TOUR].max_tickets_per_order = 2
    h = Harness(sqlite_url, config=config.model_copy(update={"mappings": {"sandbox": mapping}}))
    try:
        products = (await h.http.get("/v2/products")).json()
        assert next(p for p in products if p["id"] == TOUR)["max_tickets_per_order"] == 2
        slot, _ = await h.open_slot(TOUR)
        _error(
            await h.reserve(TOUR, slot, adult=2, child=1),
            3008,
            "Maximum tickets per order exceeded",
        )
    finally:
        await h.aclose()


async def test_booking_and_cancellation_errors(harness: Harness) -> None:
    post = harness.http.post
    assert (
        _error(await post("/v2/booking", json={}), 1000, "Missing argument")
        == 'Required argument "reservation_id" was not found'
    )
    assert "order_reference" in _error(
        await post("/v2/booking", json={"reservation_id": "x"}), 1000, "Missing argument"
    )
    _error(
        await post("/v2/booking", json={"reservation_id": 5, "order_reference": "1"}),
        2004,
        "Incorrect type",
    )
    assert (
        _error(await harness.book("non-existing-ID"), 3002, "Incorrect reservation ID")
        == "Given reservation ID is incorrect"
    )
    assert (
        _error(await harness.http.delete("/v2/booking/I-DO-NOT-EXIST"), 1004, "Missing booking")
        == "Booking with ID I-DO-NOT-EXIST doesn't exist"
    )


async def test_an_acme_failure_is_a_500_with_a_reason(harness: Harness) -> None:
    harness.sandbox.faults = harness.sandbox.faults.model_copy(update={"rate_5xx": 1.0})
    answer = await harness.http.get("/v2/products")
    assert answer.status_code == 500 and "acme" in answer.json()["message"]


def test_config_rules(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="greater than or equal to 15"):
        supplier_config(reservation_minutes=10)
    with pytest.raises(ValueError, match="production"):
        supplier_config(environment="production")
    with pytest.raises(ValueError, match="Extra inputs"):
        supplier_config(unknown=1)
    with pytest.raises(ValueError, match="time zone"):
        supplier_config(timezone="Mars/Olympus")
    bad_variant = {
        "sandbox": {
            "organization_id": "o",
            "products": {
                "p": {"event_template_id": "t", "variants": {"bad id!": {"ticket_type_id": "x"}}}
            },
        }
    }
    with pytest.raises(ValueError, match="variant ids"):
        supplier_config(mappings=bad_variant)
    assert "tiqets-shared-secret" not in repr(supplier_config())


async def test_a_date_at_the_end_of_the_calendar_is_a_date_that_does_not_exist(
    harness: Harness,
) -> None:
    """9999-12-31 once overflowed the day-after arithmetic into a 500 with a traceback."""
    url = f"/v2/products/{TOUR}/reservation"
    answer = await harness.http.post(url, json=_reservation("9999-12-31T00:00"))
    _error(answer, 2002, "Invalid datetime")
    availability = await harness.http.get(
        f"/v2/products/{TOUR}/availability?start=9999-12-31&end=9999-12-31"
    )
    assert availability.status_code == 200, availability.text


@pytest.mark.parametrize("path", [f"/v2/products/{TOUR}/reservation", "/v2/booking"])
async def test_a_body_nested_past_the_parsers_depth_is_an_incorrect_type(
    harness: Harness, path: str
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    _error(await harness.http.post(path, content=deep), 2004, "Incorrect type")


async def test_a_booked_reservation_replayed_with_another_order_reference_is_refused(
    harness: Harness,
) -> None:
    """A replay with the same order_reference is the same booking; another order's
    reference once silently got the first order's booking back."""
    slot, _ = await harness.open_slot(TOUR)
    reservation = (await harness.reserve(TOUR, slot, adult=1)).json()["reservation_id"]
    first = await harness.book(reservation, reference="111111111111")
    assert first.status_code == 200
    assert (await harness.book(reservation, reference="111111111111")).json() == first.json()
    _error(
        await harness.book(reservation, reference="222222222222"), 3002, "Incorrect reservation ID"
    )
    orders = harness.sandbox.store.dump()["orders"]
    assert len(orders) == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_413_and_never_read_whole(
    harness: Harness, declared: bool
) -> None:
    """Issue 20.9: a 300 MB body with a valid key was read whole and accepted."""
    pulled: list[int] = []

    async def body() -> Any:
        for _ in range(300):
            pulled.append(1)
            yield b" " * 1_000_000

    headers = {"Content-Length": "300000000"} if declared else {}
    answer = await harness.http.post("/v2/booking", content=body(), headers=headers)
    assert answer.status_code == 413, answer.text
    assert answer.json() == {
        "error": "Payload too large",
        "message": "the request body is larger than 256,000 bytes (max_request_kb)",
    }
    assert len(pulled) <= 2  # read no further than the limit
    # A body within the limit is still answered as the spec says.
    _error(await harness.http.post("/v2/booking", json={}), 1000, "Missing argument")
