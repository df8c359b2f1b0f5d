"""``ticketbridge run`` taken the lean way (run_command.py) prints and exits exactly as the Typer
app does, and every other command line still goes to the app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticketbridge.run_command import RunArgs, parse

from .test_first_hour import SYNC, serve_every_sandbox

LEAN = [sys.executable, "-m", "ticketbridge"]
APP = [sys.executable, "-c", "import sys; from ticketbridge.cli import main; main()"]


def _tb(way: list[str], args: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "COLUMNS": "80"}
    return subprocess.run(
        [*way, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project from ``init`` with its sandboxes serving, loaded once (so later runs read an
    unchanged source)."""
    directory = tmp_path_factory.mktemp("lean")
    base, running = serve_every_sandbox()
    try:
        assert _tb(LEAN, ("init", "venue", "--port-base", str(base)), directory).returncode == 0
        first = _tb(LEAN, ("run", SYNC), directory / "venue")
        assert first.returncode == 0, first.stdout + first.stderr
        yield directory / "venue"
    finally:
        for r in running:
            r.stop()


PROGRESS = re.compile(rf"^{SYNC}: read \d+, created \d+, .*calls \d+/\d+$")


def _same_apart_from_run(text: str) -> str:
    """What may differ between two runs of an unchanged source: the run id, and how many
    progress lines (one every 2 s) a run of this length printed."""
    text = re.sub(r"\(run \d+\)", "(run N)", text)
    text = re.sub(r'"run_id": \d+', '"run_id": N', text)
    return "\n".join(line for line in text.splitlines() if not PROGRESS.match(line))


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args",
    [
        ("run", SYNC),
        ("run", SYNC, "--json"),
        ("--log-format", "json", "--log-level", "debug", "run", "--dry-run", SYNC),
        ("run", SYNC, "--dry-run", "--json", "-c", "ticketbridge.yaml"),
        ("run", "no-such-sync"),
        ("--config", "missing.yaml", "run", SYNC),
    ],
)
def test_the_lean_run_prints_what_the_app_prints(project: Path, args: tuple[str, ...]) -> None:
    assert parse(args, {}) is not None, "this line is one the lean way takes"
    lean, app = _tb(LEAN, args, project), _tb(APP, args, project)
    assert lean.returncode == app.returncode, (lean.stderr, app.stderr)
    assert _same_apart_from_run(lean.stdout) == _same_apart_from_run(app.stdout)
    if "--log-format" not in args:  # JSON log lines carry their own timestamps
        assert _same_apart_from_run(lean.stderr) == _same_apart_from_run(app.stderr)
    if args == ("run", SYNC):
        assert "(run " in lean.stdout and lean.returncode == 0
        assert any(PROGRESS.match(line) for line in lean.stderr.splitlines()), lean.stderr
    if "--json" in args:
        assert json.loads(lean.stdout)["sync"] == SYNC


@pytest.mark.e2e
def test_a_missing_secret_is_the_same_config_error(project: Path) -> None:
    unset = project / "unset.yaml"
    text = (project / "ticketbridge.yaml").read_text()
    unset.write_text(text.replace("${TICKETCO_TOKEN}", "${TB_TEST_NEVER_SET}"))
    args = ("run", SYNC, "--config", str(unset))
    lean, app = _tb(LEAN, args, project), _tb(APP, args, project)
    assert lean.returncode == app.returncode == 2
    assert lean.stderr == app.stderr and "TB_TEST_NEVER_SET" in lean.stderr
    assert lean.stdout == app.stdout == ""


def test_parse_takes_the_plain_run_lines_with_the_apps_precedence() -> None:
    env = {"TICKETBRIDGE_CONFIG": "env.yaml", "TICKETBRIDGE_LOG_LEVEL": "warning"}
    assert parse(["run", "s"], {}) == RunArgs("s", Path("ticketbridge.yaml"))
    assert parse(["run", "s"], env) == RunArgs("s", Path("env.yaml"), log_level="WARNING")
    assert parse(["-c", "a.yaml", "run", "s", "--config=b.yaml"], env) == RunArgs(
        "s", Path("b.yaml"), log_level="WARNING"
    )
    assert parse(
        ["--log-level=error", "--log-format", "JSON", "run", "--json", "s", "--dry-run"], env
    ) == RunArgs(
        "s", Path("env.yaml"), dry_run=True, as_json=True, log_level="ERROR", log_json=True
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run"],
        ["runs", "s"],
        ["run", "s", "t"],  # an extra argument: the app's usage error
        ["run", "s", "--today", "2026-01-01"],
        ["run", "s", "--temporal", "localhost:7233"],
        ["run", "--help"],
        ["--version"],
        ["run", "s", "--config"],  # no value
        ["run", "s", "--config", "--json"],  # Click would read "--json" as the file
        ["--log-level", "loud", "run", "s"],  # the app names the bad value
        ["--log-format=xml", "run", "s"],
        ["run", "s", "--"],
        ["retry", "s"],
    ],
)
def test_every_other_line_goes_to_the_app(argv: list[str]) -> None:
    assert parse(argv, {}) is None
    assert parse(["run", "s"], {"TICKETBRIDGE_LOG_LEVEL": "loud"}) is None
