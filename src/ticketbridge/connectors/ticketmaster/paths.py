"""Every path and parameter name of the Ticketmaster client-data API, in one place.

The API behind Heyloyalty's Ticketmaster (Nordic, "TM1"/International) integration has no
public spec [GAP] (platforms.md 4.5, 12). Everything below is the shape platforms.md 4.5
proposes, in the style Ticketmaster documents for the Discovery API (``apikey`` query
parameter, ``page``/``size`` with a ``page{}`` object, ``sort=<field>,asc``): all [INFER].

When a venue brings the real spec, it overrides these names in the connection config
(``paths: {customers: "...", updated_since: "..."}``) without a code change; the sandbox serves
whatever :class:`Paths` it is built with, so both sides always agree.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, model_validator


class Paths(BaseModel):
    """Paths (relative to ``base_url``) and parameter names. Unknown keys are errors, so a
    misspelt override fails at config load instead of silently using a default.

    Invariants: ``customers`` and ``orders`` contain ``{market}``; ``customer`` contains
    ``{market}`` and ``{id}``; list and page locations are dotted paths into the body
    (``_embedded.customers`` reads ``{"_embedded": {"customers": [...]}}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- resources ---------------------------------------------------------------------
    customers: str = "{market}/customers"
    customer: str = "{market}/customers/{id}"
    orders: str = "{market}/orders"

    # -- query parameters --------------------------------------------------------------
    api_key: str = "apikey"  # Discovery's documented name; the Partner API uses it too
    updated_since: str = "updated_since"  # inclusive lower bound (platforms.md 4.5)
    updated_until: str = "updated_until"  # exclusive upper bound [INFER]
    page: str = "page"  # 0-based, as Discovery's page.number
    size: str = "size"
    sort: str = "sort"
    sort_ascending: str = "updated_at,asc"  # Discovery spells sorts "<field>,<direction>"

    # -- response body -----------------------------------------------------------------
    customers_list: str = "customers"
    orders_list: str = "orders"
    page_object: str = "page"

    @model_validator(mode="after")
    def _placeholders(self) -> Paths:
        for name in ("customers", "orders", "customer"):
            template = getattr(self, name)
            if "{market}" not in template:
                raise ValueError(f"paths.{name} must contain {{market}}, got {template!r}")
        if "{id}" not in self.customer:
            raise ValueError(f"paths.customer must contain {{id}}, got {self.customer!r}")
        return self

    def render(self, name: str, **values: Any) -> str:
        """The path ``name`` with its placeholders filled, each value URL-escaped (a market
        or id can never add a path segment)."""
        template: str = getattr(self, name)
        escaped = {k: quote(str(v), safe="") for k, v in values.items()}
        return template.format(**escaped).lstrip("/")

    def route(self, name: str) -> str:
        """The path as a Starlette route template (the sandbox serves exactly these)."""
        template: str = getattr(self, name)
        return "/" + template.lstrip("/")


def dig(body: Any, dotted: str) -> Any:
    """The value at ``a.b.c`` inside nested dicts, or None when any step is missing."""
    found = body
    for part in dotted.split("."):
        if not isinstance(found, dict):
            return None
        found = found.get(part)
    return found
