"""TicketCo's own payloads, parsed tolerantly (``extra="allow"``, empty strings as missing).

Field provenance (platforms.md 1.4):

* Event: ``id, title, description, start_at, end_at, location_name, tags[]`` are seen in
  client code; ``status, type, street_address, location`` are seen as filter names, so they
  are read when present.
* Item gross: ``transaction_datestamp, ref_number, section_name, item_type_title,
  item_type_id, item_type_type, event_name, checked_in_at, checked_out_at, check_in_user_id,
  holder_last_name, capacity_name`` are seen; ``event_id`` is [INFER].
* Event ``doors_open_at`` is [INFER] (not among the fields seen).
* Every other item-gross key below is [INFER]: TicketCo documents that purchaser and holder
  name and e-mail are included with ``pii=true`` but not their key names. Where a plausible
  alternative spelling exists it is accepted too (``AliasChoices``), so a real payload that
  differs in naming degrades to "missing field", never to a failed record.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator


def _blank_to_none(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    # One pass without a call per value (this runs for every item gross); most payloads have
    # no blank string at all and pass through without a copy.
    for value in data.values():
        if type(value) is str and (not value or value.isspace()):
            break
    else:
        return data
    return {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()}


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        return _blank_to_none(data)


class TicketcoEvent(_Payload):
    id: str | None = None
    title: str | None = Field(None, validation_alias=AliasChoices("title", "name"))
    description: str | None = None
    type: str | None = None
    status: str | None = None
    start_at: str | None = None
    end_at: str | None = None
    # [INFER] not among the fields seen; read when present.
    doors_open_at: str | None = Field(
        None, validation_alias=AliasChoices("doors_open_at", "doors_open", "door_time")
    )
    location_name: str | None = Field(
        None, validation_alias=AliasChoices("location_name", "location")
    )
    street_address: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, value: Any) -> list[str]:
        # Seen as a list of strings; accept "a,b" and [{"name": ...}] as well.
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        out: list[str] = []
        for tag in value if isinstance(value, list) else [value]:
            name = tag.get("name") if isinstance(tag, dict) else tag
            if name is not None and str(name).strip():
                out.append(str(name).strip())
        return out


class ItemGross(_Payload):
    """One sold item (a transaction line). A booking is all item grosses of one ref_number."""

    id: str | None = None
    ref_number: str | None = Field(
        None, validation_alias=AliasChoices("ref_number", "reference_number", "order_number")
    )
    event_id: str | None = None
    event_name: str | None = None
    transaction_datestamp: str | None = None
    item_type_id: str | None = None
    item_type_title: str | None = None
    item_type_type: str | None = None
    section_name: str | None = None
    capacity_name: str | None = None
    checked_in_at: str | None = None
    checked_out_at: str | None = None
    check_in_user_id: str | None = None
    # [INFER] seating, ticket identity, money, state and channel.
    row_name: str | None = Field(None, validation_alias=AliasChoices("row_name", "row"))
    seat_name: str | None = Field(None, validation_alias=AliasChoices("seat_name", "seat"))
    gate_name: str | None = Field(
        None, validation_alias=AliasChoices("gate_name", "gate", "entrance_name", "entrance")
    )
    barcode: str | None = None
    price: str | None = Field(
        None, validation_alias=AliasChoices("price", "item_price", "gross", "amount")
    )
    currency: str | None = None
    status: str | None = None
    cancelled_at: str | None = None
    sales_channel: str | None = Field(
        None, validation_alias=AliasChoices("sales_channel", "channel", "sale_channel")
    )
    # [INFER] purchaser (the booking's contact) and holder (the ticket's named person).
    buyer_id: str | None = Field(None, validation_alias=AliasChoices("buyer_id", "customer_id"))
    buyer_first_name: str | None = Field(
        None, validation_alias=AliasChoices("buyer_first_name", "purchaser_first_name")
    )
    buyer_last_name: str | None = Field(
        None, validation_alias=AliasChoices("buyer_last_name", "purchaser_last_name")
    )
    buyer_email: str | None = Field(
        None, validation_alias=AliasChoices("buyer_email", "purchaser_email", "customer_email")
    )
    buyer_phone: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "buyer_phone", "buyer_mobile", "purchaser_phone", "customer_phone"
        ),
    )
    buyer_email_opt_in: Any = Field(
        None,
        validation_alias=AliasChoices("buyer_email_opt_in", "email_opt_in", "newsletter"),
    )
    holder_first_name: str | None = None
    holder_last_name: str | None = None
    holder_email: str | None = None

    @property
    def cancelled(self) -> bool:
        """Cancelled or refunded: it no longer counts towards party size or value."""
        state = (self.status or "").strip().lower()
        return state in CANCELLED_STATES or self.cancelled_at is not None


CANCELLED_STATES = frozenset({"cancelled", "canceled", "refunded", "void", "voided"})


def opt_in_value(value: Any) -> bool | None:
    """``True``/``False`` for an explicit answer, ``None`` when the source does not say."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "y", "ja", "on"}:
        return True
    if text in {"false", "0", "no", "n", "nei", "off"}:
        return False
    return None
