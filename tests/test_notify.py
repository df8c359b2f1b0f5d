"""Error reports by email, against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller

from ticketbridge.connectors.airship_crm.sandbox import create_sandbox as airship_sandbox
from ticketbridge.connectors.ticketco.sandbox import create_sandbox as ticketco_sandbox
from ticketbridge.demo import project_dict, sandbox_env
from ticketbridge.engine.spec import RunOptions
from ticketbridge.http.context import HttpContext
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import Faults, free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


URLS = {"ticketco": "http://ticketco.sandbox", "airship_crm": "http://airship.sandbox"}


def notifying_runtime(
    tmp_path: Path, smtp_port: int, airship: Any | None = None
) -> tuple[Runtime, str]:
    """The demo's TicketCo -> Airship CRM sync (300 bookings, some without a usable
    identifier) with error reports to crm@venue.example, over in-process sandboxes."""
    project = project_dict(URLS)
    sync = next(iter(project["syncs"]))
    project["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "sender": "tb@venue.example"}
    project["syncs"][sync]["notify"] = {"errors_to": ["crm@venue.example"]}
    path = tmp_path / "ticketbridge.yaml"
    path.write_text(yaml.safe_dump(project))
    loaded = load_project(path, env=sandbox_env())
    http = HttpContext()
    now = datetime.now(UTC)
    http.mount(
        URLS["ticketco"],
        httpx.ASGITransport(app=ticketco_sandbox(seed=3, records=300, today=now).app),
    )
    airship = airship or airship_sandbox(seed=3)
    http.mount(URLS["airship_crm"], httpx.ASGITransport(app=airship.app))
    return Runtime.open(loaded, http, url=f"sqlite:///{tmp_path / 's.db'}"), sync


def test_a_run_with_failed_records_sends_one_report_listing_them(
    tmp_path: Path,
    inbox: tuple[Inbox, int],
) -> None:
    box, port = inbox
    runtime, sync = notifying_runtime(tmp_path, port)
    try:
        result = asyncio.run(runtime.run(sync, RunOptions()))
        letters = runtime.store.list_dead_letters(sync)
    finally:
        runtime.close()
    assert result.outcome == "ok" and result.counters.rejected > 0
    assert len(box.messages) == 1
    msg = box.messages[0]
    assert msg["To"] == "crm@venue.example"
    assert f"{result.counters.rejected} record(s) failed" in msg["Subject"]
    body, attachment = [p for p in msg.walk() if not p.is_multipart()]
    text = body.get_payload(decode=True).decode()  # type: ignore[union-attr]
    for letter in letters:
        assert letter.key in text
    assert (attachment.get_filename() or "").endswith("-errors.csv")
    csv_text = attachment.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert len(csv_text.strip().splitlines()) == len(letters) + 1
    for secret in sandbox_env().values():
        assert secret not in msg.as_string()


def test_a_run_whose_every_record_is_refused_fails_and_the_report_says_so(
    tmp_path: Path,
    inbox: tuple[Inbox, int],
) -> None:
    """Issue 20.12: Airship refuses every contact (422), so the run is failed and the error
    e-mail is sent, its subject saying the run failed."""
    box, port = inbox
    airship = airship_sandbox(seed=3)
    airship.faults = Faults(fail_next=100_000, fail_status=422, only_methods=["POST"])
    runtime, sync = notifying_runtime(tmp_path, port, airship)
    try:
        result = asyncio.run(runtime.run(sync, RunOptions()))
    finally:
        runtime.close()
    assert result.outcome == "failed" and result.exit_code == 1
    assert result.counters.created == 0 and result.counters.rejected > 0
    [msg] = box.messages
    subject = " ".join(msg["Subject"].split())  # long headers are folded
    assert f"sync {sync} failed" in subject and "refused every record" in subject
