"""Ticketmaster -> Heyloyalty: customers as list members, orders as purchase events.

ticketbridge's project is the demo's (``ticketbridge init``) sync: every customer and order
the Ticketmaster sandbox has (the sync has no window: a first run reads everything), members
matched on e-mail, consent required on any channel, the ``Cardnumber`` and ``reference``
fields. ``--records`` counts Ticketmaster customers (about 1.15 orders each).

What a run sends per record (what the dlt and raw jobs would have to send too): a member
upsert per consenting customer, a status PATCH after it when a channel the customer did not
grant must be off, the list read once a run, a member look-up per batch of first writes, and
the tracking import, several orders a call.

Keys here are members' e-mails (folded): members are matched on e-mail, and customers can
share one (78 e-mails are shared by 157 consenting customers at 10,000), so one member can
stand for two customers. A write to ``member:<Heyloyalty id>`` is traced back to its e-mail
through ``/_sandbox/data``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

from bench.contenders import Contender, Job
from bench.integrations import heyloyalty_body as body_of
from bench.integrations.base import Change, Held, Integration, connection
from bench.procs import Sandbox
from ticketbridge.connectors.ticketmaster.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
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

    def _emails(self, destination: Sandbox) -> dict[str, str]:
        """Heyloyalty member id -> its e-mail, folded (the match field)."""
        return {
            str(m["id"]): str(m["fields"]["email"]).casefold()
            for m in destination.data()["members"]
            if m["fields"].get("email")
        }

    def written(self, writes: dict[str, Any], destination: Sandbox) -> set[str]:
        ids = [k.split(":", 1)[1] for k in writes if k.startswith("member:")]
        if not ids:
            return set()
        emails = self._emails(destination)
        return {emails.get(i, f"member:{i}") for i in ids}

    def held(self, destination: Sandbox) -> Held:
        data = destination.data()
        keys = Counter(
            str(m["fields"]["email"]).casefold()
            for m in data["members"]
            if m["fields"].get("email")
        )
        orders = {str(r.get("order_id")) for r in data["tracking"]}
        return Held(
            keys,
            {
                "members": len(data["members"]),
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
        before = _customers(source)
        changed = source.mutate(body)["changed"]
        after = _customers(source, changed)
        # A change the member does not show (say a new mobile from abroad, which the list
        # does not take) is no write: the expected writes are the members whose body changed,
        # by the plain mapping checked equal to ticketbridge's (tests/bench). Members are
        # e-mails (the match field; customers can share one).
        emails = set()
        for cid in changed:
            old, new = before.get(str(cid)), after[str(cid)]
            fields = body_of.member(new) if body_of.consented(new) else None
            if fields is not None and (old is None or body_of.member(old) != fields):
                emails.add(str(fields["email"]).casefold())
        yield Change(f"S3-{share:.0%}", emails & oracle, len(changed))


def _customers(source: Sandbox, ids: list[int] | None = None) -> dict[str, dict[str, Any]]:
    """Customers through the API (``ids``, else every one: ascending ``updated_at``, each
    query from the last stamp seen, paging through a group sharing one stamp); read between
    measured runs, so not counted."""
    found: dict[str, dict[str, Any]] = {}
    auth = (SANDBOX_USERNAME, SANDBOX_PASSWORD)
    with httpx.Client(base_url=f"{source.url}/clientdata/v1/DK", timeout=60, auth=auth) as tm:
        if ids is not None:
            for cid in ids:
                answer = tm.get(f"customers/{cid}", params={"apikey": SANDBOX_API_KEY})
                answer.raise_for_status()
                found[str(cid)] = answer.json()
            return found
        since: str | None = None
        page, size = 0, 100
        while True:
            params: dict[str, Any] = {"apikey": SANDBOX_API_KEY, "size": size, "page": page}
            if since:
                params["updated_since"] = since
            answer = tm.get("customers", params={**params, "sort": "updated_at,asc"})
            answer.raise_for_status()
            listed = answer.json()
            items, paging = listed["customers"], listed["page"]
            found.update((str(c["id"]), c) for c in items)
            if len(items) < size or paging["number"] + 1 >= paging["totalPages"]:
                return found
            if items[-1]["updated_at"] == since:
                page += 1  # a group sharing one stamp, larger than a page
            else:
                since, page = items[-1]["updated_at"], 0
