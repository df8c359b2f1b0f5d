"""Paginators: each turns "get the next page" into an async iterator of item lists.

They are small and separate because platforms combine the same few styles in different ways.
Each yields ``(items, position)`` where ``position`` is what a resumed read passes back in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ticketbridge.errors import FatalError
from ticketbridge.http.client import ApiClient

Items = list[dict[str, Any]]


def shape_of(value: Any) -> str:
    """What a JSON value is, for an error message (never the value: it may hold personal data)."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:8])
        return f"an object with keys [{keys}]" if value else "an empty object"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def page_items(body: Any, key: str | None, platform: str, path: str = "") -> Items:
    """The item list of a page: the body itself, or under ``key`` (dotted for nesting, as in
    HAL's ``_embedded.events``).

    A body of another shape (null, a list where an object belongs, a missing key) is an error
    of the run, never an empty page: taking it for "no data" would end a broken run ``ok``.
    """
    found = body
    where = f"GET {path}: " if path else ""
    for part in key.split(".") if key else ():
        if not isinstance(found, dict) or part not in found:
            raise FatalError(
                f"{where}the answer is not the documented shape: expected an object with "
                f"{key!r}, got {shape_of(body)}",
                platform=platform,
            )
        found = found[part]
    if not isinstance(found, list):
        raise FatalError(
            f"{where}the answer is not the documented shape: expected a list"
            + (f" under {key!r}" if key else "")
            + f", got {shape_of(found)}",
            platform=platform,
        )
    return found


async def page_until_empty(
    client: ApiClient,
    path: str,
    *,
    key: str | None,
    params: Mapping[str, Any] | None = None,
    start: int = 1,
    page_param: str = "page",
    size_param: str | None = None,
    size: int | None = None,
    short_is_last: bool = False,
) -> AsyncIterator[tuple[Items, int]]:
    """Page numbers from ``start`` until a page comes back empty (TicketCo style).

    Yields each page's items with the next page number to ask for. With ``short_is_last``
    (and a ``size`` sent), a page with fewer than ``size`` items ends the list too.
    """
    page = start
    while True:
        query = dict(params or {})
        query[page_param] = page
        if size_param and size:
            query[size_param] = size
        items = page_items(await client.get_json(path, query), key, client.platform, path)
        if not items:
            return
        page += 1
        yield items, page
        if short_is_last and size_param and size and len(items) < size:
            return


async def opaque_key(
    client: ApiClient,
    path: str,
    *,
    key: str | None,
    params: Mapping[str, Any] | None = None,
    position: str | None = None,
    key_param: str = "paginationKey",
    next_field: str = "nextPageKey",
) -> AsyncIterator[tuple[Items, str | None]]:
    """An opaque pagination key (TIXNGO diff feed). Stops on an empty page or no next key.

    The key yielded with the last page is where the next poll starts: a stable key with no
    items means "no news", so it is kept rather than reset.
    """
    current = position
    while True:
        query = dict(params or {})
        if current:
            query[key_param] = current
        body = await client.get_json(path, query)
        items = page_items(body, key, client.platform, path)
        nxt = (body or {}).get(next_field) if isinstance(body, dict) else None
        yield items, (nxt or current)
        if not items or not nxt or nxt == current:
            return
        current = nxt


async def laravel(
    client: ApiClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
) -> AsyncIterator[tuple[Items, int]]:
    """Laravel paginator: ``{data, current_page, last_page, next_page_url}``."""
    page = 1
    while True:
        body = await client.get_json(path, {**(params or {}), "page": page})
        items = page_items(body, "data", client.platform, path)
        yield items, page + 1
        last = int(body.get("last_page") or page)
        if not body.get("next_page_url") or page >= last:
            return
        page += 1


async def next_link(
    client: ApiClient,
    path: str,
    *,
    key: str | None,
    params: Mapping[str, Any] | None = None,
    link: Callable[[Any], str | None],
) -> AsyncIterator[tuple[Items, str | None]]:
    """Follow a next link found in the body (``_links.next.href`` and the like)."""
    url: str | None = path
    query: Mapping[str, Any] | None = params
    while url:
        body = await client.get_json(url, query)
        items = page_items(body, key, client.platform, url)
        url = link(body)
        query = None  # the link carries its own query
        yield items, url
