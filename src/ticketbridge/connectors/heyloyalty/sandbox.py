"""The Heyloyalty sandbox: the API routes ticketbridge uses, over :class:`HeyloyaltyStore`.

Faithful to ``platforms.md`` section 5: the API under ``/loyalty/v1`` and the Heycommerce
tracking import under ``/tracking/api``, both signed as 5.2 says (Basic ``api_key :
base64(hex HMAC-SHA256(X-Request-Timestamp))``; the raw-digest variant some clients send is
accepted too; a timestamp more than ``max_skew_s`` away is refused [INFER: 15 minutes]).
Bodies may be JSON or form fields (the official client posts forms, flattening nested arrays
as ``member[firstname]``); the tracking import also takes the documented multipart CSV.
Errors are ``{"error": message, "code": status}`` [INFER], with ``errors`` per field on 422.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.heyloyalty.config import (
    PLATFORM,
    SANDBOX_API_KEY,
    SANDBOX_API_SECRET,
    SANDBOX_LIST_ID,
    SANDBOX_TRACKING_ID,
)
from ticketbridge.connectors.heyloyalty.sandbox_store import (
    EMAIL,
    BadRequest,
    HeyloyaltyStore,
    HlList,
    Invalid,
    MemberRow,
    NotFound,
    truthy,
)
from ticketbridge.http.auth import hmac_hex_b64
from ticketbridge.sandbox import SandboxApp, Stats

API = "/loyalty/v1"
TRACKING = "/tracking/api"
MAX_PER_PAGE = 5000
DEFAULT_PER_PAGE = 50
_FILTER = re.compile(r"^filter\[([^\]]+)\]\[([a-z]+)\](?:\[\d*\])?$")
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_PHP_TO_PY = {"Y": "Y", "m": "m", "d": "d", "H": "H", "i": "M", "s": "S"}
_PHP_DATE = re.compile("[" + "".join(_PHP_TO_PY) + "]")
EVENT_TYPES = {"visit", "addToBasket", "purchasedBasket", "pairEmail"}  # Heycommerce (5.6)

Handler = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def tracking_row_problems(row: dict[str, Any], date_format: str) -> list[tuple[str, str]]:
    """Why the tracking import would refuse one row (platforms.md 5.6 column names)."""
    out: list[tuple[str, str]] = []
    if not EMAIL.match(str(row.get("email") or "")):
        out.append(("email", "The email must be a valid email address."))
    if row.get("product_id") in (None, ""):
        out.append(("product_id", "The product id field is required."))
    stamp = str(row.get("created_at") or "")
    try:
        if date_format == "iso8601":
            datetime.fromisoformat(stamp)
        else:  # the PHP spelling the import documents, e.g. "Y-m-d H:i:s"
            datetime.strptime(stamp, _PHP_DATE.sub(lambda m: "%" + _PHP_TO_PY[m[0]], date_format))
    except ValueError:
        out.append(("created_at", f"The created at does not match the format {date_format}."))
    if row.get("event_type", "purchasedBasket") not in EVENT_TYPES:
        out.append(("event_type", "The selected event type is invalid."))
    for name in ("product_price", "original_price"):
        if row.get(name) not in (None, ""):
            try:
                float(str(row[name]))
            except ValueError:
                out.append((name, f"The {name.replace('_', ' ')} must be a number."))
    return out


def list_json(lst: HlList, *, with_fields: bool) -> dict[str, Any]:
    """A list as ``GET /lists`` (without fields) and ``GET /lists/{id}`` (with) render it."""
    out: dict[str, Any] = {
        "id": lst.id, "name": lst.name, "country_id": 208, "country": lst.region,
        "duplicates": False, "double_optin": lst.double_optin, "member_count": len(lst.members),
    }  # fmt: skip
    if with_fields:
        out["fields"] = [
            {"id": f.id, "type": f.type, "type_id": 1 if f.type == "fixed" else 2,
             "format": f.format, "name": f.name, "label": f.name, "options": list(f.options)}
            for f in lst.fields.values()
        ]  # fmt: skip
    return out


def member_json(member: MemberRow, lst: HlList) -> dict[str, Any]:
    """A member: bookkeeping keys, the ``status`` object, then every list field's value."""
    out: dict[str, Any] = {
        "id": member.id, "status": dict(member.status), "sent_mail": 0, "sent_sms": 0,
        "open_rate": 0, "imported": 0, "created_at": member.created_at,
        "updated_at": member.updated_at,
    }  # fmt: skip
    out.update({name: member.values.get(name) for name in lst.fields})
    return out


def heyloyalty_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": status}, status_code=status)


