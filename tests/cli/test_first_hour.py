"""What a new user meets in the first hour, through the CLI as a subprocess: exit codes and
messages of ``init``, ``check``, ``run``, ``runs``, ``errors``, ``sandbox serve`` and friends."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import random
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticketbridge.demo import build_sandbox, port_of
from ticketbridge.engine.state.sql import open_store
from ticketbridge.sandbox import RunningSandbox, serve_in_thread

pytestmark = pytest.mark.e2e

SYNC = "ticketco-bookings-to-airship"
PLATFORMS = (
    "ticketco",
    "airship_crm",
    "ticketmaster",
    "heyloyalty",
    "acme",
    "airship_wallet",
    "tixngo",
    "secutix360",
)


def tb(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "ticketbridge", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def closed_port_base() -> int:
    """A base whose sandbox ports nobody listens on (bound and released), below the kernel's
    range for outgoing connections (32768 and up on Linux): a port there cannot be taken by
    some test's client connection between this check and a sandbox binding it."""
    last = max(port_of(p, 0) for p in PLATFORMS)
    while True:
        base = random.randrange(20000, 32768 - last)
        if all(_free(base + i) for i in range(last + 1)):
            return base


def serve_every_sandbox() -> tuple[int, list[RunningSandbox]]:
    """Every platform's sandbox served on one free port base (the base `init` is given)."""
    while True:
        base = closed_port_base()
        running: list[RunningSandbox] = []
        try:
            for p in PLATFORMS:
                running.append(serve_in_thread(build_sandbox(p, 42, 300), port=port_of(p, base)))
            return base, running
        except RuntimeError:  # a port got taken meanwhile
            for r in running:
                r.stop()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def closed(tmp_path: Path) -> tuple[Path, int]:
    """A project from ``init`` whose sandboxes are not running."""
    base = closed_port_base()
    assert tb("init", "venue", "--port-base", str(base), cwd=tmp_path).returncode == 0
    return tmp_path / "venue", base


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project from ``init`` with its sandboxes serving, after one run of SYNC (which
    leaves dead letters)."""
    directory = tmp_path_factory.mktemp("served")
    base, running = serve_every_sandbox()
    try:
        assert tb("init", "venue", "--port-base", str(base), cwd=directory).returncode == 0
        project = directory / "venue"
        first = tb("run", SYNC, cwd=project)
        assert first.returncode == 0, first.stdout + first.stderr
        yield project
    finally:
        for r in running:
            r.stop()


# --- 1. an unreachable host -------------------------------------------------------------


def test_check_against_closed_ports_fails_at_once_naming_the_url(closed: tuple[Path, int]) -> None:
    project, base = closed
    proc = tb("check", cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # "At once" is shown by the absence of retries, not by a clock (a loaded machine is slow).
    assert "http.retry" not in proc.stderr
    assert f"GET http://127.0.0.1:{base}/api/public/v1/events" in proc.stdout
    assert f"connection refused by 127.0.0.1:{base}" in proc.stdout
    assert "sandbox serve" in proc.stdout  # what to do
    assert "valid (8 connections, 4 syncs)" in proc.stdout.splitlines()[0]


@pytest.mark.parametrize("transport", ["h1", "aiohttp", "httpcore"])
def test_check_of_a_host_that_does_not_resolve_fails_at_once(
    closed: tuple[Path, int], transport: str
) -> None:
    project, base = closed
    path = project / "ticketbridge.yaml"
    path.write_text(path.read_text().replace(f"127.0.0.1:{base}/", f"nosuch.invalid:{base}/"))
    proc = tb("check", cwd=project, env={"TICKETBRIDGE_HTTP_TRANSPORT": transport})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "ticketco: token" in line)
    assert f"GET http://nosuch.invalid:{base}/api/public/v1/events" in line
    assert "host 'nosuch.invalid' not found (DNS lookup failed; is base_url right?)" in line
    assert "http.retry" not in proc.stderr


def test_run_against_a_closed_port_names_the_url_and_the_cause(closed: tuple[Path, int]) -> None:
    project, base = closed
    proc = tb("run", SYNC, cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"http://127.0.0.1:{base}/api/public/v1/events" in proc.stderr
    assert "connection refused" in proc.stderr


def test_a_base_url_without_a_scheme_is_a_config_error(closed: tuple[Path, int]) -> None:
    project, base = closed
    path = project / "ticketbridge.yaml"
    path.write_text(
        path.read_text().replace(f"http://127.0.0.1:{base + 1}/v1", f"127.0.0.1:{base + 1}/v1")
    )
    proc = tb("check", cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(r"ticketbridge\.yaml:\d+: connections\.airship_crm\.base_url: ", proc.stderr)
    assert f"did you mean 'http://127.0.0.1:{base + 1}/v1'?" in proc.stderr


# --- 2. check's verdict -------------------------------------------------------------------


def test_check_ends_with_a_verdict_and_prints_each_check_once(served: Path) -> None:
    good = tb("check", cwd=served)
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert re.fullmatch(r"check: \d+ ok, 0 failed", lines[-1]), lines[-1]
    assert sum("token accepted (events readable)" in line for line in lines) == 1
    assert sum("market DK exists" in line for line in lines) == 1
    units = next(line for line in lines if "airship_crm: units" in line)
    assert "3 units: Bowl Arena, Harbour Stage, Riverside Hall" in units

    bad = tb("check", cwd=served, env={"AIRSHIP_TOKEN": "wrong"})
    assert bad.returncode == 1, bad.stdout + bad.stderr
    last = bad.stdout.splitlines()[-1]
    assert re.match(r"check: \d+ ok, 1 failed \(airship_crm: token\), 2 not checked", last), last
    assert "sync ticketco-bookings-to-airship: settings" in last

    as_json = tb("check", "--json", cwd=served, env={"AIRSHIP_TOKEN": "wrong"})
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["failed"] == ["airship_crm: token"] and report["ok"] is False
    assert {"group", "check", "ok", "checked", "detail"} <= set(report["checks"][0])


# --- 3. bad options are usage errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--log-level", "LOUD", "runs"), "'--log-level'"),
        (("--log-format", "xml", "runs"), "'--log-format'"),
        (("run", SYNC, "--today", "tomorrow"), "'--today'"),
        (("backfill", SYNC, "--from", "2026-13-01"), "'--from'"),
        (("backfill", SYNC, "--from", "2026-01-01", "--to", "soon"), "'--to'"),
        (("backfill", SYNC, "--from", "2026-01-01", "--chunk", "a year"), "'--chunk'"),
        (("checkpoint", SYNC, "--set", "{nope"), "'--set'"),
    ],
)
def test_a_bad_option_is_one_line_exit_2(
    closed: tuple[Path, int], args: tuple[str, ...], option: str
) -> None:
    proc = tb(*args, cwd=closed[0])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert option in proc.stderr
    if args[-1] == "2026-13-01":
        assert "month must be in 1..12" in proc.stderr


# --- 5. secrets only where a connection is opened -----------------------------------------


def test_read_only_commands_need_no_secrets(served: Path, tmp_path: Path) -> None:
    project = tmp_path / "copy"
    project.mkdir()
    (project / "ticketbridge.yaml").write_text((served / "ticketbridge.yaml").read_text())
    (project / "ticketbridge.db").write_bytes((served / "ticketbridge.db").read_bytes())
    env = (served / ".env").read_text()
    (project / ".env").write_text("".join(s for s in env.splitlines(True) if "AIRSHIP" not in s))
    for args in (("runs",), ("errors", SYNC), ("checkpoint", SYNC)):
        proc = tb(*args, cwd=project)
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
    for args in (("run", SYNC), ("check",), ("retry", SYNC)):
        proc = tb(*args, cwd=project)
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert "AIRSHIP_TOKEN is not set" in proc.stderr


# --- 6. --config before and after the command ---------------------------------------------


def test_config_is_global(closed: tuple[Path, int], tmp_path: Path) -> None:
    project, _ = closed
    path = str(project / "ticketbridge.yaml")
    for args in (("--config", path, "runs"), ("runs", "--config", path), ("-c", path, "runs")):
        proc = tb(*args, cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
        assert "no runs yet" in proc.stdout
    proc = tb("--config", "x.yaml", "runs", cwd=tmp_path)
    assert proc.returncode == 2 and "x.yaml: project file not found" in proc.stderr
    # The command's own --config wins over the global one.
    proc = tb("--config", "x.yaml", "runs", "--config", path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


# --- 7. no hard wrap off a terminal; keys never cut -----------------------------------------


def test_piped_output_is_not_wrapped(served: Path) -> None:
    proc = tb("errors", SYNC, cwd=served)
    assert proc.returncode == 0
    rows = [line for line in proc.stdout.splitlines() if "booking:ticketco:" in line]
    assert rows and all("UK mobile (Airship accepts 4471-4479 only)" in r for r in rows)
    check = tb("check", cwd=served)
    assert any(
        len(line) > 80 and "mapped fields exist" in line for line in check.stdout.splitlines()
    )


def test_the_errors_table_never_cuts_a_key_on_a_terminal(served: Path) -> None:
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(served), "TERM": "dumb"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketbridge", "errors", SYNC],
        cwd=served,
        env=env,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(60) == 0
    os.close(master)
    text = b"".join(chunks).decode()
    assert re.search(r"booking:ticketco:\d{7} ", text), text
    assert "booking:ticketco:…" not in text and "booking:ticketc…" not in text


# --- 8. every problem of a project file -----------------------------------------------------


def test_every_problem_is_listed_unknown_keys_first_with_suggestions(
    closed: tuple[Path, int],
) -> None:
    project, _ = closed
    path = project / "ticketbridge.yaml"
    broken = (
        path.read_text()
        .replace("    source:", "    sourc:")
        .replace("    schedule: every", "    schedul: every")
    )
    path.write_text(broken)
    proc = tb("check", cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    # Each sync: 'sourc' unknown and 'source' missing; those scheduled "every": 'schedul'.
    problems = 2 * broken.count("    sourc:") + broken.count("    schedul: every")
    assert lines[0] == f"config error: {problems} problems", proc.stderr
    assert "unknown key 'sourc' (did you mean 'source'?)" in lines[1]
    assert "unknown key 'schedul' (did you mean 'schedule'?)" in proc.stderr
    assert "missing required key 'source'" in lines[-1]
    assert all(re.match(r"  ticketbridge\.yaml:\d+: syncs\.", line) for line in lines[1:])


# --- 9. small ones --------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    proc = tb("--version", cwd=tmp_path)
    assert proc.returncode == 0 and re.fullmatch(r"ticketbridge \S+\n", proc.stdout)


def test_runs_shows_duration_and_finish_time(served: Path) -> None:
    text = tb("runs", SYNC, cwd=served)
    assert text.returncode == 0
    assert re.search(
        r"run: ok  \(\d+(\.\d)? s, finished \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", text.stdout
    )
    rows = json.loads(tb("runs", "--json", cwd=served).stdout)
    assert rows[-1]["finished_at"] and rows[-1]["duration_s"] >= 0


@pytest.mark.parametrize("command", ["runs", "errors", "checkpoint", "run", "retry"])
def test_an_unknown_sync_is_exit_2(closed: tuple[Path, int], command: str) -> None:
    proc = tb(command, "nosuch", cwd=closed[0])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no sync named 'nosuch'" in proc.stderr


def test_sandbox_serve_names_the_platforms_and_a_busy_port_is_exit_2(tmp_path: Path) -> None:
    proc = tb("sandbox", "serve", "bogus", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown platform 'bogus' (platforms: ticketco, airship_crm" in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = tb("sandbox", "serve", "ticketco", "--port-base", str(port), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr
    assert "Traceback" not in proc.stderr and "ticketco: http://" not in proc.stdout


def test_errors_csv_dash_is_stdout(served: Path) -> None:
    proc = tb("errors", SYNC, "--csv", "-", cwd=served)
    assert proc.returncode == 0
    assert not (served / "-").exists()
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0][:3] == ["key", "stage", "reason"] and len(rows) > 1
    as_json = json.loads(tb("errors", SYNC, "--json", cwd=served).stdout)
    assert as_json and as_json[0]["key"].startswith("booking:ticketco:")


def test_a_skipped_run_says_skipped_once(served: Path) -> None:
    store = open_store(f"sqlite:///{served / 'ticketbridge.db'}")
    try:
        lease = store.acquire_lease(SYNC, "someone else", ttl_s=120)
        assert lease is not None
        proc = tb("run", SYNC, cwd=served)
        store.release_lease(lease)
    finally:
        store.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped: running" in proc.stderr and "skipped: skipped" not in proc.stderr
    runs = tb("runs", SYNC, cwd=served).stdout
    assert "run: skipped (running)" in runs


def test_demo_reports_the_changes_its_second_run_updates(tmp_path: Path) -> None:
    proc = tb("demo", "--records", "50", "--json", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    sync = next(s for s in report["syncs"] if s["name"] == SYNC)
    assert sum(sync["source_changes_in_scope"].values()) == sync["runs"][1]["updated"]
    text = tb("demo", "--records", "50", cwd=tmp_path, timeout=300).stdout
    assert "none to records this sync has sent, so run 2 updates nothing" in text


def test_init_says_where_to_cd(tmp_path: Path) -> None:
    proc = tb("init", "my-venue", cwd=tmp_path)
    assert proc.returncode == 0
    assert "next: `cd my-venue`, then `ticketbridge sandbox serve &`" in proc.stdout


def test_readme_links_only_files_in_the_repository() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text()
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (readme.parent / target).exists(), target


# --- 10. completion, --json, --log-format ----------------------------------------------------


def test_completion_is_offered(tmp_path: Path) -> None:
    proc = tb("--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert "--install-completion" in proc.stdout and "--log-format" in proc.stdout


def test_json_logs(closed: tuple[Path, int]) -> None:
    proc = tb("--log-format", "json", "run", SYNC, cwd=closed[0])
    assert proc.returncode == 1
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "http.retry" for e in events), proc.stderr
    assert any(e.get("event") == "run.stopped" for e in events), proc.stderr


@pytest.mark.parametrize("content", [b"", b"not a database\n"])
def test_a_state_file_that_is_not_one_is_refused_not_replaced(
    closed: tuple[Path, int], content: bytes
) -> None:
    """Issue 20.7: a state file truncated to 0 bytes was taken as new (history, ledger and
    checkpoints gone, every record re-sent); a malformed one crashed ``runs``."""
    project, _ = closed
    state = project / "ticketbridge.db"
    state.write_bytes(content)
    for command in (["runs"], ["run", SYNC]):
        result = tb(*command, cwd=project)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        assert str(state) in result.stderr and "backup" in result.stderr
        assert state.read_bytes() == content


# --- 4. the dry-run plan ---------------------------------------------------------------------


def test_a_dry_run_prints_its_plan_as_a_table_and_points_at_no_stored_state(
    tmp_path: Path,
) -> None:
    """Item 4: a dry run printed an unlabelled JSON sample of 22 of 66 records, then "3
    record(s) could not be sent: ticketbridge errors …" although it stores no dead letters."""
    base = closed_port_base()
    sandboxes = {p: build_sandbox(p, 42, 300) for p in PLATFORMS}
    running = [serve_in_thread(sb, port=port_of(p, base)) for p, sb in sandboxes.items()]
    try:
        assert tb("init", "venue", "--port-base", str(base), cwd=tmp_path).returncode == 0
        project = tmp_path / "venue"
        assert tb("run", SYNC, cwd=project).returncode == 0
        sandboxes["ticketco"].store.mutate({"share": 0.2, "seed": 3})
        dry = tb("run", SYNC, "--dry-run", cwd=project)
        assert dry.returncode == 0, dry.stderr
        text = dry.stdout
        assert "plan of " + SYNC in text
        assert re.search(r"│ update\s+│ booking:ticketco:\S+\s+│ booking: ", text), text
        assert re.search(r"│ reject\s+│", text), "refused records are listed with their reason"
        counts = re.search(
            r"plan: (\d+) to create, (\d+) to update, (\d+) unchanged, (\d+) refused", text
        )
        assert counts is not None, text
        assert int(counts[2]) > 0 and int(counts[3]) > 0 and int(counts[4]) > 0
        assert "ticketbridge errors" not in text + dry.stderr
        assert "nothing was written" in text

        whole = json.loads(tb("run", SYNC, "--dry-run", "--json", cwd=project).stdout)
        actions = [e["action"] for e in whole["plan"]]
        assert actions.count("update") == whole["updated"] == int(counts[2])
        assert actions.count("reject") == whole["rejected"] == int(counts[4])
        assert whole["plan_omitted"] == 0
        runs = json.loads(tb("runs", SYNC, "--json", cwd=project).stdout)
        assert len(runs) == 1, "a dry run records no run"
    finally:
        for r in running:
            r.stop()
