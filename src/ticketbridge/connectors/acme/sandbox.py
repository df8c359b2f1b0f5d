"""The ACME Ticketing sandbox: the B2B routes the Tiqets integration uses, over :class:`AcmeStore`.

Faithful to ``platforms.md`` section 8 where it is documented, configurable where it is not:

* ``x-acme-api-key`` on every call (missing -> 401, wrong -> 403); staff calls (organizations,
  orders, refunds) also need ``x-acme-session`` from ``GET /v2/b2b/customer/session``, whose
  answer carries ``expireMs`` (an epoch-milliseconds deadline [INFER]), the tenant's time zone
  and ``roles`` = the API user's permission codes [INFER];
* each route checks the API user's permissions [INFER which permission guards which route,
  from the names on ACME's Tiqets set-up page]; a missing one is 403 ``{"message","code"}``;
* lists come in ``{list, pagination{page,pageSize,sortField,sortDirection,count}}`` envelopes,
  except event instances, documented as a bare ``{list}``;
* B2C paths also need ``x-b2c-tenant-id``; error bodies are ``{"message","code"}`` [INFER].
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.acme.config import (
    PLATFORM,
    SANDBOX_API_KEY,
    SANDBOX_TENANT_ID,
    SANDBOX_USERNAME,
)
from ticketbridge.connectors.acme.sandbox_store import (
    AcmeError,
    AcmeStore,
    Instance,
    Order,
    Refund,
    Template,
)
from ticketbridge.sandbox import SandboxApp, Stats

Handler = Callable[[Request, dict[str, Any]], Awaitable[Response]]

_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def acme_error(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"message": message, "code": code or _CODES.get(status, "ERROR")}, status_code=status
    )


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class _Api:
    def __init__(self, store: AcmeStore) -> None:
        self.store = store

    def route(
        self,
        handler: Handler,
        *,
        permissions: tuple[str, ...] = (),
        session: bool = False,
        b2c: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        """API key, then session, tenant and permissions, then a JSON body for writes."""

        async def endpoint(request: Request) -> Response:
            key = request.headers.get("x-acme-api-key")
            if not key:
                return acme_error(401, "Missing x-acme-api-key header")
            if key != SANDBOX_API_KEY:
                return acme_error(403, "Invalid API key")
            try:
                if session:
                    self.store.check_session(request.headers.get("x-acme-session"))
                if b2c and request.headers.get("x-b2c-tenant-id") != self.store.tenant_id:
                    raise AcmeError(
                        400, "x-b2c-tenant-id is missing or not this tenant", "INVALID_TENANT"
                    )
                self.store.require(*permissions)
                body: dict[str, Any] = {}
                if request.method == "POST":
                    try:
                        parsed = json.loads(await request.body() or b"{}")
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        raise AcmeError(400, "Malformed JSON body", "INVALID_JSON") from None
                    if not isinstance(parsed, dict):
                        raise AcmeError(400, "The body must be a JSON object", "INVALID_JSON")
                    body = parsed
                return await handler(request, body)
            except AcmeError as exc:
                return acme_error(exc.status, exc.message, exc.code)

        return endpoint

    # -- rendering -------------------------------------------------------------------------

    def _prices(self, prices: dict[str, Decimal]) -> list[dict[str, Any]]:
        out = []
        for order, (pt_id, price) in enumerate(prices.items()):
            pt = self.store.person_type(pt_id)
            assert pt is not None
            out.append(
                {
                    "personType": {
                        "id": pt.id,
                        "name": pt.name,
                        "description": "",
                        "active": True,
                        "type": pt.type,
                        "displayOrder": order,
                    },
                    "price": float(price),
                    "discountedPrice": float(price),
                    "discount": 0,
                    "displayOrder": order,
                    "salesChannels": [{"name": "Reseller", "channel": "reseller", "enabled": True}],
                }
            )
        return out

    def template_json(self, t: Template) -> dict[str, Any]:
        return {
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "shortDescription": t.description,
            "admissionType": t.admission_type,
            "reviewState": t.review_state,
            "priceLists": [
                {
                    "id": t.price_list_id,
                    "name": "Standard",
                    "description": "",
                    "prices": self._prices(t.prices),
                    "startTime": None,
                }
            ],
            "ticketDetails": {"ticketDurationDays": 1},
        }

    def instance_json(self, i: Instance) -> dict[str, Any]:
        t = self.store.template(i.template_id)
        assert t is not None
        return {
            "id": i.id,
            "name": t.name,
            "description": t.description,
            "templateId": t.id,
            "capacity": i.capacity,
            "startTime": i.start.isoformat(),
            "endTime": i.end.isoformat(),
            "soldQuantity": i.sold,
            "available": i.state == "active",
            "checkInCount": 0,
            "state": i.state,
            "type": "Event",
            "admissionType": t.admission_type,
            "priceList": {"priceListId": t.price_list_id, "prices": self._prices(t.prices)},
        }

    def order_json(self, o: Order) -> dict[str, Any]:
        b = o.body
        refunded = o.refunded
        items = []
        for it in o.items:
            inst = self.store.instances[it.event_id]
            pt = self.store.person_type(it.person_type_id)
            items.append(
                {
                    "itemId": it.id,
                    "orderItemId": it.id,
                    "eventId": it.event_id,
                    "eventName": getattr(self.store.template(inst.template_id), "name", ""),
                    "eventStartTime": _ms(inst.start),
                    "ticketingTypeId": it.person_type_id,
                    "personTypeId": it.person_type_id,
                    "ticketingTypeName": pt.name if pt else "",
                    "originalQuantity": it.original_quantity,
                    "quantity": it.quantity,
                    "unitPrice": _money(it.unit_price),
                    "amount": _money(it.unit_price * it.quantity),
                    "itemType": "Event",
                    "checkInQuantity": 0,
                }
            )
        return {
            "id": o.id,
            "tenantId": int(self.store.tenant_id),
            "orderNumber": o.number,
            "organizationId": o.organization_id,
            "email": b.get("email"),
            "contactFirstName": b.get("billingFirstName"),
            "contactLastName": b.get("billingLastName"),
            "billingFirstName": b.get("billingFirstName"),
            "billingLastName": b.get("billingLastName"),
            "billingZipCode": b.get("billingZipCode"),
            "phoneNumber": b.get("phoneNumber"),
            "totalAmount": _money(o.total),
            "paidAmount": "0.00",
            "balanceAmount": _money(o.total - refunded),
            "refundAmount": _money(refunded),
            "saleChannel": b.get("saleChannel", "reseller"),
            "paymentMethod": b.get("paymentMethod", "invoice"),
            "ticketDelivery": b.get("ticketDelivery", "willCall"),
            "checkInStatus": "NotCheckedIn",
            "notes": b.get("notes"),
            "creationDate": o.created_on,
            "createdOn": o.created_on,
            "updatedOn": o.updated_on,
            "createdBy": SANDBOX_USERNAME,
            "orderItems": items,
        }

    @staticmethod
    def refund_json(r: Refund) -> dict[str, Any]:
        return {
            "id": r.id,
            "orderId": r.order_id,
            "incidentReasonCode": r.reason,
            "refundAmount": _money(r.amount),
            "createdOn": r.created_on,
            "refundItems": [
                {"orderItemId": i, "quantity": q, "amount": _money(a)} for i, q, a in r.items
            ],
        }

    @staticmethod
    def page(request: Request, items: list[dict[str, Any]], sort_field: str) -> JSONResponse:
        q = request.query_params
        try:
            page = max(1, int(q.get("page", "1")))
            size = int(q.get("pageSize", "50"))
        except ValueError:
            return acme_error(400, "page and pageSize must be numbers")
        field = q.get("sortField", sort_field)
        direction = q.get("sortDirection", "asc")
        items = sorted(items, key=lambda x: str(x.get(field, "")), reverse=direction == "desc")
        # [INFER] pageSize=-1 (seen in client code) returns everything.
        chunk = items if size <= 0 else items[(page - 1) * size : page * size]
        return JSONResponse(
            {
                "list": chunk,
                "pagination": {
                    "page": page,
                    "pageSize": size,
                    "sortField": field,
                    "sortDirection": direction,
                    "count": len(items),
                },
            }
        )

    # -- routes ----------------------------------------------------------------------------

    async def session(self, request: Request, body: dict[str, Any]) -> Response:
        h = request.headers
        user = h.get("x-acme-user-name") or h.get("x-acme-email")
        return JSONResponse(
            self.store.login(user, h.get("x-acme-password"), h.get("x-acme-tenantid"))
        )

    async def templates(self, request: Request, body: dict[str, Any]) -> Response:
        return self.page(request, [self.template_json(t) for t in self.store.templates], "name")

    async def template(self, request: Request, body: dict[str, Any]) -> Response:
        found = self.store.template(request.path_params["template_id"])
        if found is None:
            raise AcmeError(404, "Event template not found", "NOT_FOUND")
        return JSONResponse(self.template_json(found))

    async def instances(self, request: Request, body: dict[str, Any]) -> Response:
        q = request.query_params
        try:
            start = self._time(q["startTime"])
            end = self._time(q["endTime"])
        except (KeyError, ValueError):
            raise AcmeError(
                400, "startTime and endTime are required ISO 8601 date-times", "INVALID_REQUEST"
            ) from None
        found = self.store.instances_between(start, end)
        search = (q.get("search") or "").casefold()
        listed = [self.instance_json(i) for i in found]
        if search:
            listed = [e for e in listed if search in e["name"].casefold()]
        return JSONResponse({"list": listed})

    def _time(self, text: str) -> datetime:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=self.store.tz)

    async def organizations(self, request: Request, body: dict[str, Any]) -> Response:
        return self.page(request, list(self.store.organizations), "name")

    async def organization(self, request: Request, body: dict[str, Any]) -> Response:
        found = self.store.organization(request.path_params["organization_id"])
        if found is None:
            raise AcmeError(404, "Organization not found", "NOT_FOUND")
        return JSONResponse(found)

    async def create_order(self, request: Request, body: dict[str, Any]) -> Response:
        order = self.store.create_order(request.path_params["organization_id"], body)
        return JSONResponse(self.order_json(order))

    async def get_order(self, request: Request, body: dict[str, Any]) -> Response:
        order = self.store.orders.get(request.path_params["order_id"])
        if order is None:
            raise AcmeError(404, "Order not found", "NOT_FOUND")
        return JSONResponse(self.order_json(order))

    async def update_order(self, request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(self.order_json(self.store.update_order(body)))

    async def refund(self, request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(self.refund_json(self.store.refund(body)))


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 0,
    today: datetime | None = None,
    permissions: list[str] | None = None,
    timezone: str = "UTC",
    tenant_id: str = SANDBOX_TENANT_ID,
    session_minutes: int = 30,
) -> SandboxApp:
    """An ACME tenant with four event templates (one all-day, one with five timeslots a day,
    one Thursday-evening, one draft) over the 60 days from ``today``, the organizations
    "Tiqets", a school and a tour operator, and the API user ``api_tiqets`` holding
    ``permissions`` (default: every permission the Tiqets integration needs). ``records`` is
    not used: the catalogue's size is fixed by the 60-day calendar."""
    del records
    stats = Stats()
    store = AcmeStore(
        stats=stats,
        seed=seed,
        today=today,
        permissions=permissions,
        timezone=timezone,
        tenant_id=tenant_id,
        session_minutes=session_minutes,
    )
    api = _Api(store)
    r = api.route
    routes: list[BaseRoute] = [
        Route("/v2/b2b/customer/session", r(api.session), methods=["GET"]),
        Route(
            "/v2/b2b/event/templates",
            r(api.templates, permissions=("EVENT_TEMPLATE_VIEW",)),
            methods=["GET"],
        ),
        Route(
            "/v2/b2b/event/templates/summaries",
            r(api.templates, permissions=("EVENT_TEMPLATE_VIEW",)),
            methods=["GET"],
        ),
        Route(
            "/v2/b2b/event/template/{template_id}",
            r(api.template, permissions=("EVENT_TEMPLATE_VIEW",)),
            methods=["GET"],
        ),
        Route(
            "/v2/b2b/event/instances",
            r(api.instances, permissions=("EVENT_VIEW",)),
            methods=["GET"],
        ),
        Route(
            "/v2/b2b/organizations",
            r(api.organizations, permissions=("ACCT_ORDERS_VIEW",), session=True),
            methods=["GET"],
        ),
        Route(
            "/v2/b2b/organizations/{organization_id}",
            r(api.organization, permissions=("ACCT_ORDERS_VIEW",), session=True),
            methods=["GET"],
        ),
        Route(
            "/v2/b2b/orders/organizations/{organization_id}",
            r(
                api.create_order,
                permissions=("ORDER_CREATE", "ACCT_ORDERS_CREATE", "ORDER_PAYMENT"),
                session=True,
            ),
            methods=["POST"],
        ),
        Route(
            "/v2/b2b/orders/update",
            r(api.update_order, permissions=("ORDER_UPDATE", "ACCT_ORDERS_UPDATE"), session=True),
            methods=["POST"],
        ),
        Route(
            "/v2/b2c/orders/{order_id}",
            r(api.get_order, permissions=("ORDER_VIEW",), b2c=True, session=True),
            methods=["GET"],
        ),
        Route(
            "/v1/b2b/b2b/refunds",
            r(api.refund, permissions=("REFUNDS_EXECUTE",), session=True),
            methods=["POST"],
        ),
    ]
    return SandboxApp(
        platform=PLATFORM,
        store=store,
        routes=routes,
        stats=stats,
        error_body=acme_error,
        credentials={"api_key": SANDBOX_API_KEY, "username": SANDBOX_USERNAME},
    )


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (secrets as ``${ENV}`` refs)."""
    return {
        "platform": PLATFORM,
        "environment": "sandbox",
        "base_url": url.rstrip("/"),
        "api_key": "${ACME_API_KEY}",
        "username": SANDBOX_USERNAME,
        "password": "${ACME_PASSWORD}",
        "tenant_id": SANDBOX_TENANT_ID,
    }


def sandbox_mapping(seed: int = 42) -> dict[str, Any]:
    """The Tiqets mapping (``supplier_api.mappings.<env>``) for a sandbox built with ``seed``:
    the "Tiqets" organization, General Admission as an all-day product and the Highlights Tour
    as a timeslot product, with Adult, Child and OTA Adult ticket types."""
    store = AcmeStore(stats=Stats(), seed=seed)
    org = next(o["id"] for o in store.organizations if o["name"] == "Tiqets")
    pts = {p.name: p.id for p in store.person_types}
    admission, tour = store.templates[0], store.templates[1]

    def variants() -> dict[str, Any]:
        return {
            "adult": {"ticket_type_id": pts["Adult"], "name": "Adult"},
            "child": {"ticket_type_id": pts["Child"], "name": "Child"},
            "ota-adult": {"ticket_type_id": pts["OTA Adult"], "name": "Adult (online)"},
        }

    return {
        "organization_id": org,
        "products": {
            "museum-entry": {
                "event_template_id": admission.id,
                "name": "Museum entry",
                "use_timeslots": False,
                "variants": variants(),
            },
            "highlights-tour": {
                "event_template_id": tour.id,
                "name": "Highlights tour",
                "use_timeslots": True,
                "variants": variants(),
            },
        },
    }
