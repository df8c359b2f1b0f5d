"""TicketCo -> Airship Wallet: every ticket a pass per template (Apple and Google).

ticketbridge's project is the demo's (``ticketbridge init``) sync widened like the CRM job:
every event of the sandbox's 121 days (window -62d..+62d), no venue filter. ``--records``
counts TicketCo bookings (~2.4 tickets each); the source keys here are ticket (item) ids.

S3 has two changes, each measured on its own: ``share`` of the tickets get a new seat (1 pass
update per template per ticket is the floor), then, once per S3 round, the event with most
passes starts 30 minutes later (bench/wallet.py's W1): one pass-group update is the floor,
however many passes the event has.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from bench.contenders import SANDBOX_PAGE, Contender, Job
from bench.integrations.base import Change, Held, Integration, connection
from bench.procs import Sandbox
from ticketbridge.demo import INTEGRATIONS

TEMPLATES = 2  # the sandbox's Apple (1001) and Google (1002) templates


class TicketcoWallet(Integration):
    name = "ticketco-wallet"
    sync = "ticketco-tickets-to-wallet"
    source = "ticketco"
    destination = "airship_wallet"
    unit = "bookings"

    def project(self, source: str, destination: str, job: Job) -> dict[str, Any]:
        [demo] = [i for i in INTEGRATIONS if i.sync == self.sync]
        sync = demo.config()
        sync.pop("schedule", None)
        sync["source"] = {k: v for k, v in sync["source"].items() if k != "venues"}
        sync["window"] = {"field": "attendance_at", "from": "-62d", "to": "+62d"}
        sync["batch_size"] = job.batch_size
        # As `init` writes it unless the job says otherwise (see contenders.ticketco_connection).
        ticketco = connection("ticketco", source)
        if job.tuned_source or job.per_page != SANDBOX_PAGE:
            ticketco.update(page_size_param="per_page", page_size=job.per_page)
        if job.tuned_source:
            ticketco.update(short_page_is_last=True, item_grosses_grouped=True)
        wallet = {**connection("airship_wallet", destination), "concurrency": job.concurrency}
        return {
            "connections": {"ticketco": ticketco, "airship_wallet": wallet},
            "syncs": {self.sync: sync},
        }

    def command(self, contender: Contender, source: str, destination: str) -> list[str] | None:
        job = contender.job
        common = ["--ticketco", source, "--wallet", destination, "--per-page", str(job.per_page)]
        if contender.name == "raw-aiohttp":
            module = "bench.integrations.wallet_raw"
            return [sys.executable, "-m", module, *common, "--concurrency", str(job.concurrency)]
        if contender.name == "dlt-defaults":
            return [
                sys.executable,
                "-m",
                "bench.integrations.wallet_dlt",
                *common,
                "--batch-size",
                str(job.batch_size),
                "--pipelines-dir",
                str(contender.workdir / "pipelines"),
            ]
        return None

    def written(self, writes: dict[str, Any], destination: Sandbox) -> set[str]:
        return {k.rsplit(":", 1)[1] for k in writes if k.startswith("pass:")}

    def held(self, destination: Sandbox) -> Held:
        data = destination.data()
        per_pass = Counter((p["template_id"], str(p["external_id"])) for p in data["passes"])
        tickets = Counter(str(p["external_id"]) for p in data["passes"])
        # A ticket is held once when it has one pass per template; a second pass for the same
        # template is a duplicate.
        keys = Counter({t: 1 for t in tickets})
        for (_, ticket), n in per_pass.items():
            keys[ticket] += n - 1
        incomplete = sum(1 for n in tickets.values() if n < TEMPLATES)
        return Held(
            keys,
            {
                "passes": len(data["passes"]),
                "events": len(data["events"]),
                "tickets_missing_a_template": incomplete,
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
        data = destination.data()
        seated = sorted(
            {str(p["external_id"]) for p in data["passes"] if "seat" in p["fields"]} & oracle
        )
        rng = random.Random(f"wallet-s3:{share}:{run}")
        picked = sorted(rng.sample(seated, min(len(seated), max(1, round(share * len(oracle))))))
        for n, ticket in enumerate(picked):
            source.mutate({"op": "item", "item_id": int(ticket), "seat_name": f"R{run}S{n + 1}"})
        yield Change(f"S3-{share:.0%}", set(picked), len(picked))
        if not first:  # the event moves once per S3 round
            return
        events = {e["id"]: str(e["external_id"]) for e in data["events"]}
        per_event = Counter(events[link["event_id"]] for link in data["links"])
        moved = max(sorted(per_event), key=lambda e: per_event[e])
        before = {
            str(p["external_id"]): p["fields"]["startTime"]["value"]
            for p in data["passes"]
            if events.get(p["event_id"]) == moved
        }
        source.mutate({"op": "event_start", "event_id": int(moved), "minutes": 30})

        def verify(wallet: Sandbox) -> tuple[bool, str]:
            after = wallet.data()
            ids = {e["id"]: str(e["external_id"]) for e in after["events"]}
            starts = {
                p["fields"]["startTime"]["value"]
                for p in after["passes"]
                if ids.get(p["event_id"]) == moved
            }
            ok = len(starts) == 1 and not starts & set(before.values())
            return ok, f"event {moved}: {len(before)} passes, start {sorted(starts)}"

        yield Change("S3-event", set(), 1, verify=verify)
