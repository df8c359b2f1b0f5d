"""Connection settings for TicketCo (platforms.md section 1)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, field_validator, model_validator

from ticketbridge.connectors.base import ConnectionConfig
from ticketbridge.model.currency import exponent

# Fake credentials the sandbox issues (platforms.md: never reuse real tokens), and the API's
# path on it: here, so the package's sandbox settings need not import the sandbox (Starlette).
SANDBOX_TOKEN = "sandbox-ticketco-token"  # noqa: S105
BASE = "/api/public/v1"

DEFAULT_BASE_URL = "https://ticketco.events/api/public/v1"


class TicketcoConfig(ConnectionConfig):
    """A TicketCo account, reached with one API token (sent as ``?token=``).

    The token may be scoped to the Events, Item grosses and Customers data sets; the bookings
    stream needs the first two. ``pii=False`` asks TicketCo to leave personal data out, which
    leaves bookings without contact details (useful for statistics-only syncs).
    """

    platform: Literal["ticketco"] = "ticketco"
    base_url: str = DEFAULT_BASE_URL
    token: SecretStr
    pii: bool = True
    # TicketCo's page size parameter is a GAP (platforms.md 1.3): no client sends one, so
    # nothing is sent unless both are configured.
    page_size_param: str | None = None
    page_size: int | None = None
    # With a page size configured, a page shorter than it is the last one: that saves the
    # empty page TicketCo is otherwise asked for at the end of every list (one call per
    # event). Off by default, because an API that caps the page size below the request
    # without saying so would end every list after its first page.
    short_page_is_last: bool = False
    # The order of item grosses within an event is not documented (platforms.md 1.5 infers
    # the grouping by ref_number, not its order): by default an
    # event's items are all read before any are grouped, which holds the whole event in
    # memory. If the account serves each ref_number's items one after another, this maps
    # each booking as soon as its group ends; a ref_number seen again after its group ended
    # stops the run with an error naming it, before its event is checkpointed.
    item_grosses_grouped: bool = False
    # Venues store local numbers ("412 34 567"); they are Norwegian unless the buyer wrote
    # a country code.
    default_region: str | None = "NO"
    # Timestamps without an offset are read in this zone (GAP: TicketCo's is not documented).
    timezone: str = "Europe/Oslo"
    # Item prices carry no currency in the fields seen [INFER]; this fills the gap.
    currency: str = "NOK"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        code = value.strip().upper()
        exponent(code)
        return code

    @field_validator("page_size")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("page_size must be at least 1")
        return value

    @model_validator(mode="after")
    def _short_page_needs_a_size(self) -> TicketcoConfig:
        if self.short_page_is_last and not (self.page_size_param and self.page_size):
            raise ValueError("short_page_is_last needs page_size_param and page_size")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
