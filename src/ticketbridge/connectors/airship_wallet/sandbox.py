"""The Airship Wallet sandbox: the v1 routes ticketbridge uses, over :class:`WalletStore`.

Faithful to ``platforms.md`` section 3: ``Api-Revision: 1.2`` required (406 otherwise), HTTP
Basic with the project key and secret or a Bearer token from the OAuth client-credentials
endpoint (``POST /token``, lifetime ``token_ttl_s``), errors as
``{"code", "description", "details"}``, 400 for duplicate external ids, page/pageSize/order/
direction pagination of pass lists, pass groups whose update reaches every pass, and
callbacks POSTed to the registered URL with the registered headers when a pass is
(simulated) installed or uninstalled (``/_sandbox/mutate`` ops ``install``/``uninstall``).
Injected 429s carry Retry-After in the same error shape (the shared Faults).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ticketbridge.connectors.airship_wallet.config import (
    PLATFORM,
    SANDBOX_ANDROID_TEMPLATE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_IOS_TEMPLATE,
    SANDBOX_PROJECT_ID,
    SANDBOX_PROJECT_KEY,
    SANDBOX_SECRET,
)
from ticketbridge.connectors.airship_wallet.sandbox_store import (
    Deliver,
    Link,
    Pass,
    WalletError,
    WalletEvent,
    WalletStore,
    basic_parts,
)
from ticketbridge.errors import ConnectorError
from ticketbridge.sandbox import JsonResponse, SandboxApp, Stats

if TYPE_CHECKING:
    from ticketbridge.http.context import HttpContext

Handler = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def wallet_error(status: int, description: str, details: str = "") -> JsonResponse:
    return JsonResponse(
        {"code": status, "description": description, "details": details}, status_code=status
    )


def http_deliverer(context: HttpContext) -> Deliver:
    """Callbacks POSTed through ticketbridge's own HTTP client (the only one that speaks HTTP
    here): over the network by default, or to an in-process receiver mounted on ``context``."""
    from ticketbridge.http.client import ApiClient
    from ticketbridge.http.retry import RetryPolicy

    async def deliver(url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
        client = ApiClient(
            platform=f"{PLATFORM}-callbacks",
            base_url=url,
            context=context,
            retry=RetryPolicy(max_retries=0),
            timeout_s=10.0,
        )
        try:
            response = await client.request("POST", url, json_body=body, headers=headers)
            return response.status_code
        except ConnectorError as exc:
            return exc.status or 0
        finally:
            await client.aclose()

    return deliver


class _Api:
    def __init__(self, store: WalletStore, links_response: str) -> None:
        self.store = store
        self.links_response = links_response

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Api-Revision, credentials, JSON body and project id: what every route shares."""

        async def endpoint(request: Request) -> Response:
            if request.headers.get("api-revision", "").strip() != self.store.api_revision:
                return wallet_error(
                    406, "Not Acceptable", f"Api-Revision: {self.store.api_revision} is required."
                )
            if not self.store.authorized(request.headers.get("authorization", "")):
                return wallet_error(401, "Unauthorized", "Invalid credentials.")
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return wallet_error(400, "Bad Request", "Malformed JSON body.")
            if not isinstance(body, dict):
                return wallet_error(400, "Bad Request", "The body must be a JSON object.")
            try:
                if "project_id" in request.path_params:
                    self.store.check_project(request.path_params["project_id"])
                return await handler(request, body)
            except WalletError as exc:
                return wallet_error(exc.status, exc.description, exc.details)

        return endpoint

    def link_json(self, link: Link, event: WalletEvent) -> dict[str, Any]:
        base = f"https://wallet.sandbox.invalid/v1/pass/adaptive/{link.id}"
        out: dict[str, Any] = {
            "adaptiveLinkId": link.id,
            "adaptiveLinkExternalId": link.external_id,
            "eventId": event.id,
            "eventExternalId": event.external_id,
            "url": base,
            "createdAt": link.created_at,
            "updatedAt": link.updated_at,
            "isPersonalized": "false",
            "availablePasses": 1000000,
            "status": 200,
        }
        for template, pass_link in link.pass_link_ids.items():
            side = "ios" if self.store.templates[template] == "apple" else "android"
            out[f"{side}TemplateId"] = template
            out[f"{side}Url"] = f"{base}/{side}"
            out[f"{side}PassLinkId"] = pass_link
        return out

    def pass_json(self, p: Pass) -> dict[str, Any]:
        return {
            "id": p.id,
            "templateId": p.template_id,
            "externalId": p.external_id,
            "serialNumber": p.serial_number,
            "url": f"https://wallet.sandbox.invalid/v1/pass/{p.id}/download",
            "status": p.status,
            "createdAt": p.created_at,
            "updatedAt": p.updated_at,
        }

    async def token(self, request: Request) -> Response:
        """OAuth 2.0 client credentials: client auth as Basic or in the form body."""
        form = await request.form()
        client_id = str(form.get("client_id") or "")
        secret = str(form.get("client_secret") or "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, secret = basic_parts(header[6:])
        try:
            answer = self.store.issue_token(client_id, secret, str(form.get("grant_type") or ""))
        except WalletError as exc:
            return JsonResponse(
                {"error": exc.description, "error_description": exc.details},
                status_code=exc.status,
            )
        return JsonResponse(answer)

    async def project(self, request: Request, body: dict[str, Any]) -> Response:
        return JsonResponse(
            {"id": self.store.project_id, "name": "Sandbox project", "projectType": "eventTicket"}
        )

    async def template(self, request: Request, body: dict[str, Any]) -> Response:
        template = self.store.check_template(request.path_params["template_id"])
        vendor = self.store.templates[template]
        return JsonResponse(
            {"id": template, "name": f"Event ticket ({vendor})", "vendor": vendor.title()}
        )

    async def passes(self, request: Request, body: dict[str, Any]) -> Response:
        template = self.store.check_template(request.path_params["template_id"])
        page = self.store.list_passes(template, dict(request.query_params))
        return JsonResponse({**page, "passes": [self.pass_json(p) for p in page["passes"]]})

    def event_json(self, event: WalletEvent) -> dict[str, Any]:
        return {
            "eventId": event.id,
            "eventExternalId": event.external_id,
            "projectId": self.store.project_id,
            "createdAt": event.created_at,
            "updatedAt": event.updated_at,
            "passGroups": list(event.pass_groups),
            "fields": event.fields,
        }

    async def create_event(self, request: Request, body: dict[str, Any]) -> Response:
        external = request.path_params.get("external_id")
        event = self.store.create_event(external, body)
        return JsonResponse(self.event_json(event))

    async def event(self, request: Request, body: dict[str, Any]) -> Response:
        ref = request.path_params.get("external_id")
        if ref is not None:
            found = self.store.event(str(ref), external=True)
        else:
            found = self.store.event(str(request.path_params["event_id"]), external=False)
        if request.method == "PUT":
            found = self.store.update_event(found, body)
        elif request.method == "DELETE":
            self.store.delete_event(found)
            return JsonResponse({"eventId": found.id, "deleted": True})
        return JsonResponse(self.event_json(found))

    async def event_groups(self, request: Request, body: dict[str, Any]) -> Response:
        found = self.store.event(request.path_params["event_id"], external=False)
        groups = body.get("passGroups")
        if not isinstance(groups, list):
            raise WalletError(400, "Bad Request", "passGroups must be an array.")
        found = self.store.add_pass_groups(found, [str(g) for g in groups])
        return JsonResponse({"eventId": found.id, "passGroups": found.pass_groups})

    async def group(self, request: Request, body: dict[str, Any]) -> Response:
        group = request.path_params["group"]
        events = self.store.update_group(group, body)
        return JsonResponse({"passGroup": group, "events": events})

    async def links(self, request: Request, body: dict[str, Any]) -> Response:
        out = [
            item if isinstance(item, dict) else self.link_json(*item)
            for item in self.store.create_links(body)
        ]
        # The schema page shows a bare array; platforms.md {"links": [...]} [INFER].
        return JsonResponse(out if self.links_response == "array" else {"links": out})

    async def pass_by_external(self, request: Request, body: dict[str, Any]) -> Response:
        template = self.store.check_template(request.path_params["template_id"])
        found = self.store.pass_by(template, request.path_params["external_id"])
        if request.method == "PUT":
            return JsonResponse(self.store.update_pass(found, body))
        return JsonResponse({**self.pass_json(found), "fields": found.fields})

    async def pass_by_id(self, request: Request, body: dict[str, Any]) -> Response:
        found = self.store.pass_by_id(request.path_params["pass_id"])
        if request.method == "PUT":
            return JsonResponse(self.store.update_pass(found, body))
        return JsonResponse({**self.pass_json(found), "fields": found.fields})

    async def callback(self, request: Request, body: dict[str, Any]) -> Response:
        if request.method == "GET":
            if self.store.callback is None:
                raise WalletError(404, "Not Found", "No callback registered.")
            return JsonResponse(self.store.callback)
        return JsonResponse(self.store.set_callback(body))


def create_sandbox(
    *,
    seed: int = 42,
    records: int = 0,
    today: datetime | None = None,
    token_ttl_s: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    callback_context: HttpContext | None = None,
    links_response: str = "array",
) -> SandboxApp:
    """A Wallet project (id 12345) with an Apple (1001) and a Google (1002) event-ticket
    template and ``records`` events made earlier. ``token_ttl_s`` is the OAuth token lifetime
    (``/_sandbox/mutate`` ``{"op": "token_ttl"}`` changes it); callbacks go through
    ``callback_context`` (tests mount a receiver on it)."""
    from ticketbridge.http.context import HttpContext  # the HTTP stack only once one is made

    stats = Stats()
    store = WalletStore(
        stats=stats,
        seed=seed,
        records=records,
        today=today,
        project_id=SANDBOX_PROJECT_ID,
        project_key=SANDBOX_PROJECT_KEY,
        project_secret=SANDBOX_SECRET,
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        templates={SANDBOX_IOS_TEMPLATE: "apple", SANDBOX_ANDROID_TEMPLATE: "google"},
        token_ttl_s=token_ttl_s,
        clock=clock,
        deliver=http_deliverer(callback_context or HttpContext()),
    )
    # The seeded events are what the project held before: not writes anybody made to it.
    stats.reset()
    api = _Api(store, links_response)
    g = api.guarded
    events = "/v1/events/project/{project_id}"
    routes: list[BaseRoute] = [
        Route("/token", api.token, methods=["POST"]),
        Route("/v1/project/{project_id}", g(api.project), methods=["GET"]),
        Route(
            "/v1/project/{project_id}/settings/callback",
            g(api.callback),
            methods=["GET", "POST", "PUT"],
        ),
        Route("/v1/template/{template_id}", g(api.template), methods=["GET"]),
        Route("/v1/template/{template_id}/passes", g(api.passes), methods=["GET"]),
        Route(events, g(api.create_event), methods=["POST"]),
        Route(events + "/id/{external_id}", g(api.create_event), methods=["POST"]),
        Route(events + "/id/{external_id}", g(api.event), methods=["GET", "PUT", "DELETE"]),
        Route(events + "/passGroups/{group}", g(api.group), methods=["PUT"]),
        Route(events + "/{event_id}/passGroups", g(api.event_groups), methods=["POST"]),
        Route(events + "/{event_id}", g(api.event), methods=["GET", "PUT", "DELETE"]),
        Route("/v1/links/adaptive/multiple/project/{project_id}", g(api.links), methods=["POST"]),
        Route(
            "/v1/pass/template/{template_id}/id/{external_id}",
            g(api.pass_by_external),
            methods=["GET", "PUT"],
        ),
        Route("/v1/pass/{pass_id}", g(api.pass_by_id), methods=["GET", "PUT"]),
    ]
    return SandboxApp(
        platform=PLATFORM,
        store=store,
        routes=routes,
        stats=stats,
        error_body=wallet_error,
        credentials={
            "project_key": SANDBOX_PROJECT_KEY,
            "project_secret": SANDBOX_SECRET,
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (the secret as an ``${ENV}`` ref)."""
    return {
        "platform": PLATFORM,
        "base_url": url.rstrip("/") + "/v1",
        "project_id": SANDBOX_PROJECT_ID,
        "auth": "basic",
        "project_key": SANDBOX_PROJECT_KEY,
        "project_secret": "${AIRSHIP_WALLET_SECRET}",
        # For ``auth: oauth`` (client credentials at token_url) instead of Basic.
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": "${AIRSHIP_WALLET_CLIENT_SECRET}",
        "token_url": url.rstrip("/") + "/token",
        "ios_template_id": SANDBOX_IOS_TEMPLATE,
        "android_template_id": SANDBOX_ANDROID_TEMPLATE,
    }