def _unflatten(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``member[firstname]=x`` / ``fields_selected[]=a`` form keys back into nested values.

    Every level is a dict first (``[]`` takes the next free index); dicts keyed ``0..n`` then
    become lists, which also covers PHP's ``filter[email][eq][0]`` spelling.
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *_BRACKETS.findall(key[len(head) :])]
        node = out
        for i, part in enumerate(parts):
            part = part or str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):  # "a=1" and "a[b]=2" both sent: keep the first
                    break
                node = child
    listed = _listify(out)
    return listed if isinstance(listed, dict) else {}


def _listify(value: Any) -> Any:
    """Dicts keyed ``0..n`` (PHP's ``[0]`` flattening) become lists."""
    if isinstance(value, dict):
        items = {k: _listify(v) for k, v in value.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items
    if isinstance(value, list):
        return [_listify(v) for v in value]
    return value


# platforms.md 5.4
# fmt: off
OPERATORS = ("eq", "neq", "sw", "ew", "ct", "nct", "gt", "gte", "lt", "lte", "in", "nin", "ina",
             "ie", "nie")
# fmt: on
_SET_OPS = ("in", "nin", "ina", "ie", "nie")  # one condition over all values (or none)


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def member_in(
    store: HeyloyaltyStore, lst: HlList, name: str, values: list[str]
) -> Callable[[MemberRow], bool]:
    """``filter[name][eq][]`` over several values joined by ``logic=or``: equal (as
    :func:`member_test` compares) to any of them."""
    if name not in store.filterable(lst):
        raise BadRequest(f"Unknown filter field {name}")
    wanted = {str(store.comparable(lst, name, v)).casefold() for v in values}

    def test(member: MemberRow) -> bool:
        have = store.comparable(lst, name, store.value(member, name))
        return have is not None and str(have).casefold() in wanted

    return test


def member_test(
    store: HeyloyaltyStore, lst: HlList, name: str, op: str, values: list[str]
) -> Callable[[MemberRow], bool]:
    """One ``filter[name][op][]`` condition as a predicate. Values compare the way the list
    matches (case-folded text, E.164 mobile), numbers as numbers where both sides are."""
    if name not in store.filterable(lst):
        raise BadRequest(f"Unknown filter field {name}")
    if op not in OPERATORS:
        raise BadRequest(f"Unknown filter operator {op}")
    if op not in _SET_OPS and not values:
        raise BadRequest(f"Filter {name} {op} needs a value")
    want = store.comparable(lst, name, values[0]) if values else None
    wanted = str(want).casefold()

    def test(member: MemberRow) -> bool:
        raw = store.value(member, name)
        if op in ("ie", "nie"):
            return (raw in (None, "", [])) == (op == "ie")
        if op in ("in", "nin", "ina"):
            have_set = {str(v) for v in (raw if isinstance(raw, list) else [raw]) if v is not None}
            hit = bool(have_set & set(values))
            return set(values) <= have_set if op == "ina" else hit == (op == "in")
        have = store.comparable(lst, name, raw)
        if have is None:
            return op in ("neq", "nct")
        text = str(have).casefold()
        checks: dict[str, Callable[[], bool]] = {
            "eq": lambda: text == wanted,
            "neq": lambda: text != wanted,
            "sw": lambda: text.startswith(wanted),
            "ew": lambda: text.endswith(wanted),
            "ct": lambda: wanted in text,
            "nct": lambda: wanted not in text,
            "gt": lambda: _number(have) > _number(want),
            "gte": lambda: _number(have) >= _number(want),
            "lt": lambda: _number(have) < _number(want),
            "lte": lambda: _number(have) <= _number(want),
        }
        try:
            return checks[op]()
        except TypeError:  # a number against text: no match, as a database would answer
            return False

    return test


class _Api:
    def __init__(
        self, store: HeyloyaltyStore, *, max_skew_s: float, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.max_skew_s = max_skew_s
        self.clock = clock

    # -- auth and bodies ---------------------------------------------------------------

    def auth_problem(self, request: Request) -> str | None:
        stamp = request.headers.get("x-request-timestamp", "")
        if not stamp:
            return "Missing X-Request-Timestamp header"
        try:
            when = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            return "Malformed X-Request-Timestamp header"
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if abs((self.clock() - when).total_seconds()) > self.max_skew_s:
            return "Request timestamp is too old or too far in the future"
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            key, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            key, password = "", ""
        if scheme.lower() != "basic" or not key:
            return "Missing Basic authorization"
        if key != SANDBOX_API_KEY:
            return "Invalid API key"
        raw = hmac.new(SANDBOX_API_SECRET.encode(), stamp.encode(), hashlib.sha256).digest()
        accepted = (hmac_hex_b64(SANDBOX_API_SECRET, stamp), base64.b64encode(raw).decode())
        if not any(hmac.compare_digest(password, sig) for sig in accepted):
            return "Invalid signature"
        return None

    async def body_of(self, request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            pairs: list[tuple[str, Any]] = []
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    value = (await value.read()).decode("utf-8-sig")
                pairs.append((key, value))
            return _unflatten(pairs)
        raw = await request.body()
        if not raw.strip():
            return {}
        body = json.loads(raw)  # ValueError -> 400 in guarded()
        if not isinstance(body, dict):
            raise BadRequest("The request body must be an object.")
        return body

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            problem = self.auth_problem(request)
            if problem:
                return heyloyalty_error(401, problem)
            try:
                body = await self.body_of(request)
                return await handler(request, body)
            except (ValueError, BadRequest) as exc:
                return heyloyalty_error(400, str(exc) or "Malformed request")
            except NotFound as exc:
                return heyloyalty_error(404, str(exc))
            except Invalid as exc:
                return JSONResponse(
                    {"error": str(exc), "code": 422, "errors": exc.errors}, status_code=422
                )

        return endpoint

    def list_of(self, request: Request) -> HlList:
        try:
            return self.store.get_list(int(request.path_params["list_id"]))
        except ValueError:
            raise NotFound("List not found") from None

    # -- lists -------------------------------------------------------------------------

    async def lists(self, request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(
            [list_json(lst, with_fields=False) for lst in self.store.lists.values()]
        )

    async def one_list(self, request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(list_json(self.list_of(request), with_fields=True))

    # -- members -----------------------------------------------------------------------

    async def members(self, request: Request, body: dict[str, Any]) -> Response:
        lst = self.list_of(request)
        query = request.query_params
        try:
            page = int(query.get("page", "1"))
            perpage = int(query.get("perpage", str(DEFAULT_PER_PAGE)))
            order = int(query.get("order", "1"))
        except ValueError:
            raise BadRequest("page, perpage and order must be integers") from None
        if perpage < 1 or perpage > MAX_PER_PAGE:
            raise BadRequest(f"perpage must be between 1 and {MAX_PER_PAGE}")
        if page < 1:
            raise BadRequest("page must be 1 or more")
        conditions: dict[tuple[str, str], list[str]] = {}
        for key, value in query.multi_items():
            found = _FILTER.match(key)
            if found:
                conditions.setdefault((found.group(1), found.group(2)), []).append(value)
        logic = query.get("logic", "and").lower()
        if logic not in ("and", "or"):
            raise BadRequest("logic must be and or or")
        tests: list[Callable[[MemberRow], bool]] = []
        for (name, op), values in conditions.items():
            if op in _SET_OPS:
                tests.append(member_test(self.store, lst, name, op, values))
            elif op == "eq" and logic == "or" and len(conditions) == 1:
                # A look-up of many values: the same answer as one condition per value, in
                # one pass over the members instead of one per value.
                tests.append(member_in(self.store, lst, name, values))
            else:  # one condition per value: "John or Jane" is two conditions with logic=or
                tests.extend(member_test(self.store, lst, name, op, [v]) for v in values)
        rows = self.store.query(lst, tests, logic, query.get("orderby", "created_at"), order)
        chunk = rows[(page - 1) * perpage : page * perpage]
        return JSONResponse(
            {
                "members": [member_json(m, lst) for m in chunk],
                "count": len(rows),
                "page": page,
                "perpage": perpage,
            }
        )

    async def get_member(self, request: Request, body: dict[str, Any]) -> Response:
        lst = self.list_of(request)
        return JSONResponse(
            member_json(self.store.member(lst, request.path_params["member_id"]), lst)
        )

    async def create_member(self, request: Request, body: dict[str, Any]) -> Response:
        lst = self.list_of(request)
        values = {k: v for k, v in body.items() if k not in ("skipOptIn",)}
        member = self.store.create(lst, values, skip_optin=truthy(body.get("skipOptIn")), flags={})
        return JSONResponse({"id": member.id}, status_code=201)

    async def change_member(self, request: Request, body: dict[str, Any]) -> Response:
        lst = self.list_of(request)
        member = self.store.member(lst, request.path_params["member_id"])
        self.store.update(lst, member, body, replace=request.method == "PUT", flags={})
        return Response(status_code=204)  # "on success this returns http 204" (PHP example)

    async def delete_member(self, request: Request, body: dict[str, Any]) -> Response:
        lst = self.list_of(request)
        member = self.store.member(lst, request.path_params["member_id"])
        obscure = truthy(
            request.query_params.get("obscureMemberData", body.get("obscureMemberData", ""))
        )
        self.store.delete(lst, member, obscure=obscure)
        return Response(status_code=204)

    async def upsert(self, request: Request, body: dict[str, Any]) -> Response:
        member, created = self.store.upsert(self.list_of(request), body)
        return JSONResponse({"type": "create" if created else "update", "member_id": member.id})

    # -- tracking ----------------------------------------------------------------------

    async def import_transactions(self, request: Request, body: dict[str, Any]) -> Response:
        """All or nothing: one bad row refuses the call (422 naming ``rows.<i>.<field>``)."""
        tracking_id = request.path_params["tracking_id"]
        if tracking_id not in self.store.tracking_ids:
            raise NotFound("Tracking integration not found")
        date_format = str(body.get("date_format") or "Y-m-d H:i:s")
        if isinstance(body.get("file"), str):
            rows = self._csv_rows(body)
        else:
            given = body.get("rows")
            if not isinstance(given, list) or not all(isinstance(r, dict) for r in given):
                raise Invalid({"rows": ["The rows must be a list of objects."]})
            rows = given
        if not rows:
            raise Invalid({"rows": ["At least one row is required."]})
        errors: dict[str, list[str]] = {}
        for i, row in enumerate(rows):
            for name, message in tracking_row_problems(row, date_format):
                errors.setdefault(f"rows.{i}.{name}", []).append(message)
        if errors:
            raise Invalid(errors)
        return JSONResponse(self.store.import_tracking(tracking_id, rows))

    @staticmethod
    def _csv_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
        """The documented multipart form: ``file`` (CSV), ``delimiter``, ``skip_header_line``,
        ``fields_selected[]`` naming each column (empty = skip the column)."""
        delimiter = str(body.get("delimiter") or ",")
        delimiter = "|" if delimiter == "pipe" else delimiter[:1]
        columns = body.get("fields_selected") or []
        if not isinstance(columns, list) or not columns:
            raise Invalid({"fields_selected": ["The fields selected field is required."]})
        lines = list(csv.reader(io.StringIO(str(body["file"])), delimiter=delimiter))
        if truthy(body.get("skip_header_line")):
            lines = lines[1:]
        return [{c: v for c, v in zip(columns, line, strict=False) if c} for line in lines if line]


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 0,
    today: datetime | None = None,
    list_id: int = SANDBOX_LIST_ID,
    double_optin: bool = True,
    max_skew_s: float = 900.0,
    clock: Callable[[], datetime] | None = None,
) -> SandboxApp:
    """A Heyloyalty account with list ``list_id`` (country DK; fixed fields plus the custom
    field ``Cardnumber``; ``records`` seeded members, about one in
    ten unsubscribed), a second empty list, and the tracking integration ``sandbox-tracking``.

    ``max_skew_s`` is how far ``X-Request-Timestamp`` may be from ``clock`` (real time unless
    given); ``double_optin`` makes members created without ``skipOptIn`` wait for their
    confirmation.
    """
    stats = Stats()
    store = HeyloyaltyStore(
        stats=stats,
        seed=seed,
        records=records,
        today=today,
        list_id=list_id,
        double_optin=double_optin,
        tracking_ids=(SANDBOX_TRACKING_ID,),
    )
    api = _Api(store, max_skew_s=max_skew_s, clock=clock or (lambda: datetime.now(UTC)))
    g = api.guarded
    member = API + "/lists/{list_id}/members/{member_id}"
    routes: list[BaseRoute] = [
        Route(API + "/lists", g(api.lists), methods=["GET"]),
        Route(API + "/lists/{list_id}", g(api.one_list), methods=["GET"]),
        Route(API + "/lists/{list_id}/members", g(api.members), methods=["GET"]),
        Route(API + "/lists/{list_id}/members", g(api.create_member), methods=["POST"]),
        Route(API + "/lists/{list_id}/members/upsert", g(api.upsert), methods=["POST"]),
        Route(member, g(api.get_member), methods=["GET"]),
        Route(member, g(api.change_member), methods=["PUT", "PATCH"]),
        Route(member, g(api.delete_member), methods=["DELETE"]),
        Route(
            TRACKING + "/transaction/import/{tracking_id}",
            g(api.import_transactions),
            methods=["POST"],
        ),
    ]
    return SandboxApp(
        platform=PLATFORM,
        store=store,
        routes=routes,
        stats=stats,
        error_body=heyloyalty_error,
        credentials={"api_key": SANDBOX_API_KEY, "api_secret": SANDBOX_API_SECRET},
    )


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (secret as an ``${ENV}`` ref)."""
    base = url.rstrip("/")
    return {
        "platform": PLATFORM,
        "base_url": base + API,
        "api_key": SANDBOX_API_KEY,
        "api_secret": "${HEYLOYALTY_API_SECRET}",
        "list_id": SANDBOX_LIST_ID,
        "tracking_base_url": base + TRACKING,
        "tracking_id": SANDBOX_TRACKING_ID,
    }
