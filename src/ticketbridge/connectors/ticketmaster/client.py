"""Ticketmaster client-data API over HTTP: typed methods on :class:`ApiClient`, nothing else.

Auth [GAP -> INFER]: the API key as a query parameter (``Paths.api_key``, ``apikey`` as on
Discovery) and the username/password as HTTP Basic auth, on every request. The key sits in
every URL, so nothing here logs a URL; error messages built from response bodies are
scrubbed of every secret of the connection (an Apigee quota fault names the key it
throttled: ``Identifier : <key>``).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ticketbridge.connectors.kit import ClientKit, connection_client
from ticketbridge.connectors.ticketmaster.config import PLATFORM, TicketmasterConfig
from ticketbridge.connectors.ticketmaster.schemas import ListPage, PageInfo, dig, format_stamp
from ticketbridge.errors import ConnectorError, FatalError
from ticketbridge.http import HttpContext
from ticketbridge.http.auth import QueryToken
from ticketbridge.http.outcomes import Action

# A customer lookup answers 404 for "no such customer": an answer, not a failure.
_NOT_FOUND_IS_ANSWER = {404: Action.OK}
REDACTED = "[redacted]"


class TicketmasterClient(ClientKit):
    """One connection's client. ``calls`` counts HTTP attempts, retries included."""

    def __init__(self, config: TicketmasterConfig, context: HttpContext) -> None:
        super().__init__()
        self.config = config
        self.paths = config.paths
        base_url = config.base_url.rstrip("/")
        # The limit is per API key [DOC 4.2]; keyed by host, market and user so the key itself
        # never becomes a dict key anywhere.
        # ApiClient takes one auth flow: the key goes there (it stays a SecretStr until sent),
        # the Basic credentials go in a default header that httpx masks in its reprs.
        basic = f"{config.username}:{config.password.get_secret_value()}".encode()
        self.api = self.own(
            connection_client(
                config,
                context,
                platform=PLATFORM,
                account=f"{PLATFORM}:{base_url}:{config.market}:{config.username}",
                auth=QueryToken(self.paths.api_key, config.api_key),
                base_url=base_url,
                headers={
                    "Authorization": "Basic " + base64.b64encode(basic).decode("ascii"),
                    "Accept": "application/json",
                },
            )
        )
        self._secrets = [s for s in config.secrets() if s]

    async def _get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        try:
            return await self.api.request_json("GET", path, params=params, **kw)
        except ConnectorError as exc:
            raise self._scrubbed(exc) from None

    def _scrubbed(self, exc: ConnectorError) -> ConnectorError:
        message = exc.message
        for secret in self._secrets:
            message = message.replace(secret, REDACTED)
        if message != exc.message:
            exc.message = message
            exc.args = (exc._render(),)
        return exc

    # -- lists ---------------------------------------------------------------------------

    def _list_params(
        self, since: datetime | None, until: datetime | None, page: int, size: int
    ) -> dict[str, Any]:
        p = self.paths
        params: dict[str, Any] = {p.page: page, p.size: size, p.sort: p.sort_ascending}
        if since is not None:
            params[p.updated_since] = format_stamp(since)
        if until is not None:
            params[p.updated_until] = format_stamp(until)
        return params

    async def _list(
        self,
        resource: str,
        list_key: str,
        since: datetime | None,
        until: datetime | None,
        page: int,
        size: int,
    ) -> ListPage:
        path = self.paths.render(resource, market=self.config.market)
        body = await self._get(path, self._list_params(since, until, page, size))
        items = _dig_list(body, list_key, resource)
        raw_page = dig(body, self.paths.page_object)
        try:
            info = PageInfo.model_validate(raw_page if isinstance(raw_page, dict) else {})
        except ValidationError:
            raise FatalError(f"GET {resource}: unreadable page object", platform=PLATFORM) from None
        return ListPage(items=items, page=info)

    async def customers_page(
        self, *, since: datetime | None, until: datetime | None, page: int, size: int
    ) -> ListPage:
        """One page of customers updated in ``[since, until)``, oldest update first."""
        return await self._list("customers", self.paths.customers_list, since, until, page, size)

    async def orders_page(
        self, *, since: datetime | None, until: datetime | None, page: int, size: int
    ) -> ListPage:
        """One page of orders updated in ``[since, until)``, oldest update first."""
        return await self._list("orders", self.paths.orders_list, since, until, page, size)

    # -- one customer --------------------------------------------------------------------

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        """``GET /{market}/customers/{id}``: the customer as received, None if unknown."""
        path = self.paths.render("customer", market=self.config.market, id=customer_id)
        body = await self._get(path, table=_NOT_FOUND_IS_ANSWER)
        if not isinstance(body, dict) or "fault" in body:
            return None
        # Some gateways wrap single objects ({"customer": {...}}); accept both [INFER].
        inner = body.get("customer")
        return inner if isinstance(inner, dict) else body


def _dig_list(body: Any, dotted: str, resource: str) -> list[dict[str, Any]]:
    found = dig(body, dotted)
    if found is None:
        return []  # Discovery omits the list (``_embedded``) entirely on an empty page
    if not isinstance(found, list):
        raise FatalError(f"GET {resource}: expected a list under {dotted!r}", platform=PLATFORM)
    # A non-object item is wrapped, not dropped: mapping then fails it with its reason.
    return [item if isinstance(item, dict) else {"_not_an_object": item} for item in found]
