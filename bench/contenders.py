"""The contenders: how each is configured, started and given a fresh state.

All of them read the same TicketCo sandbox with ``per_page`` items per page, write the same
Airship CRM sandbox with at most ``concurrency`` requests in flight, and work in batches of
``batch_size`` bookings where the tool has batches.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.procs import REPO

TICKETCO_TOKEN = "sandbox-ticketco-token"  # noqa: S105 - the sandboxes' fake credentials
AIRSHIP_TOKEN = "sandbox-airship-token"  # noqa: S105
SYNC = "ticketco-bookings-to-airship"
ALL = ("ticketbridge", "dlt-defaults", "dlt-tuned", "raw", "raw-aiohttp")
ENGINES = ("ticketbridge", "dlt-defaults", "dlt-tuned")  # keep state between runs


@dataclass(frozen=True)
class Job:
    per_page: int = 100
    batch_size: int = 500
    concurrency: int = 8
    rate_burst: int | None = None  # ticketbridge's Airship rate_burst in S6 (None: its default)
    read_page: int | None = None  # ticketbridge's sync page_size (None: the source's 500)
    # ticketbridge's sync source_process: None leaves it unset, i.e. at its default ("auto",
    # which reads TicketCo in a child process); True / False set it.
    source_process: bool | None = None
    # ticketbridge's TicketCo connection with the reading options a user can add: per_page
    # sent, short_page_is_last, item_grosses_grouped. Off: the connection as `init` writes it.
    tuned_source: bool = False


@dataclass
class Contender:
    name: str
    workdir: Path
    job: Job

    def fresh(self) -> None:
        """Forget every earlier run: a new state database / pipelines folder."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),
            "TICKETCO_TOKEN": TICKETCO_TOKEN,
            "AIRSHIP_TOKEN": AIRSHIP_TOKEN,
            "TICKETBRIDGE_DATABASE_URL": f"sqlite:///{self.workdir / 'state.db'}",
        }

    def command(self, ticketco: str, airship: str, rate_per_second: float | None) -> list[str]:
        py, job = sys.executable, self.job
        if self.name == "ticketbridge":
            path = self.workdir / "ticketbridge.yaml"
            path.write_text(
                yaml.safe_dump(project(ticketco, airship, job, rate_per_second), sort_keys=False)
            )
            return [py, "-m", "ticketbridge", "run", SYNC, "--json", "--config", str(path)]
        common = [
            "--ticketco",
            ticketco,
            "--airship",
            airship,
            "--per-page",
            str(job.per_page),
            "--concurrency",
            str(job.concurrency),
        ]
        if self.name in ("raw", "raw-aiohttp"):
            client = "aiohttp" if self.name == "raw-aiohttp" else "httpx"
            return [py, "-m", "bench.raw_job", *common, "--client", client]
        variant = self.name.removeprefix("dlt-")
        return [
            py,
            "-m",
            "bench.dlt_job",
            *common,
            "--variant",
            variant,
            "--batch-size",
            str(job.batch_size),
            "--pipelines-dir",
            str(self.workdir / "pipelines"),
        ]

    @staticmethod
    def report(stdout: str) -> dict[str, Any]:
        """The contender's own summary (last JSON object it printed), for reference only."""
        start = stdout.rfind("\n{")
        text = stdout[start + 1 :] if start >= 0 else stdout
        try:
            found = json.loads(text[text.find("{") :])
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}


# TicketCo's page when no size is sent: the sandbox's, and the size every other job asks for.
SANDBOX_PAGE = 100


def ticketco_connection(ticketco: str, job: Job) -> dict[str, Any]:
    """ticketbridge's TicketCo connection: as `ticketbridge init` writes it (a page size only
    when the job's differs from the API's own), or with every reading option (``tuned_source``)."""
    conn: dict[str, Any] = {
        "platform": "ticketco",
        "base_url": f"{ticketco}/api/public/v1",
        "token": "${TICKETCO_TOKEN}",
    }
    if job.tuned_source or job.per_page != SANDBOX_PAGE:
        conn.update(page_size_param="per_page", page_size=job.per_page)
    if job.tuned_source:
        conn.update(short_page_is_last=True, item_grosses_grouped=True)
    return conn


def project(ticketco: str, airship: str, job: Job, rate_per_second: float | None) -> dict[str, Any]:
    """The project file: the demo's TicketCo -> Airship CRM sync, widened to every event the
    sandbox has (the window spans its 121 days, no venue filter), so that every contender
    moves all N bookings."""
    airship_conn: dict[str, Any] = {
        "platform": "airship_crm",
        "base_url": f"{airship}/v1",
        "token": "${AIRSHIP_TOKEN}",
        "account_id": 1,
        "concurrency": job.concurrency,
    }
    if rate_per_second:
        airship_conn["rate_per_second"] = rate_per_second
        if job.rate_burst is not None:
            airship_conn["rate_burst"] = job.rate_burst
    return {
        "connections": {
            "ticketco": ticketco_connection(ticketco, job),
            "airship": airship_conn,
        },
        "syncs": {
            SYNC: {
                "source": {"connection": "ticketco", "stream": "bookings"},
                "destination": {
                    "connection": "airship",
                    "object": "contact_bookings",
                    "groups": {"per_venue": "Booking", "event_tags": ["Golf", "Bowling"]},
                },
                "window": {"field": "attendance_at", "from": "-62d", "to": "+62d"},
                "match": ["email", "mobile"],
                "write_policy": {"contact": "on_create", "booking": "always"},
                "batch_size": job.batch_size,
                **({"page_size": job.read_page} if job.read_page else {}),
                **({} if job.source_process is None else {"source_process": job.source_process}),
            }
        },
    }


def available(name: str) -> bool:
    if name.startswith("dlt"):
        try:
            import dlt  # noqa: F401
        except ImportError:
            return False
    return name in ALL
