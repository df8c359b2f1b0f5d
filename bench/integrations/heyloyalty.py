"""Ticketmaster -> Heyloyalty: customers as list members, orders as purchase events.

ticketbridge's project is the demo's (``ticketbridge init``) sync: every customer and order
the Ticketmaster sandbox has (the sync has no window: a first run reads everything), members
matched on e-mail, consent required on any channel, the ``Cardnumber`` and ``reference``
fields. ``--records`` counts Ticketmaster customers (about 1.15 orders each).

What a run sends per record (what the dlt and raw jobs would have to send too): a member
upsert per consenting customer, a status PATCH after it when a channel the customer did not
grant must be off, the list read once a run, a member look-up per batch of first writes, and
the tracking import, several orders a call.

Source keys here are Ticketmaster customer ids: a member's ``reference`` field holds its
customer's id, so a write to ``member:<Heyloyalty id>`` is traced back through
``/_sandbox/data``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from bench.contenders import Contender, Job
from bench.integrations.base import Change, Held, Integration, connection
from bench.procs import Sandbox
from ticketbridge.demo import INTEGRATIONS


class TicketmasterHeyloyalty(Integration):
    name = "ticketmaster-heyloyalty"
    sync = "ticketmaster-customers-to-heyloyalty"
    source = "ticketmaster"
    destination = "heyloyalty"
    unit = "customers"

    def project(self, source: str, destination: str, job: Job) -> dict[str, Any]:
        [demo] = [i for i in INTEGRATIONS if i.sync == self.sync]
        sync = {**demo.config(), "batch_size": job.batch_size}
        sync.pop("schedule", None)
        tm = connection("ticketmaster", source)
        # The sandbox runs without its 5 calls/s spike arrest (bench/serve_sandbox.py), so
        # ticketbridge is not held to it either.
        tm.update(rate_per_second=None, page_size=min(job.per_page, 199))
        hl = {**connection("heyloyalty", destination), "concurrency": job.concurrency}
        return {
            "connections": {"ticketmaster": tm, "heyloyalty": hl},
            "syncs": {self.sync: sync},
        }

    def command(self, contender: Contender, source: str, destination: str) -> list[str] | None:
        job = contender.job
        common = ["--ticketmaster", source, "--heyloyalty", destination]
        common += ["--per-page", str(min(job.per_page, 199))]
        if contender.name == "raw-aiohttp":
            module = "bench.integrations.heyloyalty_raw"
            return [sys.executable, "-m", module, *common, "--concurrency", str(job.concurrency)]
        if contender.name == "dlt-defaults":
            module = "bench.integrations.heyloyalty_dlt"
            return [
                sys.executable,
                "-m",
                module,
                *common,
                "--batch-size",
                str(job.batch_size),
                "--pipelines-dir",
                str(contender.workdir / "pipelines"),
            ]
        return None

    def _references(self, destination: Sandbox) -> dict[str, str]:
        """Heyloyalty member id -> Ticketmaster customer id."""
        return {
            str(m["id"]): str(m["fields"].get("reference"))
            for m in destination.data()["members"]
            if m["fields"].get("reference") is not None
        }

    def written(self, writes: dict[str, Any], destination: Sandbox) -> set[str]:
        ids = [k.split(":", 1)[1] for k in writes if k.startswith("member:")]
        if not ids:
            return set()
        refs = self._references(destination)
        return {refs.get(i, f"member:{i}") for i in ids}

    def held(self, destination: Sandbox) -> Held:
        data = destination.data()
        keys = Counter(
            str(m["fields"]["reference"])
            for m in data["members"]
            if m["fields"].get("reference") is not None
        )
        emails = Counter(
            str(m["fields"]["email"]).casefold()
            for m in data["members"]
            if m["fields"].get("email")
        )
        orders = {str(r.get("order_id")) for r in data["tracking"]}
        return Held(
            keys,
            {
                "members": len(data["members"]),
                "duplicate_emails": sum(n - 1 for n in emails.values() if n > 1),
                "tracked_orders": len(orders),
                # The tracking import has no idempotency key (platforms.md 5.6): an order
                # imported twice shows up as twice its rows, so the rows are compared with
                # those of a full load. Reported, not failed (ticketbridge documents purchases
                # as at-least-once across a crash).
                "tracking_rows": len(data["tracking"]),
            },
        )

    def changes(
        self,
        share: float,
        run: int,
        source: Sandbox,
        destination: Sandbox,
        oracle: set[str],
        first: bool,
    ) -> Iterator[Change]:
        body = {
            "share": share,
            "consent_flip_share": 0.0,
            "new_customers": 0,
            "new_orders": 0,
            "seed": 100 + run,
        }
        changed = {str(c) for c in source.mutate(body)["changed"]}
        yield Change(f"S3-{share:.0%}", changed & oracle, len(changed))
