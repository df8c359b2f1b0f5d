"""Pure functions: ticketbridge's values -> ACME request bodies, ACME payloads -> values.

Nothing here does I/O. ACME is the backend of the Tiqets Supplier API (``ticketbridge.supplier``),
not a sync source or destination, so there is no canonical record on the other side: the
functions take plain values (ids, quantities, prices, a buyer) and give the bodies and
parameters ``client.py`` sends, or read what a caller needs out of ACME's payloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from ticketbridge.connectors.acme.schemas import Order

SESSION_FALLBACK_S = 15 * 60  # [INFER] a session answer without an expiry: assume a short one


class OrderLine(NamedTuple):
    """Tickets of one ACME ticket type (person type) at one unit price."""

    person_type_id: str
    quantity: int
    unit_price: Decimal


def time_param(moment: datetime) -> str:
    """An aware datetime as ACME's ``startTime`` / ``endTime`` query value."""
    if moment.tzinfo is None:
        raise ValueError("ACME time ranges need aware datetimes")
    return moment.isoformat()


def session_deadline(expire_ms: int | None, now: float) -> float:
    """When a session answered at ``now`` (epoch seconds) ends, from its ``expireMs``: an
    epoch-milliseconds deadline, or [INFER] a lifetime in milliseconds when it is small."""
    if expire_ms is None:
        return now + SESSION_FALLBACK_S
    if expire_ms > 10**12:
        return expire_ms / 1000
    return now + expire_ms / 1000


def organization_order_body(
    event_id: str,
    lines: Sequence[OrderLine],
    *,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    phone: str | None,
    notes: str,
) -> dict[str, Any]:
    """The body of ``POST /v2/b2b/orders/organizations/{id}``: the lines on one event
    instance, invoiced to the reseller, delivered at will call, no e-mail from ACME."""
    items = [
        {
            "eventId": event_id,
            "amount": float(line.unit_price),
            "quantity": line.quantity,
            "itemType": "Event",
            "personTypeId": line.person_type_id,
        }
        for line in lines
    ]
    total = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    return {
        "saleChannel": "reseller",
        "paymentMethod": "invoice",
        "chargeAmount": float(total),
        "email": email,
        "noEmail": True,
        "ticketDelivery": "willCall",
        "billingFirstName": first_name,
        "billingLastName": last_name,
        "phoneNumber": phone,
        "notes": notes,
        "events": [{"eventId": event_id, "items": items}],
    }


def order_update_body(order_id: str, quantities: Mapping[str, int]) -> dict[str, Any]:
    """The body of ``POST /v2/b2b/orders/update``: absolute quantities per order item."""
    items = [{"orderItemId": k, "quantity": v} for k, v in quantities.items()]
    return {"orderId": order_id, "orderItems": items}


def refund_body(
    order_id: str,
    quantities: Mapping[str, int] | None,
    *,
    reason: str,
    notes: str | None,
) -> dict[str, Any]:
    """The body of ``POST /v1/b2b/b2b/refunds``: the given item quantities, or the whole order
    when ``quantities`` is None."""
    body: dict[str, Any] = {"orderId": order_id, "incidentReasonCode": reason, "noEmail": True}
    if notes:
        body["notes"] = notes
    if quantities is not None:
        body["refundItems"] = [
            {"orderItemId": k, "quantity": v, "incidentReasonCode": reason}
            for k, v in quantities.items()
        ]
    return body


def live_quantities(order: Order) -> dict[str, int]:
    """Quantity per order item that is not cancelled or refunded yet."""
    return {i.orderItemId: i.quantity for i in order.orderItems if i.quantity > 0}
