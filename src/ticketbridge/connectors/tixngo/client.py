"""TIXNGO over HTTP: typed methods on :class:`ApiClient`, nothing else.

The API key travels in a header (or in Basic auth), never in a URL; the organizer e-mail is
not a secret but goes with every request too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.connectors.tixngo.config import TixngoConfig
from ticketbridge.errors import FatalError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import Auth, Basic, HeaderToken
from ticketbridge.http.paginate import page_items, shape_of

PLATFORM = "tixngo"
PaginationKey = str | int


@dataclass(frozen=True)
class DiffPage:
    """One answer of the diff endpoint: the updates and the key to ask with next (None when
    the answer had none)."""

    tickets: list[dict[str, Any]]
    next_key: PaginationKey | None


class TixngoClient(ClientKit):
    """One organizer's client. ``calls`` counts HTTP attempts, retries included."""

    def __init__(self, config: TixngoConfig, context: HttpContext) -> None:
        super().__init__()
        self.config = config
        auth: Auth
        headers: dict[str, str] | None
        if config.auth == "basic":
            auth = Basic(config.organizer_email, config.api_key)
            headers = None
        else:
            auth = HeaderToken(config.api_key_header, config.api_key)
            headers = {config.email_header: config.organizer_email}
        self.api = self.own(
            connection_client(
                config,
                context,
                platform=PLATFORM,
                # One budget per organizer, shared by every sync that reads it.
                account=config.lease_scope(),
                auth=auth,
                base_url=config.base_url.rstrip("/"),
                headers=headers,
            )
        )

    async def diff(self, key: PaginationKey | None, limit: int) -> DiffPage:
        """``GET diff_path?paginationKey=&limit=``: the key is sent back exactly as TIXNGO
        gave it (opaque, never parsed) and left out on the very first call.

        An answer that is not ``{"tickets": [...], "nextPageKey": ...}`` is a FatalError
        naming the path, never an empty page: reading it as "no news" would end a broken run
        ``ok`` and leave the feed where it was without anyone noticing.
        """
        cfg = self.config
        params: dict[str, Any] = {cfg.limit_param: limit}
        if key is not None:
            params[cfg.key_param] = key
        path = cfg.diff_path.lstrip("/")
        body = await self.api.get_json(path, params)
        where = f"GET /{path}"
        tickets = page_items(body, cfg.tickets_key, PLATFORM, "/" + path)
        assert isinstance(body, dict)  # page_items found the list under a key
        nxt = body.get(cfg.next_key_field)
        if nxt is not None and (not isinstance(nxt, str | int) or isinstance(nxt, bool)):
            raise FatalError(
                f"{where}: the answer is not the documented shape: {cfg.next_key_field!r} "
                f"is {shape_of(nxt)}, not a key",
                platform=PLATFORM,
            )
        for entry in tickets:
            if not isinstance(entry, dict):
                raise FatalError(
                    f"{where}: the answer is not the documented shape: an entry of "
                    f"{cfg.tickets_key!r} is {shape_of(entry)}, not a ticket update",
                    platform=PLATFORM,
                )
        return DiffPage(tickets, None if nxt == "" else nxt)
