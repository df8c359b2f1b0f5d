"""SECUTIX 360's own payloads, parsed tolerantly (unknown keys kept: ``extra="allow"``).

Every answer carries the envelope ``{requestId, statusCode, statusDetail}`` [DOC 7.2]; the
rest is the method's result. Contact numbers are numbers in S-360; they are kept as text here
(the ledger's ids are text), whichever of the two the answer uses.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class Envelope(_Payload):
    """The result convention of every S-360 method."""

    request_id: str | None = Field(default=None, validation_alias="requestId")
    status_code: str = Field(validation_alias="statusCode")
    status_detail: str | None = Field(default=None, validation_alias="statusDetail")

    @field_validator("request_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return _text(value)


class TokenAnswer(Envelope):
    """The token method's answer; the token's key is a setting, so it is read from extras."""


class ContactOut(_Payload):
    """A contact as ``searchContact`` lists it (a few of ContactDataResult's fields)."""

    contact_number: str = Field(validation_alias="contactNumber")
    email: str | None = None
    first_name: str | None = Field(
        default=None, validation_alias=AliasChoices("firstName", "firstname")
    )
    last_name: str | None = Field(
        default=None, validation_alias=AliasChoices("lastName", "lastname")
    )

    @field_validator("contact_number", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return _text(value)


class SearchResult(Envelope):
    contacts: list[ContactOut] = Field(default_factory=list)


class CreationResult(Envelope):
    """``CulturalContactCreationResult{culturalContactData, identifierContactMap, ...}``."""

    cultural_contact_data: list[dict[str, Any]] = Field(
        default_factory=list, validation_alias="culturalContactData"
    )
    identifier_contact_map: dict[str, str] = Field(
        default_factory=dict, validation_alias="identifierContactMap"
    )

    @field_validator("identifier_contact_map", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        return value
