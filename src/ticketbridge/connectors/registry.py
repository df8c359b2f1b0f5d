"""Connector discovery through the ``ticketbridge.connectors`` entry-point group.

Built-in connectors register exactly like third-party ones (see pyproject.toml), so a venue's
own connector package becomes available by being installed, with no change here.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from ticketbridge.connectors.base import Connector
from ticketbridge.errors import ConfigError

GROUP = "ticketbridge.connectors"


@cache
def connectors() -> dict[str, Connector]:
    found: dict[str, Connector] = {}
    for ep in entry_points(group=GROUP):
        obj = ep.load()
        if not isinstance(obj, Connector):
            raise TypeError(f"entry point {ep.name} ({ep.value}) is not a Connector")
        if obj.platform != ep.name:
            raise TypeError(f"entry point {ep.name} registers platform {obj.platform!r}")
        found[obj.platform] = obj
    return found


def get(platform: str) -> Connector:
    try:
        return connectors()[platform]
    except KeyError:
        known = ", ".join(sorted(connectors())) or "none installed"
        raise ConfigError(f"unknown platform {platform!r} (known: {known})") from None
