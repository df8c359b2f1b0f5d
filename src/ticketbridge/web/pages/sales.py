"""Tiqets sales: the Supplier API's reservations and bookings with their ACME order, status
and cancellation, from the tables the Supplier API writes."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ticketbridge.supplier.reservations import BOOKED, CANCELLED, HELD
from ticketbridge.web import queries
from ticketbridge.web.auth import User
from ticketbridge.web.pages.common import console_of

STATUSES = (HELD, BOOKED, CANCELLED)


async def sales_page(request: Request, user: User) -> Response:
    console = console_of(request)
    status = request.query_params.get("status", "")
    status = status if status in STATUSES else ""
    rows, more, counts = await run_in_threadpool(
        queries.sales_page, console.store, status, request.query_params.get("before")
    )
    supplier = console.project().supplier_api
    return console.render(
        request,
        "sales.html",
        {
            "rows": rows,
            "more": more,
            "counts": counts,
            "status": status,
            "statuses": STATUSES,
            "supplier": supplier,
        },
    )
