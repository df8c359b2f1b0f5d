"""Airship CRM's own payloads, parsed tolerantly.

The API returns most values as strings (``"allow_email": "1"``, ``"id": "456"``), sometimes as
numbers or booleans, sometimes empty. These models accept all of those spellings so that a
change of representation on Airship's side never breaks a run; unknown keys are kept
(``extra="allow"``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def parse_bool(value: Any) -> bool | None:
    """``"1"``/``1``/``true``/``"yes"`` -> True, their opposites -> False, blank -> None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if not text or text == "null":
        return None
    raise ValueError(f"not a boolean: {value!r}")


def parse_int(value: Any) -> int | None:
    """``"12"``/``12``/``"12.0"`` -> 12, blank -> None."""
    if value is None:
        return None
    if isinstance(value, int):  # bool included: True -> 1
        return int(value)
    text = str(value).strip()
    if not text or text.casefold() == "null":
        return None
    return int(float(text)) if "." in text else int(text)


def parse_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


Flag = Annotated[bool | None, BeforeValidator(parse_bool)]
Int = Annotated[int | None, BeforeValidator(parse_int)]
Text = Annotated[str | None, BeforeValidator(parse_str)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class Unit(_Payload):
    """A unit (venue) of the account, from ``GET /v1/account/units``."""

    id: Annotated[int, BeforeValidator(parse_int)]
    name: str = ""
    is_root: Flag = None


class Group(_Payload):
    id: Int = None
    name: Text = None
    folder_name: Text = None


class ContactUnit(_Payload):
    id: Int = None
    name: Text = None
    groups: list[Group] = Field(default_factory=list)


class BookingOut(_Payload):
    """A booking as ``GET /v1/bookings`` and ``POST /v1/bookings/{id}`` return it."""

    id: Annotated[int, BeforeValidator(parse_int)]
    booking_reference: Text = None
    contact_id: Int = None
    unit_id: Int = None
    stage_value: Int = None
    type_id: Int = None
    source_id: Int = None
    party_datetime: Text = None
    party_enquirytime: Text = None
    party_size: Int = None
    deposit_paid: Text = None
    updated_at: Text = None


class ContactOut(_Payload):
    """A contact as ``POST /v1/contact`` and ``GET /v1/contacts`` return it.

    With ``full_contact_object: false`` only ``id`` is present; every other field is optional.
    """

    id: Annotated[int, BeforeValidator(parse_int)]
    first_name: Text = None
    last_name: Text = None
    email: Text = None
    mobile_number: Text = None
    allow_email: Flag = None
    allow_sms: Flag = None
    units: list[ContactUnit] = Field(default_factory=list)
    bookings: list[BookingOut] = Field(default_factory=list)


def one_of(body: Any) -> dict[str, Any] | None:
    """The single object of a lookup response, or None for "not found".

    A 404 comes back as ``{"errors": [...]}``; some lookups wrap the object in ``data`` or
    answer with a one-element array, so all three are accepted.
    """
    if isinstance(body, dict) and "data" in body and "id" not in body:
        body = body["data"]
    if isinstance(body, list):
        body = body[0] if body else None
    if not isinstance(body, dict) or "errors" in body or body.get("id") in (None, ""):
        return None
    return body
