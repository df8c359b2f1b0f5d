"""The only package that imports httpx: client, auth schemes, paginators, retries, budgets.

Names are loaded on first use, so importing a submodule (or this package for a type hint)
does not load httpx and aiohttp for modules that never open a connection.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ticketbridge.http.budget import RateBudget
    from ticketbridge.http.client import ApiClient
    from ticketbridge.http.context import HttpContext
    from ticketbridge.http.retry import RetryPolicy

# httpx's __init__ imports its own command-line client (``httpx._main``: Click, Rich and
# Pygments, a tenth of a second) whenever those are installed, and here they are (Typer needs
# Rich). ticketbridge never runs that client, so before httpx is first imported it is marked
# absent; httpx then defines a ``main`` that says its CLI extras are missing. Every command's
# start-up is shorter by it (bench/README.md, "Start-up").
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__all__ = ["ApiClient", "HttpContext", "RateBudget", "RetryPolicy"]

_HOMES = {
    "ApiClient": "ticketbridge.http.client",
    "HttpContext": "ticketbridge.http.context",
    "RateBudget": "ticketbridge.http.budget",
    "RetryPolicy": "ticketbridge.http.retry",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ticketbridge.http' has no attribute {name!r}")
    return getattr(import_module(home), name)
