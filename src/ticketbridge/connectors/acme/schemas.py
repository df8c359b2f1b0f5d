"""ACME's own payloads, parsed tolerantly (``extra="allow"``).

Field names follow ``platforms.md`` 8.3-8.4 and the public TypeScript client's models. Ids are
strings in ACME (24-hex object ids), except ``tenantId`` which is a number; all ids are kept as
strings here so a change of representation never breaks a caller. Money arrives as numbers on
events and as strings on orders; both become ``Decimal``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field


def _str_id(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value))
    return value


def _money(value: Any) -> Any:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(str(value))  # via str: 25.1 stays 25.1, not 25.0999...
    return value


Id = Annotated[str, BeforeValidator(_str_id)]
OptId = Annotated[str | None, BeforeValidator(_str_id)]
Money = Annotated[Decimal, BeforeValidator(_money)]


def parse_time(value: str | int | float | None) -> datetime | None:
    """ACME times: ISO 8601 strings (events) or epoch milliseconds (order items) -> aware UTC.

    A naive ISO string is read as UTC [INFER]: the documented examples always carry an offset.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Session(_Payload):
    """``GET /v2/b2b/customer/session``. ``roles`` holds the user's permission codes [INFER]."""

    session: str
    expireMs: int | None = None
    roles: list[str] = Field(default_factory=list)
    tenantId: OptId = None
    tenantTimeZone: str | None = None
    userName: str | None = None


class PersonType(_Payload):
    """A ticket type (Adult, Child, OTA Adult, ...)."""

    id: Id
    name: str = ""


class Price(_Payload):
    personType: PersonType
    price: Money = Decimal(0)
    discountedPrice: Money | None = None


class PriceList(_Payload):
    priceListId: OptId = None
    prices: list[Price] = Field(default_factory=list)

    def price_of(self, person_type_id: str) -> Decimal | None:
        return next((p.price for p in self.prices if p.personType.id == person_type_id), None)


class TemplatePriceList(PriceList):
    id: OptId = None
    name: str | None = None


class EventTemplate(_Payload):
    id: Id
    name: str = ""
    description: str | None = None
    shortDescription: str | None = None
    admissionType: str | None = None
    reviewState: str | None = None
    priceLists: list[TemplatePriceList] = Field(default_factory=list)

    def person_type_ids(self) -> set[str]:
        return {p.personType.id for pl in self.priceLists for p in pl.prices}


class EventInstance(_Payload):
    """One dated occurrence of a template, with its capacity and sales so far."""

    id: Id
    name: str = ""
    templateId: OptId = None
    capacity: int = 0
    startTime: str
    endTime: str | None = None
    soldQuantity: int = 0
    available: bool = True
    state: str | None = None
    priceList: PriceList = Field(default_factory=PriceList)

    @property
    def start(self) -> datetime:
        parsed = parse_time(self.startTime)
        assert parsed is not None  # startTime is required
        return parsed

    @property
    def end(self) -> datetime | None:
        return parse_time(self.endTime)

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - self.soldQuantity)


class Organization(_Payload):
    id: Id
    name: str = ""
    category: str | None = None


class OrderItem(_Payload):
    orderItemId: Id = Field(validation_alias=AliasChoices("orderItemId", "itemId"))
    eventId: OptId = None
    eventName: str | None = None
    ticketingTypeId: OptId = None
    ticketingTypeName: str | None = None
    quantity: int = 0
    unitPrice: Money = Decimal(0)
    amount: Money = Decimal(0)
    itemType: str | None = None


class Order(_Payload):
    id: Id
    orderNumber: OptId = None
    tenantId: OptId = None
    organizationId: OptId = None
    totalAmount: Money = Decimal(0)
    refundAmount: Money = Decimal(0)
    orderItems: list[OrderItem] = Field(default_factory=list)


class Refund(_Payload):
    """``POST /v1/b2b/b2b/refunds`` answer [INFER: the response shape is undocumented]."""

    id: Id
    orderId: OptId = None
    refundAmount: Money = Decimal(0)
