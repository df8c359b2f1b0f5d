"""The Airship CRM sandbox: the REST v1 routes ticketbridge uses, over :class:`AirshipStore`.

Faithful to ``platforms.md`` section 2: Bearer Personal Access Token (401
``{"errors":[{"message":"Unauthorized"}]}``), ``account_id`` in the query or the JSON body
(missing -> 422, another account -> 403), values rendered as strings (``"1"``), Laravel
pagination on ``/v1/account/units`` (100 per page), 422 ``{"errors":[{message, field}]}`` for
validation, 404 with the same error shape for unknown records, and injected faults (429
"Too Many Attempts." with Retry-After, 5xx) in that shape too.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.airship_crm.config import PLATFORM, SANDBOX_TOKEN
from ticketbridge.connectors.airship_crm.sandbox_store import (
    SOURCES,
    STAGES,
    TYPES,
    AirshipStore,
    Booking,
    Contact,
    Invalid,
)
from ticketbridge.sandbox import JsonResponse, SandboxApp, Stats

PER_PAGE = 100

Handler = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def airship_error(status: int, message: str, field: str | None = None) -> JsonResponse:
    error: dict[str, str] = {"message": message}
    if field:
        error["field"] = field
    return JsonResponse({"errors": [error]}, status_code=status)


def _s(value: Any) -> Any:
    """Airship's string-typed rendering: numbers and flags as strings, null stays null."""
    if value is None or isinstance(value, list | dict):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Api:
    def __init__(self, store: AirshipStore) -> None:
        self.store = store

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Bearer auth, JSON body, and the account check every route shares."""

        async def endpoint(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            if auth != f"Bearer {SANDBOX_TOKEN}":
                return airship_error(401, "Unauthorized")
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return airship_error(400, "Malformed JSON body.")
            if not isinstance(body, dict):
                return airship_error(400, "The request body must be a JSON object.")
            account = request.query_params.get("account_id", body.get("account_id"))
            if account in (None, ""):
                return airship_error(422, "The account id field is required.", "account_id")
            if str(account).strip() != str(self.store.account_id):
                return airship_error(403, "This action is unauthorized.")
            try:
                return await handler(request, body)
            except Invalid as exc:
                errors = [{"message": m, "field": f} for f, m in exc.errors]
                return JsonResponse({"errors": errors}, status_code=422)

        return endpoint

    # -- rendering ---------------------------------------------------------------------

    def contact_json(self, c: Contact) -> dict[str, Any]:
        names = {u.id: u.name for u in self.store.units}
        groups = {g.id: g.name for g in self.store.groups}
        return {
            "id": _s(c.id),
            "first_name": c.first_name,
            "last_name": c.last_name,
            "email": c.email,
            "mobile_number": c.mobile_number,
            "gender": c.gender or "",
            "dob": c.dob,
            "allow_sms": _s(c.allow_sms),
            "allow_email": _s(c.allow_email),
            "allow_call": "0",
            "allow_snail_mail": "0",
            "source": c.source_name,
            "udfs": [],
            "units": [
                {
                    "id": _s(uid),
                    "name": names[uid],
                    "groups": [{"id": _s(g), "name": groups[g]} for g in gids],
                }
                for uid, gids in c.units.items()
            ],
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "feedback_link": f"https://feedback.sandbox.invalid/{c.id}",
        }

    def booking_json(self, b: Booking) -> dict[str, Any]:
        fields = (
            "booking_reference",
            "id",
            "contact_id",
            "unit_id",
            "stage_value",
            "type_id",
            "source_id",
            "party_datetime",
            "party_enquirytime",
            "party_size",
            "deposit_paid",
            "hpbr_drink",
            "hpbr_food",
            "hpbr_entertainment",
            "provider_id",
            "updated_at",
        )
        out = {name: _s(getattr(b, name)) for name in fields}
        out.update(
            booking_contact_id=_s(b.id),
            account_id=_s(self.store.account_id),
            datetime=b.created_at,
            table_numbers=b.table_numbers,
            data=b.data,
            notes=b.notes,
        )
        return out

    # -- routes ------------------------------------------------------------------------

    async def units(self, request: Request, body: dict[str, Any]) -> Response:
        units = self.store.units
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        last = max(1, math.ceil(len(units) / PER_PAGE))
        chunk = units[(page - 1) * PER_PAGE : page * PER_PAGE]
        path = str(request.url.remove_query_params(["page", "account_id"]))

        def url(n: int | None) -> str | None:
            return f"{path}?page={n}" if n is not None else None

        start = (page - 1) * PER_PAGE + 1
        return JsonResponse(
            {
                "current_page": page,
                "data": [{"id": _s(u.id), "name": u.name, "is_root": _s(u.is_root)} for u in chunk],
                "first_page_url": url(1),
                "from": start if chunk else None,
                "last_page": last,
                "last_page_url": url(last),
                "next_page_url": url(page + 1 if page < last else None),
                "path": path,
                "per_page": PER_PAGE,
                "prev_page_url": url(page - 1 if page > 1 else None),
                "to": start + len(chunk) - 1 if chunk else None,
                "total": len(units),
            }
        )

    async def upsert_contact(self, request: Request, body: dict[str, Any]) -> Response:
        contact, created = self.store.upsert_contact(body)
        status = 201 if created else 200  # [INFER] Laravel's created vs updated
        if body.get("full_contact_object", True) is False:
            return JsonResponse({"id": _s(contact.id)}, status_code=status)
        return JsonResponse(self.contact_json(contact), status_code=status)

    async def search_contacts(self, request: Request, body: dict[str, Any]) -> Response:
        query = {**request.query_params, **body}  # the body is the documented place
        if query.get("email"):
            found = self.store.by_email(str(query["email"]))
        elif query.get("mobile_number"):
            found = self.store.by_mobile(str(query["mobile_number"]))
        elif isinstance(query.get("name"), dict):
            name = query["name"]
            matches = self.store.by_name(name.get("first_name"), name.get("last_name"))
            return JsonResponse([self.contact_json(c) for c in matches])
        else:
            raise Invalid([("email", "An email, mobile_number or name is required.")])
        if found is None:
            return airship_error(404, "Contact not found.")
        return JsonResponse(self.contact_json(found))

    async def find_booking(self, request: Request, body: dict[str, Any]) -> Response:
        reference = request.query_params.get("booking_reference") or body.get("booking_reference")
        elements = {k: v for k, v in request.query_params.items() if k.startswith("element_")}
        if reference:
            found = self.store.booking_by_reference(str(reference))
        elif elements:
            found = next(iter(self.store.bookings_by_elements(elements)), None)
        else:
            raise Invalid(
                [("booking_reference", "The booking reference or a data element is required.")]
            )
        if found is None:
            return airship_error(404, "Booking not found.")
        return JsonResponse(self.booking_json(found))

    async def update_booking(self, request: Request, body: dict[str, Any]) -> Response:
        try:
            booking_id = int(request.path_params["booking_id"])
        except ValueError:
            return airship_error(404, "Booking not found.")
        booking = self.store.update_booking(booking_id, body)
        if booking is None:
            return airship_error(404, "Booking not found.")
        return JsonResponse(self.booking_json(booking))

    async def sources(self, request: Request, body: dict[str, Any]) -> Response:
        return JsonResponse([{"id": _s(k), "name": v} for k, v in SOURCES.items()])

    async def types(self, request: Request, body: dict[str, Any]) -> Response:
        return JsonResponse([{"id": _s(k), "name": v} for k, v in TYPES.items()])

    async def stages(self, request: Request, body: dict[str, Any]) -> Response:
        return JsonResponse(
            [
                {"id": _s(value), "name": name, "range_from": _s(lo), "range_to": _s(hi)}
                for value, name, lo, hi in STAGES
            ]
        )


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 0,
    today: datetime | None = None,
    units: list[str] | None = None,
    account_id: int = 1,
) -> SandboxApp:
    """An Airship CRM account with ``units`` (plus the root unit) and ``records`` existing
    contacts (Faker, seeded). Unit ids are ``1000 * account_id + n`` (root ``+ 0``)."""
    stats = Stats()
    store = AirshipStore(
        stats=stats, seed=seed, records=records, today=today, units=units, account_id=account_id
    )
    api = _Api(store)
    g = api.guarded
    routes: list[BaseRoute] = [
        Route("/v1/account/units", g(api.units), methods=["GET"]),
        Route("/v1/contact", g(api.upsert_contact), methods=["POST"]),
        Route("/v1/contacts", g(api.search_contacts), methods=["GET"]),
        Route("/v1/bookings", g(api.find_booking), methods=["GET"]),
        Route("/v1/bookings/{booking_id}", g(api.update_booking), methods=["POST"]),
        Route("/v1/booking/sources", g(api.sources), methods=["GET"]),
        Route("/v1/booking_types", g(api.types), methods=["GET"]),
        Route("/v1/booking/stage_values", g(api.stages), methods=["GET"]),
    ]
    return SandboxApp(
        platform=PLATFORM,
        store=store,
        routes=routes,
        stats=stats,
        error_body=airship_error,
        credentials={"token": SANDBOX_TOKEN},
    )
