"""In-memory state of the Airship Wallet sandbox: tokens, events, pass groups, links, passes.

Behaviour follows ``platforms.md`` section 3; the [INFER] parts are decided here. Invariants
the tests rely on:

* event and link external ids are unique per project: creating an event with an existing
  external id is a 400; a link sent again under its external id updates that link (and its
  passes) instead of making a second one [INFER: the documents do not say];
* each link issues one pass per template it names, at once, addressed by
  ``(templateId, adaptiveLinkExternalId)`` [INFER: real Wallet makes them on first visit];
* a pass-group update writes the fields to every event of the group and every pass of those
  events; a pass update is partial (fields not sent are kept), and a ``changeMessage`` is
  recorded as a notification only when the value really changed (as Apple shows them);
* every write is counted with ``Stats.record_write`` under ``event:<externalId>``,
  ``link:<externalId>`` and ``pass:<templateId>:<externalId>``, kind ``create``/``update``;
* tokens expire after ``token_ttl_s`` on the store's clock (injectable).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ticketbridge.sandbox import Stats

# What delivers one callback: (url, headers, body) -> HTTP status (0 if unreachable).
Deliver = Callable[[str, dict[str, str], dict[str, Any]], Awaitable[int]]

_VENUES = ("Riverside Hall", "Bowl Arena", "Harbour Stage", "Old Mill", "Kings Theatre")
_ACTS = ("Gala", "Quartet", "Comedy Night", "Jazz Brunch", "Cup Final", "Opera")
PASS_ORDERS = {"id", "name", "createdAt", "updatedAt"}


class WalletError(Exception):
    """An API error, rendered as ``{"code", "description", "details"}``."""

    def __init__(self, status: int, description: str, details: str = "") -> None:
        self.status = status
        self.description = description
        self.details = details
        super().__init__(f"{status} {description}: {details}")


@dataclass
class WalletEvent:
    id: int
    external_id: str | None
    fields: dict[str, Any]
    pass_groups: list[str]
    created_at: str
    updated_at: str


@dataclass
class Link:
    id: str
    external_id: str | None
    event_id: int
    fields: dict[str, Any]
    templates: list[int]
    created_at: str
    updated_at: str
    pass_link_ids: dict[int, str] = field(default_factory=dict)


@dataclass
class Pass:
    id: int
    template_id: int
    external_id: str | None
    link_id: str
    event_id: int
    serial_number: str
    fields: dict[str, Any]
    created_at: str
    updated_at: str
    status: str = "not_been_installed"
    notifications: list[str] = field(default_factory=list)

    @property
    def write_key(self) -> str:
        return f"pass:{self.template_id}:{self.external_id or self.id}"


LinkResult = tuple[Link, WalletEvent] | dict[str, Any]


class WalletStore:
    def __init__(
        self,
        *,
        stats: Stats,
        seed: int = 42,
        records: int = 0,
        today: datetime | None = None,
        project_id: int,
        project_key: str,
        project_secret: str,
        client_id: str,
        client_secret: str,
        templates: dict[int, str],
        token_ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        deliver: Deliver | None = None,
        api_revision: str = "1.2",
    ) -> None:
        self.stats = stats
        self.seed = seed
        self.records = records
        self.today = today
        self.project_id = project_id
        self.project_key = project_key
        self.project_secret = project_secret
        self.client_id = client_id
        self.client_secret = client_secret
        self.templates = templates  # id -> vendor ("apple" / "google")
        self.default_ttl_s = token_ttl_s
        self.clock = clock
        self.deliver = deliver
        self.api_revision = api_revision
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(self.seed)
        self.token_ttl_s = self.default_ttl_s
        self.tokens: dict[str, float] = {}  # token -> expiry on self.clock
        self.events: dict[int, WalletEvent] = {}
        self.links: dict[str, Link] = {}  # by link id
        self.passes: dict[int, Pass] = {}
        # Indexes over the three above, so that a full load is linear in its links: one scan
        # of every link or pass per request made the sandbox quadratic, and its CPU, shared
        # with the contender on the benchmark machine, decided the Wallet S1 timings.
        self._events_by_ext: dict[str, WalletEvent] = {}
        self._links_by_ext: dict[str, Link] = {}
        self._passes_by_ext: dict[tuple[int, str], Pass] = {}
        self._passes_of_link: dict[str, list[Pass]] = {}
        self._passes_of_event: dict[int, list[Pass]] = {}
        self.callback: dict[str, Any] | None = None
        self.callbacks_sent: list[dict[str, Any]] = []
        self._pending: list[asyncio.Task[None]] = []
        self._next: dict[str, int] = {"event": 1, "pass": 1, "token": 1}
        self._seed_events()

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def now(self) -> str:
        when = self.today or datetime.now(UTC)
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _seed_events(self) -> None:
        """``records`` events made before any sync ran (another tool's), for reads and
        duplicate-id tests. Deterministic for a seed."""
        for i in range(self.records):
            venue = self.rng.choice(_VENUES)
            name = f"{self.rng.choice(_ACTS)} {i + 1}"
            fields = {
                "eventName": {"label": "Event", "value": name},
                "venueTitle": {"label": "Venue", "value": venue},
                "venueAddress": {"label": "Address", "value": f"{i + 1} High Street"},
            }
            self._make_event(f"seed-event-{i + 1}", {"fields": fields})

    # -- auth ----------------------------------------------------------------------------

    def issue_token(self, client_id: str, client_secret: str, grant_type: str) -> dict[str, Any]:
        if not (
            hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            raise WalletError(401, "invalid_client", "Client authentication failed.")
        if grant_type != "client_credentials":
            raise WalletError(400, "unsupported_grant_type", "Use client_credentials.")
        token = f"wallet-token-{self._id('token')}-{self.rng.getrandbits(64):016x}"
        self.tokens[token] = self.clock() + self.token_ttl_s
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s}

    def authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            expiry = self.tokens.get(value.strip())
            return expiry is not None and self.clock() < expiry
        if scheme.lower() == "basic":
            user, secret = basic_parts(value)
            return hmac.compare_digest(user.encode(), self.project_key.encode()) and (
                hmac.compare_digest(secret.encode(), self.project_secret.encode())
            )
        return False

    def check_project(self, raw: str) -> None:
        if raw != str(self.project_id):
            raise WalletError(404, "Not Found", f"No project {raw}.")

    def check_template(self, raw: str) -> int:
        try:
            template = int(raw)
        except ValueError:
            template = -1
        if template not in self.templates:
            raise WalletError(404, "Not Found", f"No template {raw}.")
        return template

    # -- events --------------------------------------------------------------------------

    def event_by_external(self, external_id: str) -> WalletEvent | None:
        return self._events_by_ext.get(external_id)

    def event(self, ref: str, *, external: bool) -> WalletEvent:
        found = self.event_by_external(ref) if external else None
        if not external and ref.isdigit():
            found = self.events.get(int(ref))
        if found is None:
            raise WalletError(404, "Not Found", f"No event {ref}.")
        return found

    def _make_event(self, external_id: str | None, body: dict[str, Any]) -> WalletEvent:
        fields = body.get("fields")
        if not isinstance(fields, dict) or not _value(fields.get("eventName")):
            raise WalletError(400, "Bad Request", "fields.eventName is required.")
        if external_id is not None and self.event_by_external(external_id) is not None:
            raise WalletError(400, "Bad Request", f"Event external id {external_id} exists.")
        groups = [str(g) for g in body.get("passGroups") or []]
        now = self.now()
        event = WalletEvent(self._id("event"), external_id, _clean(fields), groups, now, now)
        self.events[event.id] = event
        if external_id is not None:
            self._events_by_ext[external_id] = event
        self.stats.record_write(f"event:{external_id or event.id}", "create")
        return event

    def delete_event(self, event: WalletEvent) -> None:
        """The event only: its links and passes stay, as they were issued."""
        del self.events[event.id]
        if event.external_id is not None:
            self._events_by_ext.pop(event.external_id, None)

    def create_event(self, external_id: str | None, body: dict[str, Any]) -> WalletEvent:
        return self._make_event(external_id, body)

    def update_event(self, event: WalletEvent, body: dict[str, Any]) -> WalletEvent:
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise WalletError(400, "Bad Request", "fields is required.")
        self._apply_event_fields(event, fields)
        return event

    def _apply_event_fields(self, event: WalletEvent, fields: dict[str, Any]) -> None:
        for name, value in _clean(fields).items():
            event.fields[name] = {**event.fields.get(name, {}), **value}
        event.updated_at = self.now()
        self.stats.record_write(f"event:{event.external_id or event.id}", "update")
        for p in self._passes_of_event.get(event.id, ()):
            self._apply_pass_fields(p, fields)

    def add_pass_groups(self, event: WalletEvent, groups: list[str]) -> WalletEvent:
        for g in groups:
            if g not in event.pass_groups:
                event.pass_groups.append(str(g))
        return event

    def update_group(self, group: str, body: dict[str, Any]) -> int:
        """Every event in ``group``, and every pass of those events, takes the fields."""
        fields = body.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise WalletError(400, "Bad Request", "fields is required.")
        members = [e for e in self.events.values() if group in e.pass_groups]
        if not members:
            raise WalletError(404, "Not Found", f"No pass group {group}.")
        for event in members:
            self._apply_event_fields(event, fields)
        return len(members)

    # -- links and passes ---------------------------------------------------------------

    def create_links(self, body: dict[str, Any]) -> list[LinkResult]:
        """One result per attendee: its link and event, or an error item (per-attendee
        status, as the documented response carries)."""
        templates = [
            t for t in (body.get("iosTemplateId"), body.get("androidTemplateId")) if t is not None
        ]
        if not templates:
            raise WalletError(400, "Bad Request", "iosTemplateId or androidTemplateId required.")
        for t in templates:
            self.check_template(str(t))
        payload = body.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("events"), list):
            groups = [g for g in payload["events"] if isinstance(g, dict)]
        else:
            groups = [body]
        out: list[LinkResult] = []
        for group in groups:
            event = self._link_event(group)
            attendees = group.get("attendees")
            if not isinstance(attendees, list) or not attendees:
                raise WalletError(400, "Bad Request", "attendees is required.")
            for item in attendees:
                out.append(self._link(event, item, [int(t) for t in templates]))
        return out

    def _link_event(self, group: dict[str, Any]) -> WalletEvent:
        nested = group.get("event")
        inline: dict[str, Any] = nested if isinstance(nested, dict) else group
        if inline.get("eventId") is not None:
            return self.event(str(inline["eventId"]), external=False)
        ext = inline.get("eventExternalId")
        found = self.event_by_external(str(ext)) if ext is not None else None
        if found is not None:
            return found
        if "fields" in inline:
            return self._make_event(None if ext is None else str(ext), inline)
        raise WalletError(404, "Not Found", f"No event {ext}.")

    def _link(self, event: WalletEvent, item: Any, templates: list[int]) -> LinkResult:
        if not isinstance(item, dict) or not isinstance(item.get("fields", {}), dict):
            return {"status": 400, "description": "attendee must be an object with fields"}
        ext = item.get("adaptiveLinkExternalId")
        ext = None if ext is None else str(ext)
        fields = _clean(item.get("fields") or {})
        link = self._links_by_ext.get(ext) if ext else None
        now = self.now()
        if link is not None:
            link.fields.update(fields)
            link.updated_at = now
            self.stats.record_write(f"link:{ext}", "update")
            for p in self._passes_of_link.get(link.id, ()):
                self._apply_pass_fields(p, fields)
        else:
            link = Link(
                id=f"{self.rng.getrandbits(48):012x}",
                external_id=ext,
                event_id=event.id,
                fields=fields,
                templates=templates,
                created_at=now,
                updated_at=now,
            )
            self.links[link.id] = link
            if ext:
                self._links_by_ext[ext] = link
            self.stats.record_write(f"link:{ext or link.id}", "create")
            for template in templates:
                self._issue_pass(link, template, event)
        return link, event

    def _issue_pass(self, link: Link, template: int, event: WalletEvent) -> Pass:
        now = self.now()
        made = Pass(
            id=self._id("pass"),
            template_id=template,
            external_id=link.external_id,
            link_id=link.id,
            event_id=event.id,
            serial_number=f"{self.rng.getrandbits(64):016x}",
            fields={**event.fields, **link.fields},
            created_at=now,
            updated_at=now,
        )
        self.passes[made.id] = made
        if made.external_id is not None:
            self._passes_by_ext[(template, made.external_id)] = made
        self._passes_of_link.setdefault(link.id, []).append(made)
        self._passes_of_event.setdefault(event.id, []).append(made)
        link.pass_link_ids[template] = f"{self.rng.getrandbits(64):016x}"
        self.stats.record_write(made.write_key, "create")
        return made

    def pass_by(self, template: int, external_id: str) -> Pass:
        found = self._passes_by_ext.get((template, external_id))
        if found is None:
            raise WalletError(404, "Not Found", f"No pass {external_id} in template {template}.")
        return found

    def pass_by_id(self, raw: str) -> Pass:
        found = self.passes.get(int(raw)) if raw.isdigit() else None
        if found is None:
            raise WalletError(404, "Not Found", f"No pass {raw}.")
        return found

    def update_pass(self, found: Pass, body: dict[str, Any]) -> dict[str, Any]:
        """Partial: only the fields sent change; returns the async job ``ticketId``."""
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise WalletError(400, "Bad Request", "fields is required.")
        self._apply_pass_fields(found, fields)
        return {"ticketId": self.rng.randrange(10_000, 99_999)}

    def _apply_pass_fields(self, found: Pass, fields: dict[str, Any]) -> None:
        for name, raw in fields.items():
            if not isinstance(raw, dict):
                raise WalletError(400, "Bad Request", f"fields.{name} must be an object.")
            before = found.fields.get(name, {})
            message = raw.get("changeMessage")
            after = {**before, **{k: v for k, v in raw.items() if k != "changeMessage"}}
            if message and _value(after) != _value(before):
                found.notifications.append(str(message).replace("%@", str(_value(after))))
            found.fields[name] = after
        found.updated_at = self.now()
        self.stats.record_write(found.write_key, "update")

    def list_passes(self, template: int, query: dict[str, str]) -> dict[str, Any]:
        """One page: ``count``, the ``passes`` (objects, rendered by the route) and
        ``pagination``."""
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("pageSize", "10"))
        except ValueError:
            raise WalletError(400, "Bad Request", "page and pageSize are integers.") from None
        order = query.get("order", "id")
        direction = query.get("direction", "DESC").upper()
        if page < 1 or size < 1 or order not in PASS_ORDERS or direction not in ("ASC", "DESC"):
            raise WalletError(400, "Bad Request", "page >= 1, order in id|name|createdAt|...")
        status = query.get("status")
        chosen = [
            p
            for p in self.passes.values()
            if p.template_id == template and (not status or p.status == status)
        ]
        key = {"id": "id", "name": "serial_number", "createdAt": "id", "updatedAt": "updated_at"}
        chosen.sort(key=lambda p: (getattr(p, key[order]), p.id), reverse=direction == "DESC")
        start = (page - 1) * size
        return {
            "count": len(chosen),
            "passes": chosen[start : start + size],
            "pagination": {
                "order": order,
                "page": page,
                "start": start,
                "direction": direction,
                "pageSize": size,
            },
        }

    # -- callbacks ------------------------------------------------------------------------

    def set_callback(self, body: dict[str, Any]) -> dict[str, Any]:
        base = body.get("baseUrl")
        headers = body.get("headers") or {}
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise WalletError(400, "Bad Request", "baseUrl must be an http(s) URL.")
        if not isinstance(headers, dict):
            raise WalletError(400, "Bad Request", "headers must be an object.")
        self.callback = {"baseUrl": base, "headers": {str(k): str(v) for k, v in headers.items()}}
        return dict(self.callback)

    def _simulate(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Install or uninstall passes as a holder's phone would, and POST the callbacks."""
        wanted = params.get("external_ids")
        count = int(params.get("count", 1))
        chosen = [p for p in self.passes.values() if wanted is None or p.external_id in set(wanted)]
        if wanted is None:
            chosen = chosen[:count]
        status = "installed" if kind == "install" else "uninstalled"
        queued = 0
        for p in chosen:
            p.status = status
            p.updated_at = self.now()
            if self.callback is not None and self.deliver is not None:
                self._pending.append(asyncio.get_running_loop().create_task(self._send(kind, p)))
                queued += 1
        return {"op": kind, "passes": [p.id for p in chosen], "callbacks_queued": queued}

    async def _send(self, kind: str, p: Pass) -> None:
        assert self.callback is not None and self.deliver is not None
        url = self.callback["baseUrl"].rstrip("/") + f"/pass/{kind}"
        body = {
            "passId": p.id,
            "templateId": p.template_id,
            "serialNumber": p.serial_number,
            "createdAt": p.created_at,
            "updatedAt": p.updated_at,
            "externalId": p.external_id,
            "platform": "ios" if self.templates[p.template_id] == "apple" else "android",
        }
        status = await self.deliver(url, dict(self.callback["headers"]), body)
        self.callbacks_sent.append({"url": url, "status": status, "body": body})

    async def drain_callbacks(self) -> list[dict[str, Any]]:
        """Wait for every queued callback POST; returns what was sent (tests, the demo)."""
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)
        return list(self.callbacks_sent)

    # -- admin ----------------------------------------------------------------------------

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """``{"op": ...}``: ``token_ttl`` (``seconds``), ``revoke_tokens``, ``install`` /
        ``uninstall`` (``count`` or ``external_ids``)."""
        op = params.get("op")
        if op == "token_ttl":
            self.token_ttl_s = float(params["seconds"])
            return {"op": op, "token_ttl_s": self.token_ttl_s}
        if op == "revoke_tokens":
            revoked = len(self.tokens)
            self.tokens.clear()
            return {"op": op, "revoked": revoked}
        if op in ("install", "uninstall"):
            return self._simulate(str(op), params)
        return {"error": f"unknown op {op!r}", "ops": ["token_ttl", "revoke_tokens", "install"]}

    def dump(self) -> dict[str, Any]:
        groups: dict[str, list[int]] = {}
        for e in self.events.values():
            for g in e.pass_groups:
                groups.setdefault(g, []).append(e.id)
        return {
            "project_id": self.project_id,
            "events": [asdict(e) for e in self.events.values()],
            "pass_groups": groups,
            "links": [asdict(x) for x in self.links.values()],
            "passes": [asdict(p) for p in self.passes.values()],
            "callback": self.callback,
            "callbacks_sent": list(self.callbacks_sent),
        }


def basic_parts(value: str) -> tuple[str, str]:
    try:
        user, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, secret


def _value(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return None
    return obj.get("value", obj.get("micros"))


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields as stored: objects only, without the one-off ``changeMessage``."""
    return {
        str(k): {kk: vv for kk, vv in v.items() if kk != "changeMessage"}
        for k, v in fields.items()
        if isinstance(v, dict)
    }
