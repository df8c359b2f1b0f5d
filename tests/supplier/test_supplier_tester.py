"""Tiqets' own certification tester (``supplier-api-tester`` 2.2.11) against our Supplier API.

Both servers run under uvicorn on loopback: the ACME sandbox, and the Supplier API in front of
it. The tester runs as a subprocess, exactly as a supplier runs it, once for a product with
timeslots and once for an all-day product; its printed results are parsed and asserted on.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from ticketbridge.connectors.acme import create_sandbox
from ticketbridge.connectors.acme.sandbox_store import AcmeStore
from ticketbridge.sandbox import SandboxApp, serving
from ticketbridge.supplier import FORBIDDEN_MESSAGE, create_app

from .support import ENTRY, KEY, TOUR, acme_config, served, supplier_config

pytestmark = pytest.mark.e2e

TESTER = Path(sys.executable).parent / "supplier_tester"
SECTIONS = {
    "AVAILABILITY TESTS": 10,
    "RESERVATION TESTS": 8,
    "BOOKING TESTS": 6,
    "PRODUCT CATALOG": 1,
}
# "WARNINIG" is the tester's own spelling.
RESULT = re.compile(r"^(OK|WARNINIG|FAIL)\s+#\s*\d+ \[\s*\d+ms\] (.+)$")
API_KEY_TESTS = {
    "Request without API-Key",
    "Request with incorrect API-Key",
    "Booking without the API key",
    "Booking with incorrect API-Key",
}


@dataclass
class Result:
    section: str
    status: str
    title: str
    message: str = ""


def run_tester(url: str, product: str) -> tuple[list[Result], str]:
    done = subprocess.run(
        [
            str(TESTER),
            "--url",
            url,
            "--api-key",
            KEY,
            "--product-id",
            product,
            "--version",
            "2",
            "--no-colors",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[Result] = []
    section = ""
    for line in done.stdout.splitlines():
        if line in SECTIONS:
            section = line
        elif line.startswith("REPORTS FROM FAILED TESTS"):
            section = "REPORTS"
        elif section != "REPORTS" and (found := RESULT.match(line)):
            results.append(Result(section, found.group(1), found.group(2).strip()))
        elif line.startswith("┃") and results and section != "REPORTS":
            results[-1].message += line.lstrip("┃ ").strip()
    return results, done.stdout


def _roomy_sandbox() -> SandboxApp:
    """The ACME sandbox with every event unsold at 50 seats.

    The tester books all its tests from the first slot with availability, 2 to 6 tickets at
    a time, and takes each variant's availability as its own stock. Our variants share the
    slot's seats, as ACME's do. The sandbox's 20-seat tour is partly sold by its seeded
    random, and which instance comes first depends on the weekday and the hour. On some days
    the tester's last booking found 3 to 5 seats left and was refused, which was correct."""
    sandbox = create_sandbox()
    store = cast(AcmeStore, sandbox.store)
    store.mutate(
        {"events": [{"id": i, "soldQuantity": 0, "capacity": 50} for i in store.instances]}
    )
    return sandbox


def _serve_and_test(tmp_path: Path, product: str, **config: str) -> tuple[list[Result], str]:
    with serving([_roomy_sandbox()]) as (acme,):
        app = create_app(
            supplier_config(**config),
            acme_config(base_url=acme.url),
            f"sqlite:///{tmp_path / 'state.db'}",
        )
        with served(app) as url:
            return run_tester(url, product)


@pytest.mark.parametrize("product", [TOUR, ENTRY])
def test_every_certification_test_is_ok(tmp_path: Path, product: str) -> None:
    results, output = _serve_and_test(tmp_path, product)
    counts = {s: sum(1 for r in results if r.section == s) for s in SECTIONS}
    assert counts == SECTIONS, output
    assert [r for r in results if r.status != "OK"] == [], output


def test_with_the_specs_empty_403_body_the_tester_only_notes_that_text(tmp_path: Path) -> None:
    """The spec's security scheme says "403 and an empty body"; the tester (and Tiqets' mock)
    expect a text. That difference is the only thing the tester notes, and only as warnings."""
    results, output = _serve_and_test(tmp_path, TOUR, forbidden_body="empty")
    assert len(results) == sum(SECTIONS.values()), output
    assert not [r for r in results if r.status == "FAIL"], output
    flagged = [r for r in results if r.status != "OK"]
    assert {r.title for r in flagged} == API_KEY_TESTS and len(flagged) == 6, output
    assert {r.message for r in flagged} == {
        f'Incorrect text message "". Expected message: "{FORBIDDEN_MESSAGE}".'
    }
