"""TIXNGO in a project file: the syncs reading one organizer share one lease, whatever
their names or connections are called, and a skip list takes bare ticket ids."""

from __future__ import annotations

from typing import Any

import yaml

from ticketbridge.connectors import registry
from ticketbridge.project import load_project_text


def project(connections: dict[str, dict[str, Any]], syncs: dict[str, Any]) -> str:
    return yaml.safe_dump({"connections": connections, "syncs": syncs})


def tixngo(email: str, url: str = "http://127.0.0.1:8407") -> dict[str, Any]:
    return {"platform": "tixngo", "base_url": url, "organizer_email": email, "api_key": "k"}


def sync(connection: str, **more: Any) -> dict[str, Any]:
    return {
        "source": {"connection": connection, "stream": "ticket_updates"},
        "destination": {"connection": "wallet", "object": "event_tickets"},
        "diff": True,
        "schedule": "every 5m",
        **more,
    }


def load(connections: dict[str, dict[str, Any]], syncs: dict[str, Any]) -> Any:
    wallet = registry.get("airship_wallet").sandbox
    assert wallet is not None
    env = dict(wallet.env)
    connections = {"wallet": wallet.config("http://127.0.0.1:8406"), **connections}
    return load_project_text(project(connections, syncs), env=env)


def test_syncs_reading_one_organizer_share_its_lease() -> None:
    loaded = load(
        {
            "club": tixngo("admin@club.example"),
            # Another connection to the same organizer (the address in other case): the
            # same organizer, so the same lease.
            "club_again": tixngo("Admin@CLUB.example", "http://127.0.0.1:8407/"),
            "other": tixngo("admin@other.example"),
        },
        {
            "org-a": sync("club"),
            "org-b": sync("club_again"),
            "org-c": sync("other"),
        },
    )
    keys = {name: s.lease_key for name, s in loaded.syncs.items()}
    assert keys["org-a"] == keys["org-b"] == "tixngo:http://127.0.0.1:8407:admin@club.example"
    assert keys["org-c"] == "tixngo:http://127.0.0.1:8407:admin@other.example"
    assert all(s.shared_lease == s.lease_key for s in loaded.syncs.values())
    assert all(s.strategy == "diff" for s in loaded.syncs.values())


def test_a_sync_of_another_source_keeps_its_own_lease() -> None:
    ticketco = registry.get("ticketco").sandbox
    assert ticketco is not None
    loaded = load(
        {"ticketco": {**ticketco.config("http://127.0.0.1:8401"), "token": "t"}},
        {
            "tickets": {
                "source": {"connection": "ticketco", "stream": "tickets"},
                "destination": {"connection": "wallet", "object": "event_tickets"},
            }
        },
    )
    assert loaded.syncs["tickets"].lease_key == "tickets"
    assert loaded.syncs["tickets"].shared_lease is None


def test_a_skip_list_of_bare_ticket_ids() -> None:
    loaded = load(
        {"club": tixngo("admin@club.example")},
        {"org-a": sync("club", skip=["S360-000007", "A:B"])},
    )
    spec = loaded.syncs["org-a"]
    assert spec.is_skipped("ticket:tixngo:S360-000007")
    assert spec.is_skipped("ticket:tixngo:A:B"), "an id with a colon in it"
    assert not spec.is_skipped("ticket:tixngo:S360-000070")
    assert not spec.is_skipped("ticket:tixngo:B")
