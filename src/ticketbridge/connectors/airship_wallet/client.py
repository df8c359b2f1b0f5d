"""HTTP only: typed methods over ``http.ApiClient`` for the Airship Wallet API (v1).

Every request carries ``Api-Revision`` (406 without it) and the project's credentials: Basic
(project key and secret) or an OAuth 2.0 client-credentials token shared by every request of
the connection (:class:`~ticketbridge.http.auth.RefreshingBearer`). 401/403 -> AuthError,
400 on writes -> RecordRejected (bad input or a duplicate external id), 429 honours
Retry-After. Secrets live in the auth flows only; no message here contains them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

from pydantic import SecretStr

from ticketbridge.connectors.airship_wallet.config import PLATFORM, AirshipWalletConfig
from ticketbridge.connectors.airship_wallet.schemas import (
    EventOut,
    LinkOut,
    PassPage,
    PassSummary,
    Project,
    Template,
    TokenAnswer,
    links_of,
)
from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.errors import FatalError, RetryableError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import Auth, Basic, RefreshingBearer
from ticketbridge.http.outcomes import Action

# Wallet answers 400 for bad input and for an external id that already exists: both are about
# the record sent, not the connection.
_REJECT_400 = {400: Action.REJECT}
_NOT_FOUND_IS_ANSWER = {404: Action.OK}
# A token endpoint refusing the client (400 invalid_client / 401) means wrong credentials.
_TOKEN_TABLE = {400: Action.AUTH, 401: Action.AUTH}


def _seg(value: str | int) -> str:
    """One path segment: external ids are the venue's, so any character may appear."""
    return quote(str(value), safe="")


