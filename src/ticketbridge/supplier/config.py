"""The ``supplier_api:`` block of the project file: the Tiqets Supplier API ticketbridge serves.

ACME's ids differ between its sandbox and production [DOC seed page], so the mapping is kept
per environment and ``environment`` alone picks which one (and which ACME base URL, when the
connection uses the default one) is live. Product and variant ids are Tiqets-facing and stable;
they never change with the environment.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Environment = Literal["sandbox", "production"]

# Tiqets' rule for variant ids (spec "Concepts"); product ids: printable ASCII, <= 64 chars.
VARIANT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
PRODUCT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantMapping(_Strict):
    """A Tiqets variant = one ACME ticket type (``personType``) of the product's template."""

    ticket_type_id: str
    name: str | None = None
    """Shown to Tiqets; default: the ticket type's name in ACME."""


class ProductMapping(_Strict):
    """A Tiqets product = one ACME event template, with the ticket types sold through Tiqets."""

    event_template_id: str
    name: str | None = None
    """Default: the template's name in ACME."""
    description: str | None = None
    use_timeslots: bool | None = None
    """None: decided from ACME, timeslots when a day has more than one instance [INFER]."""
    is_refundable: bool = True
    cutoff_time: int = Field(default=0, ge=0)
    """Minutes before the visit after which a booking can no longer be cancelled (0: until
    the visit starts)."""
    max_tickets_per_order: int | None = Field(default=None, ge=1)
    variants: dict[str, VariantMapping] = Field(min_length=1)

    @field_validator("variants")
    @classmethod
    def _variant_ids(cls, value: dict[str, VariantMapping]) -> dict[str, VariantMapping]:
        bad = [k for k in value if not VARIANT_ID.match(k)]
        if bad:
            raise ValueError(f"variant ids must match [A-Za-z0-9_-]{{1,64}}: {bad}")
        return value


class EnvMapping(_Strict):
    """Everything that names an ACME id, for one ACME environment."""

    organization_id: str
    """The ACME Organization record (reseller) Tiqets orders are created under."""
    products: dict[str, ProductMapping] = Field(min_length=1)

    @field_validator("products")
    @classmethod
    def _product_ids(cls, value: dict[str, ProductMapping]) -> dict[str, ProductMapping]:
        bad = [k for k in value if not PRODUCT_ID.match(k)]
        if bad:
            raise ValueError(f"product ids must be 1-64 printable ASCII characters: {bad}")
        return value


class SupplierApiConfig(_Strict):
    """How ticketbridge serves the Tiqets Supplier API in front of one ACME connection."""

    connection: str
    """Name of the ``acme`` connection in ``connections:``."""
    host: str = "127.0.0.1"
    port: int = Field(default=8480, ge=1, le=65535)
    api_key: SecretStr
    """The shared secret Tiqets sends in the ``API-Key`` header."""
    environment: Environment = "sandbox"
    mappings: dict[Environment, EnvMapping]
    max_request_kb: int = Field(default=256, ge=1)
    """The largest request body read, in kB (1,000 bytes); a larger one is answered 413
    unread. Tiqets' reservations and bookings are a few kB."""
    reservation_minutes: int = Field(default=15, ge=15)
    """How long a reservation holds its tickets; Tiqets requires at least 15 minutes."""
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    """Currency of ACME's prices [GAP: ACME's price lists carry no currency]."""
    timezone: str | None = None
    """The venue's IANA time zone; None: the tenant's, from the ACME session (else UTC)."""
    cancellation: Literal["order_update", "refund"] = "order_update"
    """How a Tiqets cancellation reaches ACME: set every item of the order to quantity 0
    (``POST /v2/b2b/orders/update``), or a full refund (``POST /v1/b2b/b2b/refunds``)."""
    forbidden_body: Literal["empty", "tiqets_message"] = "tiqets_message"
    """403 body for a missing or wrong API-Key. The spec contradicts itself: its error table
    gives 403 the message "Forbidden - Missing or incorrect API key", its security scheme says
    an empty body. Tiqets' certification tester (the acceptance test) wants the message, so
    that is the default; ``empty`` follows the security scheme. Both answer status 403."""

    @model_validator(mode="after")
    def _live_mapping(self) -> SupplierApiConfig:
        if self.environment not in self.mappings:
            raise ValueError(
                f"mappings has no {self.environment!r} entry, but environment "
                f"is {self.environment!r}"
            )
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self

    @property
    def mapping(self) -> EnvMapping:
        """The mapping of the live environment."""
        return self.mappings[self.environment]
