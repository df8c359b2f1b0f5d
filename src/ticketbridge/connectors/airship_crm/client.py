"""HTTP only: typed methods over ``http.ApiClient`` for the Airship CRM REST API (v1).

Every call carries ``account_id`` (query string for reads, JSON body for writes), draws from the
account's shared rate budget and goes through the one retry/translation path of ``ApiClient``:
401/403 -> AuthError, 422 -> RecordRejected (the field is in the message), 429 honours
Retry-After. The token lives in the auth flow only; no message here ever contains it.
"""

from __future__ import annotations

from typing import Any

from ticketbridge.connectors.airship_crm.config import PLATFORM, AirshipCrmConfig
from ticketbridge.connectors.airship_crm.schemas import (
    BookingOut,
    ContactOut,
    Unit,
    one_of,
)
from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.errors import FatalError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import bearer
from ticketbridge.http.outcomes import Action
from ticketbridge.http.paginate import laravel

# Lookups by key answer 404 for "no such record": that is an answer, not a failure.
_NOT_FOUND_IS_ANSWER = {404: Action.OK}


class AirshipCrmClient(ClientKit):
    def __init__(self, cfg: AirshipCrmConfig, ctx: HttpContext) -> None:
        super().__init__()
        self.account_id = cfg.account_id
        # One bucket per account, whichever sync writes to it (DESIGN guarantee 6).
        self.api = self.own(
            connection_client(
                cfg,
                ctx,
                platform=PLATFORM,
                account=f"{PLATFORM}:{cfg.base_url}:{cfg.account_id}",
                auth=bearer(cfg.token),
            )
        )

    def _query(self, **extra: Any) -> dict[str, Any]:
        return {"account_id": self.account_id, **extra}

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        return await self.api.request_json("POST", path, json_body=body)

    # -- units -------------------------------------------------------------------------

    async def units(self) -> list[Unit]:
        """Every unit (venue) of the account, all pages."""
        out: list[Unit] = []
        async for items, _ in laravel(self.api, "account/units", params=self._query()):
            out.extend(Unit.model_validate(item) for item in items)
        return out

    # -- contacts ----------------------------------------------------------------------

    async def upsert_contact(self, body: dict[str, Any]) -> ContactOut:
        """``POST /v1/contact``: create, or update the contact matching email, else mobile.

        ``body`` is sent as given plus ``account_id``; bookings inside it upsert on
        ``booking_reference``, so repeating the same call creates nothing new.
        """
        answer = await self._post("contact", {"account_id": self.account_id, **body})
        found = one_of(answer)
        if found is None:
            raise FatalError("POST /contact answered without a contact id", platform=PLATFORM)
        return ContactOut.model_validate(found)

    async def find_contact(
        self, *, email: str | None = None, mobile_number: str | None = None
    ) -> ContactOut | None:
        """``GET /v1/contacts`` with the documented JSON body search; None if not found."""
        if (email is None) == (mobile_number is None):
            raise ValueError("give exactly one of email or mobile_number")
        key = {"email": email} if email is not None else {"mobile_number": mobile_number}
        answer = await self.api.request_json(
            "GET",
            "contacts",
            json_body={"account_id": self.account_id, **key},
            table=_NOT_FOUND_IS_ANSWER,
        )
        found = one_of(answer)
        return None if found is None else ContactOut.model_validate(found)

    # -- bookings ----------------------------------------------------------------------

    async def find_booking(self, reference: str) -> BookingOut | None:
        """``GET /v1/bookings?booking_reference=``; None if the account has no such booking."""
        answer = await self.api.request_json(
            "GET",
            "bookings",
            params=self._query(booking_reference=reference),
            table=_NOT_FOUND_IS_ANSWER,
        )
        found = one_of(answer)
        return None if found is None else BookingOut.model_validate(found)

    async def update_booking(self, booking_id: int, body: dict[str, Any]) -> bool:
        """``POST /v1/bookings/{id}``; False if the id no longer exists (deleted in the CRM)."""
        answer = await self.api.request_json(
            "POST",
            f"bookings/{int(booking_id)}",
            json_body={"account_id": self.account_id, **body},
            table=_NOT_FOUND_IS_ANSWER,
        )
        # Only the 404 carries an errors body; any other 2xx answer means it was written.
        return not (isinstance(answer, dict) and "errors" in answer)
