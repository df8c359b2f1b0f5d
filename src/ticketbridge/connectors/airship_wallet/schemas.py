"""Airship Wallet's own payloads, parsed tolerantly (unknown keys kept: ``extra="allow"``).

Key names the documents disagree on (``eventId``/``id``, a bare link array or
``{"links": [...]}``) are all accepted, so a change of spelling on Wallet's side never breaks
a run. Also here: verifying and parsing the callbacks Wallet sends (pure, no HTTP).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from ticketbridge.errors import CallbackRefused


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class EventOut(_Payload):
    """An event as the event endpoints return it."""

    event_id: int | None = Field(default=None, validation_alias=AliasChoices("eventId", "id"))
    external_id: str | None = Field(
        default=None, validation_alias=AliasChoices("eventExternalId", "externalId")
    )
    project_id: int | None = Field(default=None, validation_alias="projectId")
    pass_groups: list[str] = Field(default_factory=list, validation_alias="passGroups")
    fields: dict[str, Any] = Field(default_factory=dict)


class LinkOut(_Payload):
    """One attendee's adaptive link from ``POST /links/adaptive/multiple/...``."""

    adaptive_link_id: str | None = Field(default=None, validation_alias="adaptiveLinkId")
    external_id: str | None = Field(default=None, validation_alias="adaptiveLinkExternalId")
    url: str | None = None
    ios_url: str | None = Field(default=None, validation_alias="iosUrl")
    android_url: str | None = Field(default=None, validation_alias="androidUrl")
    ios_pass_link_id: str | None = Field(default=None, validation_alias="iosPassLinkId")
    android_pass_link_id: str | None = Field(default=None, validation_alias="androidPassLinkId")
    event_id: int | None = Field(default=None, validation_alias="eventId")
    event_external_id: str | None = Field(default=None, validation_alias="eventExternalId")
    status: int = 200

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def dest_ids(self) -> dict[str, str]:
        """What the ledger keeps per ticket (a links export reads the pass URL from it)."""
        pairs = {
            "link": self.adaptive_link_id,
            "url": self.url,
            "ios_url": self.ios_url,
            "android_url": self.android_url,
            "ios_pass_link": self.ios_pass_link_id,
            "android_pass_link": self.android_pass_link_id,
            "event_id": None if self.event_id is None else str(self.event_id),
        }
        return {k: v for k, v in pairs.items() if v}


def links_of(body: Any) -> list[LinkOut]:
    """The links of a response that is a bare array (the schema page) or ``{"links": [...]}``
    (platforms.md). Anything else is not the documented shape: an error, never "no links"."""
    if isinstance(body, dict):
        body = body.get("links")
    if not isinstance(body, list):
        raise ValueError("adaptive-link response is neither an array nor {'links': [...]}")
    return [LinkOut.model_validate(item) for item in body if isinstance(item, dict)]


class PassSummary(_Payload):
    id: int
    template_id: int | None = Field(default=None, validation_alias="templateId")
    external_id: str | None = Field(default=None, validation_alias="externalId")
    serial_number: str | None = Field(default=None, validation_alias="serialNumber")
    url: str | None = None
    status: str | None = None
    updated_at: str | None = Field(default=None, validation_alias="updatedAt")


class PassPage(_Payload):
    count: int = 0
    passes: list[PassSummary] = Field(default_factory=list)
    pagination: dict[str, Any] = Field(default_factory=dict)


class Project(_Payload):
    id: int | None = None
    name: str | None = None
    project_type: str | None = Field(default=None, validation_alias="projectType")


class Template(_Payload):
    id: int | None = None
    name: str | None = None
    vendor: str | None = None


class TokenAnswer(_Payload):
    access_token: str
    expires_in: float | None = None
    token_type: str | None = None


# -- callbacks ------------------------------------------------------------------------------


def _id_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | str) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise ValueError(f"not an id: {type(value).__name__}")


IdText = Annotated[str | None, BeforeValidator(_id_text)]


class CallbackEvent(_Payload):
    """What Wallet POSTs to ``{baseUrl}/pass/install`` (``/uninstall``, ``/{id}/personalize``)."""

    kind: str = ""  # from the path: "install", "uninstall" or "personalize"
    # Ids arrive as numbers or strings depending on the document: both are read as text.
    pass_id: IdText = Field(default=None, validation_alias="passId")
    template_id: IdText = Field(default=None, validation_alias="templateId")
    serial_number: str | None = Field(default=None, validation_alias="serialNumber")
    external_id: IdText = Field(default=None, validation_alias="externalId")
    platform: str | None = None
    created_at: str | None = Field(default=None, validation_alias="createdAt")
    updated_at: str | None = Field(default=None, validation_alias="updatedAt")


def check_callback_secret(headers: Mapping[str, str], *, header: str, secret: str) -> None:
    """Raise :class:`CallbackRefused` (status 401) unless ``header`` carries ``secret``,
    compared in constant time. An empty secret refuses everything. The message names the
    header, never a value."""
    sent = next((v for k, v in headers.items() if k.lower() == header.lower()), "")
    if not secret or not hmac.compare_digest(sent.encode(), secret.encode()):
        raise CallbackRefused(f"callback refused: header {header} missing or wrong")


def verify_callback(
    headers: Mapping[str, str], body: bytes, path: str, *, header: str, secret: str
) -> CallbackEvent:
    """Check that a callback carries the secret header registered with the project (compared
    in constant time) and parse it. ``path`` is the request path under the base URL.

    Raises :class:`CallbackRefused`: status 401 without the secret, 400 for a body that is not
    a pass event. Its message never contains either secret.
    """
    check_callback_secret(headers, header=header, secret=secret)
    try:
        raw = orjson.loads(body)
        parsed = CallbackEvent.model_validate(raw)
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise CallbackRefused(
            f"callback body is not a pass event: {type(exc).__name__}", status=400
        ) from None
    parts = [p for p in path.split("/") if p]
    parsed.kind = parts[-1] if parts else ""
    return parsed
