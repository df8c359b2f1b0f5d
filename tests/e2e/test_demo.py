"""`ticketbridge demo --json`: every integration, twice, against sandboxes under uvicorn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ticketbridge.demo import INTEGRATIONS

pytestmark = pytest.mark.e2e

FIELDS = {
    "read",
    "created",
    "updated",
    "unchanged",
    "rejected",
    "source_calls",
    "destination_calls",
    "outcome",
}


def test_demo_runs_every_integration_and_the_second_run_sends_only_changes(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ticketbridge", "demo", "--json", "--records", "200"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [s["name"] for s in report["syncs"]] == [i.sync for i in INTEGRATIONS]
    for sync in report["syncs"]:
        first, second = sync["runs"]
        assert set(first) >= FIELDS and set(second) >= FIELDS
        assert first["outcome"] == second["outcome"] == "ok", sync
        assert first["created"] > 0
        added = sum(n for k, n in sync["source_changes"].items() if k.startswith("new"))
        assert second["created"] <= added, "only records new at the source are created"
        if next(i for i in INTEGRATIONS if i.sync == sync["name"]).config().get("diff"):
            # A diff feed hands over only what changed since the stored key.
            assert second["read"] == sync["source_changes"]["changed"] > 0
        else:
            assert second["unchanged"] > 0, "unchanged records are skipped"
        assert second["destination_calls"] < first["destination_calls"]
    # TicketCo -> Airship Wallet: a seat change is one pass update per template (2), an
    # event moved is one pass-group update, however many passes the event has.
    wallet = next(s for s in report["syncs"] if s["name"] == "ticketco-tickets-to-wallet")
    first, second = wallet["runs"]
    changes = wallet["source_changes"]
    assert changes["seat_changed"] == changes["event_moved"] == 1
    moved = changes["tickets_of_the_moved_event"]
    assert moved >= 2, "an event with several passes"
    assert first["rejected"] == 0 and first["created"] == first["read"]
    assert second["updated"] == 1 + moved
    assert second["unchanged"] == first["created"] - 1 - moved
    assert second["destination_calls"] == 3
    sale = report["tiqets_sale"]
    assert sale["booking_id"] and sale["cancellation"]["status"] == 204
    assert sale["second_cancellation"]["error_code"] == 3003
    order = sale["acme_order"]
    assert order is not None and str(order["id"]) == str(sale["acme_order_id"])
    assert order["refundAmount"] == order["totalAmount"] != "0"
    assert not list(tmp_path.iterdir()), "the demo leaves nothing behind in the directory"
