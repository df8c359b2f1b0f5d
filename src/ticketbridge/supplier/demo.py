"""One Tiqets sale, end to end, through the Supplier API over HTTP (for ``ticketbridge demo``).

It does what Tiqets does: list products, read availability, reserve, book, cancel, and cancel
again (which must answer 3003). Everything goes through ``http.ApiClient`` like any other call.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from ticketbridge.errors import FatalError
from ticketbridge.http import ApiClient, HttpContext, RetryPolicy
from ticketbridge.http.auth import HeaderToken
from ticketbridge.http.outcomes import Action

DEMO_CUSTOMER = {
    "first_name": "Demo",
    "last_name": "Visitor",
    "email": "demo@example.com",
    "phone": "+31 20 000 0000",
    "country": "nl",
}


def _pick_slot(availability: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    for key, slot in sorted(availability.items()):
        variants = [v for v in slot.get("variants", []) if v.get("available_tickets", 0) >= 1]
        if variants and slot.get("available_tickets", 0) >= min(2, len(variants)):
            return key, variants[:2]
    raise FatalError("no availability in the demo window", platform="tiqets-supplier")


async def demo_sale(
    base_url: str,
    api_key: str,
    http_context: HttpContext,
    *,
    product_id: str | None = None,
    days: int = 14,
) -> dict[str, Any]:
    """Sell one ticket of up to two variants and cancel it; return what happened.

    ``product_id`` picks the product (default: the first with timeslots, else the first).
    """
    api = ApiClient(
        platform="tiqets-supplier",
        base_url=base_url,
        context=http_context,
        auth=HeaderToken("API-Key", SecretStr(api_key)),
        retry=RetryPolicy(max_retries=0),
    )
    try:
        products = await api.get_json("v2/products")
        if not products:
            raise FatalError("the Supplier API offers no products", platform="tiqets-supplier")
        chosen = (
            next((p for p in products if p["id"] == product_id), None)
            if product_id
            else next((p for p in products if p["use_timeslots"]), products[0])
        )
        if chosen is None:
            raise FatalError(f"no product {product_id!r}", platform="tiqets-supplier")
        pid = chosen["id"]
        today = datetime.now(UTC).date()
        availability = await api.get_json(
            f"v2/products/{pid}/availability",
            {"start": today.isoformat(), "end": (today + timedelta(days=days)).isoformat()},
        )
        slot, variants = _pick_slot(availability)
        tickets = [{"variant_id": v["id"], "quantity": 1} for v in variants]
        reservation = await api.request_json(
            "POST",
            f"v2/products/{pid}/reservation",
            json_body={"datetime": slot, "tickets": tickets, "customer": DEMO_CUSTOMER},
        )
        reference = f"{time.time_ns() // 1000 % 10**12:012d}"  # Tiqets: at most 12 digits
        booked = await api.request(
            "POST",
            "v2/booking",
            json_body={
                "reservation_id": reservation["reservation_id"],
                "order_reference": reference,
            },
        )
        booking = booked.json()
        cancelled = await api.request("DELETE", f"v2/booking/{booking['booking_id']}")
        again = await api.request(
            "DELETE", f"v2/booking/{booking['booking_id']}", table={400: Action.OK}
        )
        return {
            "product": {
                "id": pid,
                "name": chosen["name"],
                "use_timeslots": chosen["use_timeslots"],
            },
            "slot": slot,
            "tickets": tickets,
            "unit_price": reservation.get("unit_price", {}),
            "reservation_id": reservation["reservation_id"],
            "expires_at": reservation["expires_at"],
            "order_reference": reference,
            "booking_id": booking["booking_id"],
            "acme_order_id": booked.headers.get("x-acme-order-id"),
            "barcodes": booking.get("tickets", {}),
            "cancellation": {
                "status": cancelled.status_code,
                "acme": cancelled.headers.get("x-acme-cancellation"),
            },
            "second_cancellation": again.json(),
        }
    finally:
        await api.aclose()
