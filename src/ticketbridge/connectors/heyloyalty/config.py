"""Connection settings and the options of the ``members`` object.

Facts come from ``platforms.md`` section 5 (Heyloyalty) and the Ticketmaster integration page
(``seeds/ticketmaster-to-heyloyalty.da.txt``): list, match field, import type, opt-in,
automations, webhooks, re-subscription of unsubscribed members, the nested-field separator, the
date format and the two field mappings (customer -> list fields, purchase -> tracking events).
The option names below are the ones the CLI's manual-import flags use.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ticketbridge.connectors.base import ConnectionConfig, ObjectOptions

PLATFORM = "heyloyalty"
SANDBOX_API_KEY = "sandbox-hl-key"
SANDBOX_API_SECRET = "sandbox-hl-secret"  # noqa: S105 - the fake secret the sandbox accepts
SANDBOX_TRACKING_ID = "sandbox-tracking"
SANDBOX_LIST_ID = 4711

MatchField = Literal["email", "mobile"]
ImportType = Literal["create", "create_update", "update"]

# Source names a mapping path may use for the canonical (normalised) contact fields; any other
# path reads the raw source payload in ``Contact.attributes``.
CANONICAL_FIELDS = ("email", "mobile", "first_name", "last_name", "external_id")

# Key of the mapped member that carries the per-channel subscription status. It is not a list
# field: it is the member's ``status`` object (platforms.md 5.4), derived from consent.
STATUS = "status"

# The Ticketmaster integration's default customer mapping: list field -> source path.
# ``birth_date`` is the raw payload key; a contact without it simply has no birthdate sent.
DEFAULT_MEMBER_FIELDS: dict[str, str] = {
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "mobile": "mobile",
    "birthdate": "birth_date",
    STATUS: STATUS,
}

# Default tracking mapping: tracking field -> path. ``order`` is the canonical booking, ``ticket``
# one of its tickets (with the order's event when the ticket has none). Order-level fields are
# repeated on every product row of the import, product-level ones make the rows. Kept as parts
# so the defaults work with any separator.
DEFAULT_TRACKING_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("order", "contact", "email"),
    "order_id": ("order", "confirmation_number"),
    "created_at": ("order", "booked_at"),
    "product_id": ("ticket", "event", "external_id"),
    "description": ("ticket", "event", "name"),
    "product_price": ("ticket", "price"),
    "original_price": ("ticket", "price"),
    "currency": ("ticket", "price", "currency"),
}
# Without these a tracking row is meaningless to Heycommerce (who bought what, when).
REQUIRED_TRACKING_FIELDS = ("email", "order_id", "product_id", "created_at")
PURCHASE_EVENT = "purchasedBasket"  # the Heycommerce event for a completed purchase (5.6)


class HeyloyaltyConfig(ConnectionConfig):
    """One Heyloyalty account and the list the integration writes to.

    ``api_secret`` signs every request (HMAC over ``X-Request-Timestamp``); it never leaves
    the auth flow. ``default_region`` is the list's country: Heyloyalty prefixes the country's
    calling code when it sends an SMS, so mobiles are written in that country's national form.
    """

    platform: Literal["heyloyalty"]
    base_url: str = "https://api.heyloyalty.com/loyalty/v1"
    api_key: str
    api_secret: SecretStr
    list_id: int
    tracking_base_url: str = "https://tracking.heycommerce.dk/api"
    tracking_id: str | None = None
    """The Heycommerce tracking integration id (section 5.6); purchases need it."""
    default_region: str | None = "DK"
    concurrency: int = Field(default=8, ge=1)
    """Member upserts in flight at once: the API writes one member per request."""
    tracking_batch_size: int = Field(default=200, ge=1, le=5000)
    """Orders per tracking-import call."""


class MappingOptions(BaseModel):
    """The integration's field mapping (the sync's ``mapping:`` block).

    ``fields`` adds or overrides list fields (list field -> source path); ``remove`` drops
    default fields. Paths are split on ``separator`` (``cards.Cardnumber`` reads
    ``{"cards": {"Cardnumber": 1234}}``); a one-part path naming a canonical field
    (``email``, ``mobile``, ``first_name``, ``last_name``, ``external_id``) reads the
    normalised value instead of the raw payload.
    """

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)
    separator: str = Field(default=".", min_length=1)
    date_format: str = "%Y-%m-%d"
    """strftime format of dates written to list fields (Heyloyalty date fields take Y-m-d).
    Dates in the source payload are recognised as date objects or ISO 8601 strings; reading a
    venue's own source format is the source's job (Ticketmaster's ``date_format``)."""
    tracking_fields: dict[str, str] = Field(default_factory=dict)
    """Tracking field -> ``order...`` or ``ticket...`` path. Given keys override the defaults;
    an empty path drops an optional field."""

    @field_validator("fields")
    @classmethod
    def _paths(cls, value: dict[str, str]) -> dict[str, str]:
        empty = sorted(k for k, v in value.items() if not v.strip() or not k.strip())
        if empty:
            raise ValueError(f"mapping.fields: empty field name or path for {empty}")
        return {k.strip(): v.strip() for k, v in value.items()}

    @model_validator(mode="after")
    def _tracking(self) -> MappingOptions:
        sep = self.separator
        merged = {k: sep.join(parts) for k, parts in DEFAULT_TRACKING_FIELDS.items()}
        merged.update({k.strip(): v.strip() for k, v in self.tracking_fields.items()})
        dropped = [k for k in REQUIRED_TRACKING_FIELDS if not merged.get(k)]
        if dropped:
            raise ValueError(f"mapping.tracking_fields: {dropped} cannot be removed")
        for name, path in merged.items():
            root = path.split(sep, 1)[0]
            if path and root not in ("order", "ticket"):
                raise ValueError(
                    f"mapping.tracking_fields.{name}: path {path!r} must start with "
                    f"'order{sep}' or 'ticket{sep}'"
                )
        self.tracking_fields = {k: v for k, v in merged.items() if v}
        return self

    def member_fields(self) -> dict[str, str]:
        """The effective customer mapping: defaults, plus ``fields``, minus ``remove``."""
        merged = {**DEFAULT_MEMBER_FIELDS, **self.fields}
        return {k: v for k, v in merged.items() if k not in set(self.remove)}


class MembersOptions(ObjectOptions):
    """Options of the ``members`` object (the sync's ``destination:`` block).

    Defaults follow the integration page: create and update, previously unsubscribed members
    may be imported again, no opt-in mail, no automations, no webhooks.
    """

    match: MatchField = "email"
    """The list field members are recognised by (``unique_field`` of the upsert)."""
    import_type: ImportType = "create_update"
    resubscribe_unsubscribed: bool = True
    send_optin: bool = False
    """The member must confirm by email before joining (the API's opt-in; skipOptIn off)."""
    trigger_automations: bool = False
    send_webhooks: bool = False
    errors_to: str | None = None
    """Who Heyloyalty e-mails when a tracking import has errors (``sendErrorsTo``)."""
    mapping: MappingOptions = Field(default_factory=MappingOptions)

    @field_validator("match", mode="before")
    @classmethod
    def _one_match(cls, value: Any) -> Any:
        # The engine passes the sync-level ``match: [email]``; Heyloyalty matches on one field.
        if isinstance(value, list | tuple):
            if len(value) != 1:
                raise ValueError(
                    "Heyloyalty recognises members by one field: match must be email or mobile, "
                    f"not {list(value)}"
                )
            return value[0]
        return value

    @model_validator(mode="after")
    def _match_is_mapped(self) -> MembersOptions:
        if self.match not in self.mapping.member_fields():
            raise ValueError(
                f"the match field {self.match!r} is removed from the mapping; it must be sent"
            )
        return self
