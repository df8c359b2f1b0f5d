"""Connector discovery through the ``ticketbridge.connectors`` entry-point group.

Built-in connectors register exactly like third-party ones (see pyproject.toml), so a venue's
own connector package becomes available by being installed, with no change here.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoints, entry_points

from ticketbridge.connectors.base import Connector
from ticketbridge.errors import ConfigError

GROUP = "ticketbridge.connectors"


@cache
def _group() -> EntryPoints:
    """The group's entry points, read once per process: each ``entry_points()`` call reads
    the metadata of every installed distribution (tens of milliseconds), and a project with
    two connections would otherwise pay it twice before its first request."""
    return entry_points(group=GROUP)


def names() -> list[str]:
    """Every installed platform name, without importing any connector."""
    return sorted({ep.name for ep in _group()})


@cache
def get(platform: str) -> Connector:
    """Load one connector. Only the named entry point is imported, so a broken third-party
    connector cannot stop projects that do not use it."""
    found = list(_group().select(name=platform))
    if not found:
        known = ", ".join(names()) or "none installed"
        raise ConfigError(f"unknown platform {platform!r} (known: {known})")
    obj = found[0].load()
    if not isinstance(obj, Connector):
        raise TypeError(f"entry point {platform} ({found[0].value}) is not a Connector")
    if obj.platform != platform:
        raise TypeError(f"entry point {platform} registers platform {obj.platform!r}")
    return obj
