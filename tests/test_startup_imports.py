"""What ``ticketbridge run`` loads before its first request: only what the command needs.

Start-up time itself is measured in bench/startup.py (never asserted here); these tests pin the
cheap part of it, module absence in a fresh interpreter, so a new eager import of a server, a
framework or another connector shows up as a failing test instead of a slower ``run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from ticketbridge.connectors import registry
from ticketbridge.engine.state.db import alembic_config, packaged_head
from ticketbridge.engine.state.sql import open_store

# Never needed by `run` against a current state database (or by any CLI import).
NOT_AT_IMPORT = (
    "alembic",  # only when the state database must be migrated
    "mako",
    "uvicorn",  # only where a sandbox or the console is served
    "starlette",
    "jinja2",
    "temporalio",
    "ticketbridge.temporal",
    "ticketbridge.web",
    "ticketbridge.supplier.app",  # the Supplier API server
    "ticketbridge.sandbox",
    "ticketbridge.demo",
    "sqlalchemy.dialects.postgresql",  # a SQLite project's state needs no PostgreSQL dialect
    "email_validator",  # loaded at the first record mapped
    "phonenumbers",
)


def _loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """``sys.modules`` of a fresh interpreter after running ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _present(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in loaded)]


def _project_file(tmp_path: Path) -> Path:
    """A TicketCo -> Airship CRM project (sync ``s``) whose APIs are on a closed port."""
    project = {
        "connections": {
            "ticketco": {
                "platform": "ticketco",
                "base_url": "http://127.0.0.1:9/api/public/v1",
                "token": "t",
            },
            "airship": {
                "platform": "airship_crm",
                "base_url": "http://127.0.0.1:9/v1",
                "token": "t",
                "account_id": 1,
            },
        },
        "syncs": {
            "s": {
                "source": {"connection": "ticketco", "stream": "bookings"},
                "destination": {"connection": "airship", "object": "contact_bookings"},
            }
        },
    }
    path = tmp_path / "ticketbridge.yaml"
    path.write_text(yaml.safe_dump(project))
    return path


def test_importing_the_cli_loads_no_server_migration_tool_or_connector() -> None:
    loaded = _loaded_after("import ticketbridge.cli")
    assert _present(loaded, NOT_AT_IMPORT) == []
    connectors = {m.split(".")[2] for m in loaded if m.startswith("ticketbridge.connectors.")}
    assert connectors <= {"base", "registry"}, connectors


def test_loading_a_project_imports_only_its_connectors_and_no_sandbox_server(
    tmp_path: Path,
) -> None:
    path = _project_file(tmp_path)
    loaded = _loaded_after(
        f"from ticketbridge.project import load_project\nload_project({str(path)!r})"
    )
    used = {"ticketco", "airship_crm"}
    used_modules = [f"ticketbridge.connectors.{p}" for p in sorted(used)]
    others = set(registry.names()) - used
    assert others, "there are connectors this project does not use"
    imported = {m.split(".")[2] for m in loaded if m.startswith("ticketbridge.connectors.")}
    assert used <= imported
    assert imported.isdisjoint(others), imported & others
    # Nothing serves, and a connector package names its sandbox module without importing it:
    # the sandbox routes (Starlette) load only where a sandbox is made.
    servers = ("alembic", "mako", "uvicorn", "temporalio", "ticketbridge.web")
    sandboxes = ("starlette", "ticketbridge.sandbox", *(f"{p}.sandbox" for p in used_modules))
    assert _present(loaded, (*servers, *sandboxes, "ticketbridge.supplier.app")) == []
    assert _present(loaded, ("email_validator",)) == []


# Not loaded by a lean `run` (run_command.py) before its first connection: the command-line
# framework and Rich, the sandbox servers, and httpx's own command-line client.
NOT_BEFORE_FIRST_CALL = (
    *NOT_AT_IMPORT,
    "ticketbridge.cli",
    "typer",
    "click",
    "rich",
    "pygments",
    "httpx._main",
    "ticketbridge.connectors.ticketco.sandbox",
    "ticketbridge.connectors.airship_crm.sandbox",
    # The state store opens while the reader makes the first call (Runtime._prestart).
    "sqlalchemy",
    "ticketbridge.engine.state.sql",
)


def test_a_run_opens_its_first_connection_without_the_command_line_framework(
    tmp_path: Path,
) -> None:
    """``ticketbridge run`` off a terminal: ``sys.modules`` at the moment a process of the run
    first connects a socket (an audit hook; the state is SQLite, so that is the first API
    call, made by the forked reader when ``source_process: auto`` forks one: a fork of the
    run's process, so it holds what that process had loaded, plus its own)."""
    path = _project_file(tmp_path)
    seen = tmp_path / "loaded.json"
    script = (
        "import gc, json, os, sys\n"
        "def first_connect(event, args):\n"
        "    if event == 'socket.connect':\n"
        "        loaded = [m for m, module in sys.modules.items() if module is not None]\n"
        f"        with open({str(seen)!r}, 'x') as out:\n"
        "            json.dump({'modules': sorted(loaded), 'gc': gc.isenabled()}, out)\n"
        "        os._exit(0)\n"
        "sys.addaudithook(first_connect)\n"
        f"sys.argv = ['ticketbridge', 'run', 's', '--config', {str(path)!r}]\n"
        "from ticketbridge.run_command import main\n"
        "main()\n"
    )
    state = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(state).close()  # at head already, as on every run but the first
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TICKETBRIDGE_DATABASE_URL": state,
    }
    # The run itself fails once its first connection is cut short; only the snapshot counts.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert seen.exists(), done.stdout + done.stderr
    snapshot = json.loads(seen.read_text())
    loaded = set(snapshot["modules"])
    assert "aiohttp" in loaded, "the hook saw the first API call"
    assert _present(loaded, NOT_BEFORE_FIRST_CALL) == []
    assert snapshot["gc"], "the collector, off while the modules load, is on again"


def test_a_connectors_sandbox_is_made_from_its_lazily_named_module() -> None:
    """The factory a connector registers still makes its sandbox (the demo and ``sandbox``
    commands use it), importing the sandbox module only then."""
    loaded = _loaded_after(
        "from ticketbridge.connectors.registry import get\n"
        "app = get('ticketco').sandbox.create(seed=1, records=3, today=None)\n"
        "assert type(app).__name__ == 'SandboxApp', app\n"
    )
    assert "ticketbridge.connectors.ticketco.sandbox" in loaded


def test_opening_a_current_state_database_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_ = f"from ticketbridge.engine.state.sql import open_store\nopen_store({url!r}).close()"
    first = _loaded_after(open_)  # a new database: migrated by Alembic
    assert "alembic" in first
    again = _loaded_after(open_)  # at head already: one SELECT, no Alembic
    assert _present(again, ("alembic", "mako")) == []


def test_the_packaged_head_read_without_alembic_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    assert packaged_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_aiohttps_import_time_tls_contexts_load_no_ca_bundle() -> None:
    """http/tls.py: aiohttp's two default contexts are built without reading the CA bundle
    (https requests get their own, see tests/http/test_tls.py)."""
    code = (
        "import ticketbridge.http.transport, aiohttp.connector as c\n"
        "print(c._SSL_CONTEXT_VERIFIED.cert_store_stats()['x509_ca'],"
        " c._SSL_CONTEXT_UNVERIFIED.cert_store_stats()['x509_ca'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "0"]
