"""Heyloyalty's own payloads, parsed tolerantly (unknown keys kept, ``extra="allow"``).

Shapes from platforms.md 5.3/5.4: a list carries ``fields`` (fixed and custom, by ``name``); a
member carries ``id``, a ``status`` object (``status``, ``email``, ``mobile``) and its list
field values at the top level next to bookkeeping keys; the upsert answers
``{type, member_id}``. Ids of lists may come as numbers or strings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Keys of a member object that are bookkeeping, not list fields.
MEMBER_META = frozenset(
    {
        "id",
        "status",
        "sent_mail",
        "sent_sms",
        "open_rate",
        "imported",
        "created_at",
        "updated_at",
        "list_id",
    }
)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class ListField(_Payload):
    """One field of a list: ``type`` is ``fixed`` or ``custom``; ``name`` is what members use."""

    id: int | str | None = None
    name: str
    type: str | None = None
    format: str | None = None
    label: str | None = None
    options: list[Any] = Field(default_factory=list)


class HlList(_Payload):
    id: int
    name: str = ""
    country_id: int | str | None = None
    fields: list[ListField] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _int_id(cls, value: Any) -> int:
        return int(value)

    def field_names(self) -> set[str]:
        return {f.name for f in self.fields}


class MemberStatus(_Payload):
    status: str | None = None
    email: str | None = None
    mobile: str | None = None


class Member(_Payload):
    id: str
    status: MemberStatus = Field(default_factory=MemberStatus)

    @field_validator("id", mode="before")
    @classmethod
    def _str_id(cls, value: Any) -> str:
        return str(value)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        # Some answers give the status as a bare string; treat it as the overall status.
        return {"status": value} if isinstance(value, str) else (value or {})

    def fields(self) -> dict[str, Any]:
        """The member's list field values (everything that is not bookkeeping)."""
        extra = self.model_extra or {}
        return {k: v for k, v in extra.items() if k not in MEMBER_META}

    def unsubscribed(self, channel: str) -> bool:
        """Unsubscribed from the list, or from the channel the integration matches on."""
        own = self.status.email if channel == "email" else self.status.mobile
        return "unsubscribed" in (self.status.status, own)


class UpsertResult(_Payload):
    type: str
    member_id: str

    @field_validator("member_id", mode="before")
    @classmethod
    def _str_id(cls, value: Any) -> str:
        return str(value)


def members_of(body: Any) -> list[Member]:
    """Members of a ``GET /lists/{id}/members`` answer: ``{"members": [...]}`` or a bare list."""
    if isinstance(body, dict):
        body = body.get("members", [])
    if not isinstance(body, list):
        return []
    return [Member.model_validate(m) for m in body if isinstance(m, dict) and m.get("id")]


def lists_of(body: Any) -> list[HlList]:
    if isinstance(body, dict):
        body = body.get("lists", [])
    if not isinstance(body, list):
        return []
    return [HlList.model_validate(item) for item in body if isinstance(item, dict)]
