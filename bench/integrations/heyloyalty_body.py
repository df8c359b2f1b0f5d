"""Ticketmaster customers and orders -> Heyloyalty calls, in plain Python.

What a user of a generic tool writes to do the job of ticketbridge's Ticketmaster ->
Heyloyalty sync (the demo's settings): a member upsert per customer who consented on a channel
and has a usable e-mail, a status PATCH after a member is created for each channel with an
address the customer did not consent to, and the purchases of those customers' completed
orders through the tracking import. ``tests/bench/test_heyloyalty_body.py`` checks the bodies
against ticketbridge's own mapping on sandbox data.

Settings mirrored: match on e-mail, consent required on any channel, list fields firstname,
lastname, email, mobile (national digits of a DK number), birthdate (``%d-%m-%Y`` at the
source, Y-m-d on the list), Cardnumber (``cards.Cardnumber``), reference (the customer id);
the default tracking fields.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
import phonenumbers
from email_validator import EmailNotValidError, validate_email

REGION = "DK"
SOURCE_DATE = "%d-%m-%Y"
LIST_DATE = "%Y-%m-%d"
CANCELLED = frozenset({"REFUNDED", "CANCELLED", "CANCELED"})


def email_of(raw: Any) -> str | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def mobile_of(raw: Any) -> str | None:
    """National digits of a DK mobile; None for anything else or unusable."""
    text = str(raw or "").strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    if number.country_code != phonenumbers.country_code_for_region(REGION):
        return None
    return str(phonenumbers.national_significant_number(number))


def consent_of(customer: dict[str, Any]) -> dict[str, str]:
    """Per channel: ``active`` for a yes, ``unsubscribed`` for a no, nothing when unknown."""
    given = customer.get("marketing_consent") or {}
    out = {}
    for channel, flag in (("email", given.get("email")), ("mobile", given.get("sms"))):
        if flag is not None:
            out[channel] = "active" if flag else "unsubscribed"
    return out


def consented(customer: dict[str, Any]) -> bool:
    return "active" in consent_of(customer).values()


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return value


def _birthdate(raw: Any) -> Any:
    if raw in (None, ""):
        return None
    try:
        return datetime.strptime(str(raw).strip(), SOURCE_DATE).strftime(LIST_DATE)
    except ValueError:
        return _text(raw)  # kept as the source wrote it, as ticketbridge does


def member(customer: dict[str, Any]) -> dict[str, Any] | None:
    """The upsert's ``member`` (list fields); None when there is no usable e-mail."""
    email = email_of(customer.get("email"))
    if email is None:
        return None
    cards = customer.get("cards")
    out = {
        "Cardnumber": _text(cards.get("Cardnumber")) if isinstance(cards, dict) else None,
        "birthdate": _birthdate(customer.get("birth_date")),
        "email": email,
        "firstname": _text(customer.get("first_name")),
        "lastname": _text(customer.get("last_name")),
        "mobile": mobile_of(customer.get("mobile")),
        "reference": _text(customer.get("id")),
    }
    return {k: v for k, v in out.items() if v is not None}


def upsert_body(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "unique_field": "email",
        "search_temporary": True,
        "trigger_autoresponder": 0,
        "trigger_webhooks": 0,
        "member": fields,
        "skipOptIn": 1,
    }


def status_after_create(customer: dict[str, Any], fields: dict[str, Any]) -> dict[str, str]:
    """A new member is active on every channel it has an address for: the channels the
    customer did not say yes to are turned off."""
    consent = consent_of(customer)
    return {
        c: "unsubscribed"
        for c in ("email", "mobile")
        if fields.get(c) not in (None, "") and consent.get(c) != "active"
    }


def _money(amount: Any) -> str | None:
    if amount is None:
        return None
    return str(Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def _stamp(text: str) -> str:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def tracking_rows(order: dict[str, Any], customer: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The import rows of a completed order (one per distinct ticket line, with a quantity);
    None for a cancelled or refunded order, or a buyer without a usable e-mail."""
    if str(order.get("status") or "").upper() in CANCELLED:
        return None
    email = email_of(customer.get("email"))
    if email is None:
        return None
    event = order.get("event") or {}
    currency = str(order.get("currency") or "").strip().upper() or None
    head = {
        "email": email,
        "order_id": str(order["id"]),
        "created_at": _stamp(order["created_at"]),
        "event_type": "purchasedBasket",
    }
    lines = order.get("tickets") or [{"price": order.get("total")}]
    counted: dict[bytes, tuple[dict[str, Any], int]] = {}
    for ticket in lines:
        price = _money(ticket.get("price"))
        line = {
            "product_id": event.get("id"),
            "description": _text(event.get("name")),
            "product_price": price,
            "original_price": price,
            "currency": currency if price is not None else None,
        }
        line = {k: v for k, v in line.items() if v is not None}
        key = orjson.dumps(line, option=orjson.OPT_SORT_KEYS)
        found = counted.get(key)
        counted[key] = (line, (found[1] if found else 0) + 1)
    products = [{**line, "quantity": n} for _, (line, n) in sorted(counted.items())]
    return [{**head, **p} for p in products]
