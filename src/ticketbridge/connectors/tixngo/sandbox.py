"""TIXNGO simulator (platforms.md section 6): one organizer's diff feed and ticket injection.

* ``GET /organizer/tickets/diff?paginationKey=&limit=`` → ``{"tickets": [...],
  "nextPageKey": "<opaque>"}`` (6.4 [INFER]); an empty page keeps the key it was asked with.
* ``POST /organizer/tickets`` injects tickets (6.3 [DOC]): each needs ``ticketId``,
  ``event``, ``purchaseDetails``, ``security`` and ``spectatorDetails``.
* Auth (6.2 [INFER]): the organizer admin e-mail and API key in ``X-Organizer-Email`` /
  ``X-Api-Key`` (names settable), or HTTP Basic ``email:apiKey``. Anything else is a 401.

The routes only: the tickets, the change log and the mutations live in
:class:`TixngoStore` (``sandbox_store.py``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.tixngo.sandbox_store import (
    ORGANIZER,
    TixngoStore,
    decode_key,
    encode_key,
)
from ticketbridge.sandbox import JsonResponse, SandboxApp

# Fake credentials the sandbox issues (never real ones).
SANDBOX_API_KEY = "sandbox-tixngo-api-key"
DIFF_PATH = "/organizer/tickets/diff"
INJECT_PATH = "/organizer/tickets"
MAX_LIMIT = 10_000  # the reporting endpoint's documented maximum (6.4)
_REQUIRED = ("ticketId", "event", "purchaseDetails", "security", "spectatorDetails")

__all__ = ["DIFF_PATH", "ORGANIZER", "SANDBOX_API_KEY", "TixngoStore", "create_sandbox"]


def error(status: int, message: str) -> Response:
    return JsonResponse({"code": status, "message": message}, status_code=status)


class _Api:
    def __init__(self, store: TixngoStore, email_header: str, api_key_header: str) -> None:
        self.store = store
        self.email_header = email_header
        self.api_key_header = api_key_header

    def _denied(self, request: Request) -> Response | None:
        email = request.headers.get(self.email_header)
        key = request.headers.get(self.api_key_header)
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                email, _, key = base64.b64decode(basic[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return error(401, "Unauthorized")
        ok = (email or "").casefold() == ORGANIZER and secrets.compare_digest(
            (key or "").encode(), SANDBOX_API_KEY.encode()
        )
        return None if ok else error(401, "Unauthorized")

    async def diff(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        q = request.query_params
        try:
            limit = int(q.get("limit", "1000"))
        except ValueError:
            return error(400, "limit must be a number")
        if not 1 <= limit <= MAX_LIMIT:
            return error(400, f"limit must be between 1 and {MAX_LIMIT}")
        after = 0
        if (key := q.get("paginationKey")) is not None:
            found = decode_key(key)
            if found is None or found > self.store.last_seq:
                return error(400, "invalid paginationKey")
            after = found
        tickets, last = self.store.diff(after, limit)
        return JsonResponse({"tickets": tickets, "nextPageKey": encode_key(last)})

    async def inject(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(body, list):
            return error(400, "the body must be a list of tickets")
        problems = []
        for n, entry in enumerate(body):
            if not isinstance(entry, dict):
                problems.append({"index": n, "message": "not a ticket object"})
                continue
            missing = [k for k in _REQUIRED if not entry.get(k)]
            if missing:
                problems.append({"index": n, "message": f"missing: {', '.join(missing)}"})
            elif not isinstance(entry["event"], dict) or not entry["event"].get("id"):
                problems.append({"index": n, "message": "event.id is required"})
            elif not isinstance(entry["spectatorDetails"], dict):
                problems.append({"index": n, "message": "spectatorDetails must be an object"})
        if problems:
            # All or nothing [INFER]: a refused batch injects no ticket.
            return JsonResponse(
                {"code": 400, "message": "invalid tickets", "errors": problems}, status_code=400
            )
        return JsonResponse({"injected": self.store.inject(body)})


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 300,
    today: datetime | None = None,
    mode: str = "lifecycle",
    email_header: str = "X-Organizer-Email",
    api_key_header: str = "X-Api-Key",
    diff_path: str = DIFF_PATH,
) -> SandboxApp:
    """A TIXNGO sandbox with ``records`` tickets of one organizer; the same arguments give
    the same data. ``mode`` is the status list served (lifecycle or history)."""
    api = _Api(
        TixngoStore(seed=seed, records=records, today=today, mode=mode),
        email_header,
        api_key_header,
    )
    routes: list[BaseRoute] = [
        Route("/" + diff_path.lstrip("/"), api.diff, methods=["GET"]),
        Route(INJECT_PATH, api.inject, methods=["POST"]),
    ]
    return SandboxApp(
        platform="tixngo",
        store=api.store,
        routes=routes,
        error_body=error,
        credentials={"TIXNGO_API_KEY": SANDBOX_API_KEY},
    )
