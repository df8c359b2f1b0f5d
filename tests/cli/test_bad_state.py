"""A corrupt checkpoint in the state file (issue 20.6), through the CLI as a
subprocess: one line naming the sync, the record and what to do, never a traceback, and a
run that meets it is ``failed``, not left ``running``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.test_first_hour import closed_port_base, tb

pytestmark = pytest.mark.e2e

SYNC = "ticketco-bookings-to-airship"


@pytest.fixture
def venue(tmp_path: Path) -> Path:
    """An init project (its sandboxes not running: nothing here needs them) with a state
    file holding a checkpoint."""
    assert tb("init", "venue", "--port-base", str(closed_port_base()), cwd=tmp_path).returncode == 0
    directory = tmp_path / "venue"
    done = tb("checkpoint", SYNC, "--set", '{"position": {"event": 7}}', "--yes", cwd=directory)
    assert done.returncode == 0, done.stderr
    return directory


def corrupt_checkpoint(directory: Path, text: str) -> None:
    with sqlite3.connect(directory / "ticketbridge.db") as db:
        changed = db.execute("UPDATE checkpoints SET data = ? WHERE sync = ?", (text, SYNC))
        assert changed.rowcount == 1


def test_a_corrupt_checkpoint_is_one_line_and_the_run_fails_instead_of_staying_running(
    venue: Path,
) -> None:
    corrupt_checkpoint(venue, '{"position": ')
    shown = tb("checkpoint", SYNC, cwd=venue)
    assert shown.returncode == 2, shown.stdout + shown.stderr
    assert "Traceback" not in shown.stderr
    [line] = shown.stderr.strip().splitlines()
    assert f"the checkpoint of sync '{SYNC}'" in line
    assert f"ticketbridge checkpoint {SYNC} --set null" in line

    run = tb("run", SYNC, cwd=venue)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert f"the checkpoint of sync '{SYNC}'" in run.stdout + run.stderr
    runs = json.loads(tb("runs", SYNC, "--json", cwd=venue).stdout)
    [recorded] = [r for r in runs if r["kind"] == "run"]
    assert recorded["outcome"] == "failed", recorded

    # What the message says to do works (a script adds --yes), and is recorded.
    fixed = tb("checkpoint", SYNC, "--set", "null", "--yes", cwd=venue)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert tb("checkpoint", SYNC, cwd=venue).stdout.strip() == "null"
    runs = json.loads(tb("runs", SYNC, "--json", cwd=venue).stdout)
    assert runs[0]["kind"] == "checkpoint" and runs[0]["outcome"] == "ok", runs[0]
