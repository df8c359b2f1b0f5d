"""ACME's pure mapping: request bodies and session deadlines, without the sandbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from ticketbridge.connectors.acme.mapping import (
    OrderLine,
    live_quantities,
    order_update_body,
    organization_order_body,
    refund_body,
    session_deadline,
    time_param,
)
from ticketbridge.connectors.acme.schemas import Order


def test_session_deadline_reads_a_deadline_or_a_lifetime() -> None:
    assert session_deadline(2_000_000_000_000, now=5.0) == 2_000_000_000.0
    assert session_deadline(60_000, now=5.0) == 65.0
    assert session_deadline(None, now=5.0) == 5.0 + 15 * 60


def test_time_param_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        time_param(datetime(2025, 1, 1))


def test_order_body_totals_its_lines() -> None:
    body = organization_order_body(
        "ev1",
        [OrderLine("adult", 2, Decimal("25.10")), OrderLine("child", 1, Decimal("10.00"))],
        first_name="A",
        last_name="B",
        email="a@example.com",
        phone=None,
        notes="n",
    )
    assert body["chargeAmount"] == 60.2
    assert body["events"][0]["eventId"] == "ev1"
    assert [i["personTypeId"] for i in body["events"][0]["items"]] == ["adult", "child"]


def test_update_refund_and_live_items() -> None:
    assert order_update_body("o", {"i1": 0}) == {
        "orderId": "o",
        "orderItems": [{"orderItemId": "i1", "quantity": 0}],
    }
    whole = refund_body("o", None, reason="Miscellaneous", notes=None)
    assert "refundItems" not in whole and "notes" not in whole
    order = Order.model_validate(
        {"id": "o", "orderItems": [{"orderItemId": "a", "quantity": 2}, {"itemId": "b"}]}
    )
    assert live_quantities(order) == {"a": 2}