class AirshipWalletClient(ClientKit):
    def __init__(
        self,
        cfg: AirshipWalletConfig,
        ctx: HttpContext,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.project = cfg.project_id
        self.oauth: RefreshingBearer | None = None
        auth: Auth
        if cfg.auth == "oauth":
            self._token_api = self.own(
                connection_client(
                    cfg,
                    ctx,
                    platform=PLATFORM,
                    account=f"{PLATFORM}:oauth:{cfg.token_url}",
                    auth=self._client_auth(),
                    base_url=cfg.token_url,
                )
            )
            extra = {"clock": clock} if clock is not None else {}
            self.oauth = RefreshingBearer(
                self.fetch_token, margin_s=cfg.token_refresh_margin_s, **extra
            )
            auth = self.oauth
        else:
            assert cfg.project_key is not None and cfg.project_secret is not None
            auth = Basic(cfg.project_key, cfg.project_secret)
        # One bucket per project, whichever sync writes to it (DESIGN guarantee 6).
        self.api = self.own(
            connection_client(
                cfg,
                ctx,
                platform=PLATFORM,
                account=f"{PLATFORM}:{cfg.base_url}:{cfg.project_id}",
                auth=auth,
                headers={"Api-Revision": cfg.api_revision},
            )
        )

    def _client_auth(self) -> Auth | None:
        if self.cfg.oauth_client_auth == "basic":
            assert self.cfg.client_id is not None and self.cfg.client_secret is not None
            return Basic(self.cfg.client_id, self.cfg.client_secret)
        return None

    # -- OAuth -------------------------------------------------------------------------

    async def fetch_token(self) -> tuple[SecretStr, float]:
        """One client-credentials grant at ``token_url``: ``(access token, lifetime s)``."""
        cfg = self.cfg
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if cfg.oauth_scope:
            form["scope"] = cfg.oauth_scope
        if cfg.oauth_subject:
            form["sub"] = cfg.oauth_subject
        if cfg.oauth_client_auth == "body":
            assert cfg.client_id is not None and cfg.client_secret is not None
            form["client_id"] = cfg.client_id
            form["client_secret"] = cfg.client_secret.get_secret_value()
        body = await self._token_api.request_json(
            "POST", cfg.token_url, data=form, table=_TOKEN_TABLE
        )
        try:
            answer = TokenAnswer.model_validate(body)
        except ValueError:
            raise FatalError(
                "token endpoint answered without access_token", platform=PLATFORM
            ) from None
        lifetime = answer.expires_in if answer.expires_in else cfg.token_lifetime_s
        return SecretStr(answer.access_token), float(lifetime)

    # -- project, templates, passes ----------------------------------------------------

    async def get_project(self) -> Project:
        return Project.model_validate(await self.api.get_json(f"project/{self.project}"))

    async def get_template(self, template_id: int) -> Template:
        return Template.model_validate(await self.api.get_json(f"template/{int(template_id)}"))

    async def pass_pages(
        self,
        template_id: int,
        *,
        page_size: int = 100,
        order: Literal["id", "name", "createdAt", "updatedAt"] = "id",
        direction: Literal["ASC", "DESC"] = "ASC",
        status: str | None = None,
    ) -> AsyncIterator[list[PassSummary]]:
        """``GET /template/{id}/passes``, page by page (1-based) until a short page."""
        page = 1
        while True:
            params: dict[str, Any] = {
                "page": page,
                "pageSize": page_size,
                "order": order,
                "direction": direction,
            }
            if status:
                params["status"] = status
            body = await self.api.get_json(f"template/{int(template_id)}/passes", params)
            if not isinstance(body, dict) or not isinstance(body.get("passes"), list):
                raise RetryableError("pass list is not the documented shape", platform=PLATFORM)
            found = PassPage.model_validate(body)
            if found.passes:
                yield found.passes
            if len(found.passes) < page_size or page * page_size >= found.count:
                return
            page += 1

    async def update_pass(self, template_id: int, external_id: str, fields: dict[str, Any]) -> bool:
        """Partial update ``PUT /pass/template/{templateId}/id/{externalId}``: only ``fields``
        change (Wallet answers with an async ``ticketId``). False if no such pass exists."""
        response = await self.api.request(
            "PUT",
            f"pass/template/{int(template_id)}/id/{_seg(external_id)}",
            json_body={"fields": fields},
            table={**_REJECT_400, **_NOT_FOUND_IS_ANSWER},
        )
        return response.status_code != 404

    # -- events ------------------------------------------------------------------------

    def _events(self) -> str:
        return f"events/project/{self.project}"

    async def create_event(self, external_id: str, body: dict[str, Any]) -> EventOut:
        """``POST /events/project/{projectId}/id/{externalId}``. RecordRejected on 400, which
        is also what an external id that already exists gets."""
        answer = await self.api.request_json(
            "POST", f"{self._events()}/id/{_seg(external_id)}", json_body=body, table=_REJECT_400
        )
        return EventOut.model_validate(answer or {})

    async def get_event(self, external_id: str) -> EventOut | None:
        # A body cut short is retried like a 5xx (it follows a create whose answer may have
        # been lost the same way); ``response.json()`` let it end the run as a JSON error.
        status, answer = await self.api.request_status_json(
            "GET", f"{self._events()}/id/{_seg(external_id)}", table=_NOT_FOUND_IS_ANSWER
        )
        if status == 404:
            return None
        return EventOut.model_validate(answer or {})

    async def update_pass_group(self, group: str, fields: dict[str, Any]) -> bool:
        """``PUT /events/project/{projectId}/passGroups/{group}``: every event of the group,
        and every pass of those events, takes ``fields``. False if the group is unknown."""
        response = await self.api.request(
            "PUT",
            f"{self._events()}/passGroups/{_seg(group)}",
            json_body={"fields": fields},
            table={**_REJECT_400, **_NOT_FOUND_IS_ANSWER},
        )
        return response.status_code != 404

    # -- adaptive links ----------------------------------------------------------------

    async def create_links(self, event_external_id: str, attendees: list[Any]) -> list[LinkOut]:
        """``POST /links/adaptive/multiple/project/{projectId}``: one link per attendee of an
        existing event, in the configured body shape."""
        templates: dict[str, Any] = {}
        if self.cfg.ios_template_id is not None:
            templates["iosTemplateId"] = self.cfg.ios_template_id
        if self.cfg.android_template_id is not None:
            templates["androidTemplateId"] = self.cfg.android_template_id
        if self.cfg.links_body == "payload_events":
            body = {
                **templates,
                "payload": {
                    "events": [{"eventExternalId": event_external_id, "attendees": attendees}]
                },
            }
        else:
            body = {**templates, "eventExternalId": event_external_id, "attendees": attendees}
        answer = await self.api.request_json(
            "POST", f"links/adaptive/multiple/project/{self.project}", json_body=body
        )
        try:
            return links_of(answer)
        except ValueError as exc:
            raise RetryableError(str(exc), platform=PLATFORM) from None

    # -- callbacks ---------------------------------------------------------------------

    async def register_callback(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        method: Literal["POST", "PUT"] = "POST",
    ) -> Any:
        """``POST`` (create) or ``PUT`` (replace) ``/project/{projectId}/settings/callback``:
        Wallet then POSTs pass install/uninstall events under ``base_url`` with ``headers``
        (a shared secret header, checked by ``schemas.verify_callback``)."""
        return await self.api.request_json(
            method,
            f"project/{self.project}/settings/callback",
            json_body={"baseUrl": base_url, "headers": dict(headers)},
        )

    async def check_credentials(self) -> None:
        """Obtain a token now (OAuth); Basic has nothing to obtain. Raises AuthError."""
        if self.oauth is not None:
            await self.oauth.token()
