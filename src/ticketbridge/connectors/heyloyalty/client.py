"""HTTP only: typed methods over ``http.ApiClient`` for Heyloyalty's API and tracking import.

Every request is signed the way the official PHP client signs it (``TimestampHmacBasic``: a
fresh ``X-Request-Timestamp`` per attempt, Basic auth ``api_key : base64(hex HMAC-SHA256)``),
draws from the account's shared rate budget, and goes through ``ApiClient``'s one retry and
translation path: 401/403 -> AuthError, 422 -> RecordRejected, 429/5xx retried. The secret
lives in the auth flow only; no message here contains it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ticketbridge.connectors.heyloyalty.config import PLATFORM, HeyloyaltyConfig
from ticketbridge.connectors.heyloyalty.schemas import (
    HlList,
    Member,
    UpsertResult,
    lists_of,
    members_of,
)
from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.errors import FatalError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import TimestampHmacBasic

MAX_PER_PAGE = 5000  # documented maximum of ``perpage``
# Values per lookup call: each is a ``filter[f][eq][]=`` pair in the query string, and URLs
# beyond a few kilobytes are refused by common proxies.
LOOKUP_CHUNK = 50


def _flag(value: bool) -> int:
    return 1 if value else 0


class HeyloyaltyClient(ClientKit):
    def __init__(
        self, cfg: HeyloyaltyConfig, ctx: HttpContext, *, clock: Callable[[], str] | None = None
    ) -> None:
        super().__init__()
        self.list_id = cfg.list_id
        self._or_verified = False  # an answer has matched several values of one look-up
        # One bucket per account (API key), whichever sync or host (API, tracking) uses it.
        auth = TimestampHmacBasic(cfg.api_key, cfg.api_secret, now=clock)
        account = f"{PLATFORM}:{cfg.api_key}"
        self.api = self.own(
            connection_client(cfg, ctx, platform=PLATFORM, account=account, auth=auth)
        )
        self.tracking = self.own(
            connection_client(
                cfg,
                ctx,
                platform=PLATFORM,
                account=account,
                auth=auth,
                base_url=cfg.tracking_base_url,
            )
        )

    # -- lists -------------------------------------------------------------------------

    async def lists(self) -> list[HlList]:
        """``GET /lists``: every list of the account (without their fields)."""
        return lists_of(await self.api.get_json("lists"))

    async def get_list(self) -> HlList:
        """``GET /lists/{id}``: the configured list with its fixed and custom fields.

        A missing list is a 404 ("List not found"), raised as FatalError by ApiClient.
        """
        body = await self.api.get_json(f"lists/{self.list_id}")
        if not isinstance(body, dict):
            raise FatalError(
                f"GET /lists/{self.list_id} answered without a list", platform=PLATFORM
            )
        return HlList.model_validate(body)

    # -- members -----------------------------------------------------------------------

    async def find_members(
        self,
        field: str,
        values: Sequence[str],
        same: Callable[[Any, str], bool] | None = None,
        *,
        fail_closed: bool = True,
    ) -> list[Member]:
        """Members whose ``field`` equals any of ``values``, all pages.

        One ``filter[field][eq][]`` per value with ``logic=or`` (the documented way to ask for
        "John or Jane"), so a whole write batch costs one call per ``LOOKUP_CHUNK`` values.

        The answer decides whether an unsubscribed member is re-activated, so it must fail
        closed: a member that matches none of the values means the filter was ignored (an
        error), and until one answer has shown ``logic=or`` honoured (members for two values
        or more), each value it did not find is asked for again on its own. ``same(stored,
        asked)`` compares values (e.g. mobile numbers in any format); default: equal text.
        ``fail_closed=False`` skips the asking again, for a caller to whom a member not
        found costs nothing worse than treating it as new.
        """
        match = same or (lambda stored, asked: str(stored).casefold() == asked.casefold())
        found: list[Member] = []
        unique = list(dict.fromkeys(v for v in values if v))
        for start in range(0, len(unique), LOOKUP_CHUNK):
            chunk = unique[start : start + LOOKUP_CHUNK]
            batch = await self._lookup(field, chunk, match)
            hit = {v for v in chunk if any(match(m.fields().get(field), v) for m in batch)}
            if len(hit) >= 2:
                self._or_verified = True
            if fail_closed and not self._or_verified and len(chunk) > 1:
                for value in chunk:
                    if value not in hit:
                        batch.extend(await self._lookup(field, [value], match))
            found.extend(batch)
        return found

    async def _lookup(
        self, field: str, chunk: list[str], match: Callable[[Any, str], bool]
    ) -> list[Member]:
        found: list[Member] = []
        page = 1
        while True:
            params: dict[str, Any] = {
                f"filter[{field}][eq][]": chunk,
                "page": page,
                "perpage": MAX_PER_PAGE,
            }
            if len(chunk) > 1:
                params["logic"] = "or"
            body = await self.api.get_json(f"lists/{self.list_id}/members", params)
            batch = members_of(body)
            stray = [m.id for m in batch if not any(match(m.fields().get(field), v) for v in chunk)]
            if stray:
                raise FatalError(
                    f"GET /lists/{self.list_id}/members answered members whose {field} is none "
                    f"of the values asked for ({len(stray)} of {len(batch)}): the filter was "
                    "not applied, so unsubscribed members cannot be told apart",
                    platform=PLATFORM,
                )
            found.extend(batch)
            if len(batch) < MAX_PER_PAGE:
                return found
            page += 1

    async def upsert_member(
        self,
        unique_field: str,
        member: dict[str, Any],
        *,
        skip_optin: bool,
        trigger_automations: bool,
        send_webhooks: bool,
    ) -> UpsertResult:
        """``POST /lists/{id}/members/upsert`` -> ``{type: create|update, member_id}``.

        Sent as raw JSON, as the upsert documentation asks. ``search_temporary`` is always on
        so a member still waiting for its opt-in confirmation is updated, not created twice.
        ``trigger_autoresponder`` / ``trigger_webhooks`` borrow the bulk import's switch names
        [GAP: the upsert documents no switch for automations or webhooks].
        """
        body: dict[str, Any] = {
            "unique_field": unique_field,
            "search_temporary": True,
            "trigger_autoresponder": _flag(trigger_automations),
            "trigger_webhooks": _flag(send_webhooks),
            "member": member,
        }
        if skip_optin:
            body["skipOptIn"] = 1  # documented value; omitted, the list's opt-in mail goes out
        answer = await self.api.request_json(
            "POST", f"lists/{self.list_id}/members/upsert", json_body=body
        )
        if not isinstance(answer, dict) or not answer.get("member_id"):
            raise FatalError("POST /members/upsert answered without a member_id", platform=PLATFORM)
        return UpsertResult.model_validate(answer)

    async def set_member_status(self, member_id: str, status: dict[str, str]) -> None:
        """``PATCH /lists/{id}/members/{memberId}`` with ``{"status": {channel: value}}``: the
        documented way to change a subscription (the upsert's body holds list fields only)."""
        await self.api.request_json(
            "PATCH", f"lists/{self.list_id}/members/{member_id}", json_body={"status": status}
        )

    # -- tracking (Heycommerce) --------------------------------------------------------

    async def import_transactions(
        self, tracking_id: str, rows: list[dict[str, Any]], *, errors_to: str | None
    ) -> dict[str, Any]:
        """``POST {tracking}/transaction/import/{trackingId}`` with JSON rows [INFER: the page
        documents a multipart CSV upload with the same column names; ApiClient sends no files].

        The response body is read leniently and never re-requested: a 2xx whose body is cut
        short still means the rows were stored, and asking again would store them twice.
        """
        body: dict[str, Any] = {
            "date_format": "iso8601",
            "skip_header_line": False,
            "rows": rows,
        }
        if errors_to:
            body["sendErrorsTo"] = errors_to
        response = await self.tracking.request(
            "POST", f"transaction/import/{tracking_id}", json_body=body
        )
        try:
            answer = response.json() if response.content else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            answer = {}
        return answer if isinstance(answer, dict) else {}
