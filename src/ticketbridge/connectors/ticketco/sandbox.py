"""TicketCo simulator (platforms.md section 1): ``?token=`` auth, ``/events``, ``/events/{id}``,
``/events/{id}/status``, ``/item_grosses``, ``/customers``, pages from 1 until an empty page.

The routes only: the seeded data and the mutations live in :class:`TicketcoStore`
(``sandbox_store.py``).
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.ticketco.config import BASE, SANDBOX_TOKEN
from ticketbridge.connectors.ticketco.sandbox_store import (
    ADDRESSES,
    SANDBOX_VENUES,
    ZONE,
    TicketcoStore,
)
from ticketbridge.sandbox import JsonResponse, SandboxApp

# Fake credentials the sandbox issues (platforms.md: never reuse real tokens).
EVENTS_ONLY_TOKEN = "sandbox-ticketco-events-only"  # noqa: S105 - scoped to the Events data set

# Importers of the sandbox's names from before the store had its own module.
__all__ = [
    "BASE",
    "EVENTS_ONLY_TOKEN",
    "SANDBOX_TOKEN",
    "SANDBOX_VENUES",
    "ZONE",
    "TicketcoStore",
    "create_sandbox",
]


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class _Api:
    """HTTP handlers over the store: token check, filters, page slicing."""

    def __init__(self, store: TicketcoStore) -> None:
        self.store = store

    def _denied(self, request: Request, scope: str) -> Response | None:
        token = request.query_params.get("token")
        if token not in (SANDBOX_TOKEN, EVENTS_ONLY_TOKEN):
            return JsonResponse({"error": "Unauthorized"}, status_code=401)
        if token == EVENTS_ONLY_TOKEN and scope != "events":
            return JsonResponse({"error": "Forbidden"}, status_code=403)
        return None

    def _page(self, request: Request) -> tuple[int, int]:
        # ``per_page`` is [INFER] (TicketCo's page size is a GAP); it lets the connector's
        # page_size_param / page_size settings be exercised.
        size = _int(request.query_params.get("per_page"), self.store.page_size)
        return max(1, _int(request.query_params.get("page"), 1)), min(1000, max(1, size))

    async def events(self, request: Request) -> Response:
        if denied := self._denied(request, "events"):
            return denied
        q, store = request.query_params, self.store
        found = sorted(store.events, key=lambda ev: ev.id)
        if status := q.get("status"):
            found = [
                ev
                for ev in found
                if store.status(ev) == status
                or (status == "active" and store.status(ev) != "ended")
            ]
        if tags := {t.strip().casefold() for t in q.get("tags", "").split(",") if t.strip()}:
            found = [ev for ev in found if tags & {t.casefold() for t in ev.tags}]
        for param, attr in (("title", "title"), ("location", "location")):
            if text := q.get(param, "").strip().casefold():
                found = [ev for ev in found if text in getattr(ev, attr).casefold()]
        if text := q.get("street_address", "").strip().casefold():
            found = [ev for ev in found if text in ADDRESSES[ev.venue].casefold()]
        if (kind := q.get("type")) and kind.casefold() != "event":
            found = []
        if day := q.get("start_at"):  # an exact date, "2017-1-1" style (PHP client docs)
            parts = [_int(p, 0) for p in day.split("-")[:3]]
            found = [
                ev
                for ev in found
                if (at := store.start_of(ev)) and [at.year, at.month, at.day] == parts
            ]
        page, size = self._page(request)
        chunk = found[(page - 1) * size : page * size]
        return JsonResponse({"events": [store.event_json(ev) for ev in chunk]})

    async def event(self, request: Request) -> Response:
        if denied := self._denied(request, "events"):
            return denied
        ev = self.store.event_by_id(request.path_params["id"])
        if ev is None:
            return JsonResponse({"error": "Not found"}, status_code=404)
        if request.url.path.endswith("/status"):
            return JsonResponse({"status": self.store.status(ev)})
        return JsonResponse(self.store.event_json(ev))

    async def item_grosses(self, request: Request) -> Response:
        if denied := self._denied(request, "item_grosses"):
            return denied
        events = self.store.events
        if (event_id := request.query_params.get("event_id")) is not None:
            ev = self.store.event_by_id(event_id)
            if ev is None:
                return JsonResponse({"error": "Not found"}, status_code=404)
            events = [ev]
        pii = request.query_params.get("pii", "true").strip().lower() not in ("false", "0")
        page, size = self._page(request)
        return JsonResponse({"item_grosses": self.store.item_page(events, page, size, pii)})

    async def customers(self, request: Request) -> Response:
        if denied := self._denied(request, "customers"):
            return denied
        page, size = self._page(request)
        first = (page - 1) * size
        last = min(self.store.n_customers, first + size)
        return JsonResponse(
            {"customers": [self.store.customer_json(c) for c in range(first, last)]}
        )

    async def not_found(self, request: Request) -> Response:
        return self._denied(request, "events") or JsonResponse(
            {"error": "Not found"}, status_code=404
        )


def create_sandbox(
    *, seed: int = 42, records: int = 200, today: datetime | None = None, page_size: int = 100
) -> SandboxApp:
    """A TicketCo sandbox: the same seed, records and today give byte-identical responses."""
    api = _Api(TicketcoStore(seed=seed, records=records, today=today, page_size=page_size))
    routes: list[BaseRoute] = [
        Route(f"{BASE}/events", api.events, methods=["GET"]),
        Route(f"{BASE}/events/{{id}}", api.event, methods=["GET"]),
        Route(f"{BASE}/events/{{id}}/status", api.event, methods=["GET"]),
        Route(f"{BASE}/item_grosses", api.item_grosses, methods=["GET"]),
        Route(f"{BASE}/customers", api.customers, methods=["GET"]),
        Route(f"{BASE}/{{rest:path}}", api.not_found),
    ]
    return SandboxApp(
        platform="ticketco",
        store=api.store,
        routes=routes,
        credentials={"TICKETCO_TOKEN": SANDBOX_TOKEN},
    )
