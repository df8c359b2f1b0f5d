"""Connection settings for Ticketmaster's client-data API (platforms.md 4.5), and the options
of its ``customers`` stream.

Heyloyalty's integration asks a venue for exactly four things: an API key, a market code, a
username and a password [DOC guides.heyloyalty.com]. How they are sent is a [GAP]; this
connector sends the key as ``?apikey=`` (Ticketmaster's documented style) and the username
and password as HTTP Basic auth on every request [INFER].
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ticketbridge.connectors.base import ConnectionConfig, StreamOptions, StreamSpec

# Every path and parameter name of the client-data API. It has no public spec [GAP]
# (platforms.md 4.5, 12): the defaults are the shape platforms.md 4.5 proposes, in the style
# Ticketmaster documents for the Discovery API (``apikey`` query parameter, ``page``/``size``
# with a ``page{}`` object, ``sort=<field>,asc``), all [INFER]. A venue with the real spec
# overrides them in the connection (``paths: {customers: "...", updated_since: "..."}``)
# without a code change; the sandbox serves whatever Paths it is built with.


class Paths(BaseModel):
    """Paths (relative to ``base_url``) and parameter names. Unknown keys are errors, so a
    misspelt override fails at config load instead of silently using a default.

    Invariants: ``customers`` and ``orders`` contain ``{market}``; ``customer`` contains
    ``{market}`` and ``{id}``; list and page locations are dotted paths into the body
    (``_embedded.customers`` reads ``{"_embedded": {"customers": [...]}}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- resources ---------------------------------------------------------------------
    customers: str = "{market}/customers"
    customer: str = "{market}/customers/{id}"
    orders: str = "{market}/orders"

    # -- query parameters --------------------------------------------------------------
    api_key: str = "apikey"  # Discovery's documented name; the Partner API uses it too
    updated_since: str = "updated_since"  # inclusive lower bound (platforms.md 4.5)
    updated_until: str = "updated_until"  # exclusive upper bound [INFER]
    page: str = "page"  # 0-based, as Discovery's page.number
    size: str = "size"
    sort: str = "sort"
    sort_ascending: str = "updated_at,asc"  # Discovery spells sorts "<field>,<direction>"

    # -- response body -----------------------------------------------------------------
    customers_list: str = "customers"
    orders_list: str = "orders"
    page_object: str = "page"

    @model_validator(mode="after")
    def _placeholders(self) -> Paths:
        for name in ("customers", "orders", "customer"):
            template = getattr(self, name)
            if "{market}" not in template:
                raise ValueError(f"paths.{name} must contain {{market}}, got {template!r}")
        if "{id}" not in self.customer:
            raise ValueError(f"paths.customer must contain {{id}}, got {self.customer!r}")
        return self

    def render(self, name: str, **values: Any) -> str:
        """The path ``name`` with its placeholders filled, each value URL-escaped (a market
        or id can never add a path segment)."""
        template: str = getattr(self, name)
        escaped = {k: quote(str(v), safe="") for k, v in values.items()}
        return template.format(**escaped).lstrip("/")

    def route(self, name: str) -> str:
        """The path as a Starlette route template (the sandbox serves exactly these)."""
        template: str = getattr(self, name)
        return "/" + template.lstrip("/")


PLATFORM = "ticketmaster"
# [INFER]: the host is Ticketmaster's API gateway (as for Discovery and Partner APIs); the
# "clientdata/v1" prefix is a placeholder until a venue brings the real spec.
DEFAULT_BASE_URL = "https://app.ticketmaster.com/clientdata/v1"
# Discovery documents that ``size * page`` must stay below 1000 [DOC platforms.md 4.2].
DEEP_PAGING_LIMIT = 1000
_MARKET = re.compile(r"^[A-Z]{2,3}$")


class TicketmasterConfig(ConnectionConfig):
    """One Ticketmaster market account.

    ``default_region`` defaults to the market, because venues store local mobile numbers
    (``12345678`` is Danish in market DK). ``page_size`` stays below 200 (Discovery's largest
    page) so that the deep-paging cap is reached and handled on large reads.
    """

    platform: Literal["ticketmaster"] = "ticketmaster"
    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr
    market: str
    username: str
    password: SecretStr
    # 5 requests per second per key [DOC platforms.md 4.2]; the sandbox enforces it.
    rate_per_second: float | None = 5.0
    # Apigee's spike arrest smooths the rate (5/s = one call per 200 ms), so a burst of 5 at
    # once is refused although the second as a whole stays under 5: no bursts by default.
    rate_burst: int | None = 1
    page_size: int = Field(default=100, ge=1, le=199)
    deep_paging_limit: int = Field(default=DEEP_PAGING_LIMIT, ge=1)
    paths: Paths = Field(default_factory=Paths)
    date_fields: list[str] = Field(default_factory=lambda: ["birth_date"])
    """Customer fields holding dates in the venue's own format (the stream's ``date_format``);
    they reach destinations as ISO 8601 dates. Dotted paths reach nested fields."""

    @field_validator("market")
    @classmethod
    def _market(cls, value: str) -> str:
        code = value.strip().upper()
        if not _MARKET.match(code):
            raise ValueError(f"market must be a 2-3 letter code such as 'DK', got {value!r}")
        return code

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value.strip() or ":" in value:
            # Basic auth cannot carry a colon in the user part (RFC 7617).
            raise ValueError("username must be non-empty and contain no ':'")
        return value.strip()

    @model_validator(mode="after")
    def _region_from_market(self) -> TicketmasterConfig:
        if self.default_region is None:
            self.default_region = self.market
        return self


class CustomersOptions(StreamOptions):
    """Options of the ``customers`` stream (the CLI's manual-import flags use these names)."""

    members: bool = True
    """Emit customers as contacts (list members)."""
    orders: bool = True
    """Emit each customer's orders as bookings (tracking events)."""
    date_format: str | None = None
    """strptime format of the venue's dates such as birth dates (``%d-%m-%Y``); None: ISO."""

    @field_validator("date_format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        probe = datetime(1999, 12, 31)
        try:
            ok = "%" in value and datetime.strptime(probe.strftime(value), value) == probe
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"date_format {value!r} cannot read back a full date (e.g. '%d-%m-%Y')"
            )
        return value

    @model_validator(mode="after")
    def _something(self) -> CustomersOptions:
        if not (self.members or self.orders):
            raise ValueError("members and orders are both off: nothing to read")
        return self


CUSTOMERS = StreamSpec(
    name="customers",
    kind="contact",
    extra_kinds=("booking",),
    strategies=("cursor",),
    window_fields=("updated_at",),
    options=CustomersOptions,
    description="Customers updated since the cursor (contacts with per-channel marketing "
    "consent) and their orders updated in the same range (bookings, with the customer).",
)


class TicketsOptions(StreamOptions):
    """Options of the ``tickets`` stream."""

    holders: bool = True
    """Name each ticket's holder after its order's buyer: one customer read per buyer not
    seen yet in the run [INFER: the client data names no holder per ticket]. Off: no
    customer reads, and passes show no holder."""


TICKETS = StreamSpec(
    name="tickets",
    kind="ticket",
    strategies=("cursor",),
    window_fields=("updated_at",),
    options=TicketsOptions,
    description="Each purchased ticket of the orders updated since the cursor, with its "
    "event, seat, barcode, price and status, the buyer as holder and the order id as "
    "confirmation code.",
)
