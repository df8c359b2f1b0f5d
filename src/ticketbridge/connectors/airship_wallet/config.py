"""Connection settings and the options of the ``event_tickets`` object.

Facts come from ``platforms.md`` section 3 (Airship Wallet) and the vendor's event-ticket
schema page. Where those are marked [GAP] or [INFER], or disagree with each other, the choice
is a setting here with the documented value as its default, never a constant elsewhere.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ticketbridge.connectors.base import ConnectionConfig, ObjectOptions

PLATFORM = "airship_wallet"

# The fake credentials the sandbox accepts (never real ones: platforms.md, "Secrets").
SANDBOX_PROJECT_ID = 12345
SANDBOX_PROJECT_KEY = "sandbox-wallet-key"
SANDBOX_SECRET = "sandbox-wallet-secret"  # noqa: S105
SANDBOX_CLIENT_ID = "sandbox-wallet-client"
SANDBOX_CLIENT_SECRET = "sandbox-wallet-client-secret"  # noqa: S105
SANDBOX_IOS_TEMPLATE = 1001
SANDBOX_ANDROID_TEMPLATE = 1002

# The vendor page lists "GPB" among the currencies; ISO 4217 (and every payment system) says
# GBP, so the list here carries GBP.
WALLET_CURRENCIES = (
    "USD",
    "EUR",
    "CNY",
    "JPY",
    "GBP",
    "RUB",
    "AUD",
    "CHF",
    "CAD",
    "HKD",
    "SEK",
    "NZD",
    "KRW",
    "SGD",
    "NOK",
    "MXN",
    "INR",
)

DEFAULT_LABELS: dict[str, str] = {
    # Event fields: the defaults the schema page gives ("Defaults to Doors Open" ...).
    "eventName": "Event",
    "venueTitle": "Venue",
    "venueName": "Venue",
    "venueAddress": "Address",
    "doorsOpen": "Doors Open",
    "startTime": "Start Time",
    "endTime": "End Time",
    # Attendee fields.
    "ticketHolderName": "Name",
    "seat": "Seat",
    "row": "Row",
    "section": "Section",
    "gate": "Gate",
    "ticketType": "Type",
    "ticketNumber": "Ticket",
    "confirmationCode": "Confirmation",
    "faceValue": "Price",
    "status": "Status",
}

# ``%@`` is where Wallet puts the new value. Apple shows a change message only when the value
# really changed, so sending the message with every field of a partial update notifies the
# holder about exactly the fields that moved.
DEFAULT_CHANGE_MESSAGES: dict[str, str] = {
    "seat": "Seat changed to %@",
    "row": "Row changed to %@",
    "section": "Section changed to %@",
    "gate": "Gate changed to %@",
    "ticketHolderName": "Ticket now held by %@",
    "status": "Ticket %@",
    "startTime": "Start time changed to %@",
    "doorsOpen": "Doors now open at %@",
    "endTime": "End time changed to %@",
    "venueTitle": "Venue changed to %@",
    "venueName": "Venue changed to %@",
    "venueAddress": "Venue address changed to %@",
}

DEFAULT_STATUS_VALUES: dict[str, str] = {
    "active": "Valid",
    "valid": "Valid",
    "issued": "Valid",
    "attended": "Attended",
    "checked_in": "Attended",
    "cancelled": "Cancelled",
    "canceled": "Cancelled",
    "refunded": "Cancelled",
    "void": "Cancelled",
    "voided": "Cancelled",
}


VenueField = Literal["venueTitle", "venueName"]
VENUE_TITLE: VenueField = "venueTitle"


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
MIN_CALLBACK_SECRET = 16


class WalletCallbacks(BaseModel):
    """``callbacks:`` of a Wallet connection: where Wallet sends pass install and uninstall
    callbacks, and the header secret that proves a callback came from Wallet.

    A project has one callback URL (``/project/{projectId}/settings/callback``), so this is a
    setting of the connection, not of a sync. ``ticketbridge serve`` registers it with the
    project (unless ``register_on_start: false``) and serves it; the connector itself only
    sends the registration.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    """The base URL Wallet calls (``{url}/pass/install``...), as Wallet reaches it (behind a
    proxy, the public one). Default: ``http://{host}:{port}``."""
    host: str = "127.0.0.1"
    port: int = Field(default=8490, ge=1, le=65535)
    header: str = "X-Ticketbridge-Callback-Secret"
    """The header Wallet is told to send with every callback, carrying ``secret``."""
    secret: SecretStr
    register_on_start: bool = True
    """Register ``url`` and the header with the project when ``serve`` starts."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http:// or https:// URL: {value!r}")
        if parts.query or parts.fragment:
            raise ValueError("the callback URL takes no query or fragment")
        return value.rstrip("/")

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError(f"not an HTTP header name: {value!r}")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        # Empty only while secrets are not loaded (read-only commands); serve refuses it.
        if 0 < len(value.get_secret_value()) < MIN_CALLBACK_SECRET:
            raise ValueError(f"the callback secret must be at least {MIN_CALLBACK_SECRET} long")
        return value

    @property
    def base_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"


class AirshipWalletConfig(ConnectionConfig):
    """One Wallet project, reached with Basic (project key and secret) or OAuth 2.0 client
    credentials. Secrets are ``SecretStr``; every request carries ``Api-Revision``."""

    platform: Literal["airship_wallet"]
    base_url: str = "https://wallet-api.urbanairship.com/v1"  # EU: wallet-api.asnapieu.com/v1
    project_id: int
    auth: Literal["basic", "oauth"] = "basic"
    project_key: str | None = None
    project_secret: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str = "https://oauth2.asnapius.com/token"  # noqa: S105 - EU: oauth2.asnapieu.com/token
    oauth_scope: str | None = "wpas wadl"
    """[DOC] scopes include ``wpas`` (passes) and ``wadl`` (adaptive links); which further
    scopes events need is a [GAP], so the requested scope is a setting."""
    oauth_subject: str | None = None
    """[GAP] whether Wallet wants a ``sub`` in the grant; sent only when set."""
    oauth_client_auth: Literal["basic", "body"] = "basic"
    """[INFER] client credentials as a Basic header (RFC 6749's preferred way) or in the body."""
    token_lifetime_s: float = 3600.0
    """Assumed when the token answer has no ``expires_in`` ([DOC]: tokens last one hour)."""
    token_refresh_margin_s: float = 300.0
    """Renew this long before expiry (capped at a tenth of the lifetime)."""
    api_revision: str = "1.2"
    ios_template_id: int | None = None
    android_template_id: int | None = None
    batch_size: int = Field(default=100, ge=1)
    """[GAP] attendees per adaptive-link request: no limit is documented."""
    concurrency: int = Field(default=4, ge=1)
    """Pass and pass-group updates in flight at once."""
    links_body: Literal["payload_events", "flat"] = "payload_events"
    """Shape of the adaptive-link request: the schema page's ``{"payload": {"events": [{...,
    "attendees"}]}}``, or platforms.md's flat ``{"eventExternalId", "attendees"}``; the two
    sources disagree [INFER]."""

    callbacks: WalletCallbacks | None = None
    """Serve and register install/uninstall callbacks (see :class:`WalletCallbacks`)."""

    def secrets(self) -> list[str]:
        found = super().secrets()
        if self.callbacks is not None and self.callbacks.secret.get_secret_value():
            found.append(self.callbacks.secret.get_secret_value())
        return found

    @model_validator(mode="after")
    def _credentials(self) -> AirshipWalletConfig:
        # A secret that is set but empty passes here: read-only commands load the file with
        # unset ${VAR}s as "" and need no secret (a command that connects insists on it).
        if self.auth == "basic" and not (self.project_key and self.project_secret is not None):
            raise ValueError("auth: basic needs project_key and project_secret")
        if self.auth == "oauth" and not (self.client_id and self.client_secret is not None):
            raise ValueError("auth: oauth needs client_id and client_secret")
        if self.ios_template_id is None and self.android_template_id is None:
            raise ValueError("set ios_template_id and/or android_template_id")
        return self

    @property
    def templates(self) -> list[int]:
        """The templates links are issued from, and whose passes follow ticket changes."""
        return [t for t in (self.ios_template_id, self.android_template_id) if t is not None]


class EventTicketsOptions(ObjectOptions):
    """Options of the ``event_tickets`` object (the sync's ``destination:`` block)."""

    event_id_prefix: str = ""
    """Prepended to the canonical event id to make the Wallet ``eventExternalId``."""
    pass_group: str = "event-{event}"  # noqa: S105 - a name, not a secret
    """Name of the pass group every event joins (``{event}`` is its external id)."""
    link_id: Literal["number", "key"] = "number"
    """``adaptiveLinkExternalId``: the ticket number, or the record key (unique across
    sources when several feed one project)."""
    venue_fields: list[VenueField] = Field(default_factory=lambda: [VENUE_TITLE], min_length=1)
    """The schema page names the venue ``venueTitle``; platforms.md's example also sends
    ``venueName`` [INFER which one a template shows]: list both to send both."""
    labels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LABELS))
    change_messages: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CHANGE_MESSAGES))
    time_format: Literal["utc_z", "naive_utc"] = "utc_z"
    """Event times as ``2024-05-01T19:00:00Z``, or without the zone as the schema page's
    examples show them [INFER which Wallet prefers]."""
    status_field: str = "status"
    """[INFER] attendee field carrying the ticket status (not in the documented schema)."""
    status_values: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATUS_VALUES))
    """Canonical ticket status (case-insensitive) -> text on the pass; others pass as given."""
    cancelled_statuses: list[str] = Field(
        default_factory=lambda: ["cancelled", "canceled", "refunded", "void", "voided"]
    )
    voided_barcode: str = "VOID"
    """[GAP] Wallet documents no way to void a barcode: a cancelled ticket's barcode value is
    replaced by this text (a scanner then refuses it) and its alt text by ``voided_alt_text``."""
    voided_alt_text: str = "CANCELLED"
    confirmation_attribute: str = "confirmation_code"
    """Ticket attribute holding the reservation's confirmation code, when a source sets it."""
    currencies: list[str] = Field(default_factory=lambda: list(WALLET_CURRENCIES))
    """Currencies ``faceValue`` accepts (the schema page's list, which lacks DKK)."""
    other_currencies: Literal["refuse", "omit"] = "refuse"
    """A price in a currency not in ``currencies``: refuse the ticket (a dead letter naming
    the currency), or ``omit`` the price, so the pass shows none."""
    sharing_status: Literal["multipleHolders", "oneUserAllDevices", "oneUserOneDevice"] | None = (
        None
    )
    """``sharingStatus`` of every pass; unset keeps the template's setting."""

    @model_validator(mode="after")
    def _merge_defaults(self) -> EventTicketsOptions:
        # A partial map overrides the defaults rather than dropping the others.
        self.labels = {**DEFAULT_LABELS, **self.labels}
        self.change_messages = {**DEFAULT_CHANGE_MESSAGES, **self.change_messages}
        self.status_values = {
            k.casefold(): v for k, v in {**DEFAULT_STATUS_VALUES, **self.status_values}.items()
        }
        self.cancelled_statuses = [s.casefold() for s in self.cancelled_statuses]
        self.currencies = [c.upper() for c in self.currencies]
        return self
