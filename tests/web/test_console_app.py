"""The console's rules that need no browser: who may serve it where, the one-time login,
redirects that stay on the site, secret masking, the field-mapping table and the import's
chunks (the ones the engine reads)."""

from __future__ import annotations

import io
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from ticketbridge import dead_letters
from ticketbridge.demo import INTEGRATIONS, project_dict, sandbox_env, write_example_project
from ticketbridge.engine.state.base import DeadLetterIn
from ticketbridge.engine.state.sql import open_store
from ticketbridge.errors import ConfigError
from ticketbridge.manual_import import ImportChoices, prepare_import
from ticketbridge.project import load_project
from ticketbridge.sandbox import free_port, serve_asgi
from ticketbridge.web import UiSettings, create_app, queries
from ticketbridge.web.auth import safe_next
from ticketbridge.web.pages.syncs import mapping_tables
from ticketbridge.web.redact import MASK, Scrubber, mask
from ticketbridge.web.settings import is_loopback

HEYLOYALTY = "ticketmaster-customers-to-heyloyalty"
PUBLIC = "0.0.0.0"  # noqa: S104 - never bound: the console must refuse it


@contextmanager
def served(settings: UiSettings) -> Iterator[httpx.Client]:
    """The console under uvicorn on loopback, and a client of it (cookies kept)."""
    server, thread, url = serve_asgi(create_app(settings), "console", lifespan="on")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    return write_example_project(tmp_path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.3", True), ("::1", True), ("localhost", True),
     (PUBLIC, False), ("192.168.1.10", False), ("console.venue.example", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_it_refuses_a_public_address_without_credentials(project_file: Path) -> None:
    settings = UiSettings(project_file, host=PUBLIC)
    with pytest.raises(ConfigError, match="without credentials"):
        settings.check()
    with pytest.raises(ConfigError, match="without credentials"):
        create_app(settings)
    settings.operator_password = SecretStr("long-enough-pw")
    settings.check()
    settings.viewer_password = SecretStr("long-enough-pw")
    with pytest.raises(ConfigError, match="the same"):
        settings.check()
    settings.viewer_password = SecretStr("short")
    with pytest.raises(ConfigError, match="shorter than 8"):
        settings.check()


def test_ticketbridge_ui_refuses_to_start_on_a_public_address(project_file: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ticketbridge", "ui", "--host", PUBLIC, "-c", str(project_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(project_file.parent)},
    )
    assert proc.returncode == 2
    assert (
        "without credentials" in proc.stderr and "TICKETBRIDGE_UI_OPERATOR_PASSWORD" in proc.stderr
    )


def test_without_passwords_a_start_makes_one_and_a_one_time_link(project_file: Path) -> None:
    settings = UiSettings(project_file, database_url=f"sqlite:///{project_file.parent}/s.db")
    made = settings.ensure_login()
    assert made is not None and settings.operator_password is not None
    token = settings.one_time_token
    assert token is not None
    with served(settings) as client:
        bad = client.get("/login/once?token=wrong", follow_redirects=False)
        assert bad.status_code == 403
        first = client.get(f"/login/once?token={token.get_secret_value()}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert client.get("/", follow_redirects=False).status_code == 200
        client.cookies.clear()
        again = client.get(f"/login/once?token={token.get_secret_value()}", follow_redirects=False)
        assert again.status_code == 403, "the link works once"
        assert client.get("/", follow_redirects=False).status_code == 303


def test_configured_passwords_make_no_one_time_link(project_file: Path) -> None:
    settings = UiSettings(project_file, operator_password=SecretStr("operator-password"))
    assert settings.ensure_login() is None
    assert settings.one_time_token is None


def _with_operator(project_file: Path) -> UiSettings:
    """The console of ``project_file`` on a state file beside it, with an operator password."""
    return UiSettings(
        project_file,
        database_url=f"sqlite:///{project_file.parent}/s.db",
        operator_password=SecretStr("operator-password"),
    )


def test_pages_send_security_headers_and_need_a_login(project_file: Path) -> None:
    settings = _with_operator(project_file)
    with served(settings) as client:
        answer = client.get("/dead-letters", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/dead-letters"
        login = client.get("/login")
        assert "script-src 'self'" in login.headers["content-security-policy"]
        assert login.headers["x-frame-options"] == "DENY"
        assert login.headers["referrer-policy"] == "no-referrer"
        assert client.post("/syncs/x/run", data={}).status_code == 401


def _log_in(client: httpx.Client, password: str) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login", data={"name": "ada", "password": password, "csrf": csrf.group(1), "next": "/"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text


def test_a_new_password_ends_the_sessions_the_old_one_opened(project_file: Path) -> None:
    """The session cookie is signed, not stored: it stays valid after a restart with the
    same key and passwords, and is refused once its role's password has changed."""

    def settings(operator: str, viewer: str) -> UiSettings:
        return UiSettings(
            project_file,
            database_url=f"sqlite:///{project_file.parent}/s.db",
            operator_password=SecretStr(operator),
            viewer_password=SecretStr(viewer),
            secret_key=SecretStr("the-same-key-for-every-start"),
        )

    cookies: dict[str, httpx.Cookies] = {}
    with served(settings("operator-password", "viewer-password")) as client:
        for role, password in (("operator", "operator-password"), ("viewer", "viewer-password")):
            client.cookies.clear()
            _log_in(client, password)
            assert client.get("/dead-letters", follow_redirects=False).status_code == 200
            cookies[role] = httpx.Cookies(client.cookies)

    def page_for(client: httpx.Client, role: str) -> int:
        client.cookies = httpx.Cookies(cookies[role])
        return client.get("/dead-letters", follow_redirects=False).status_code

    with served(settings("operator-password", "viewer-password")) as client:
        assert page_for(client, "operator") == 200, "a restart alone ends no session"
        assert page_for(client, "viewer") == 200
    with served(settings("a-new-operator-password", "viewer-password")) as client:
        assert page_for(client, "operator") == 303, "the old operator password's session"
        assert page_for(client, "viewer") == 200, "the viewer's password did not change"
        client.cookies.clear()
        _log_in(client, "a-new-operator-password")
        assert client.get("/dead-letters", follow_redirects=False).status_code == 200


def test_logging_out_ends_the_session_for_every_copy_of_its_cookie(project_file: Path) -> None:
    settings = _with_operator(project_file)
    with served(settings) as client:
        _log_in(client, "operator-password")
        copied = httpx.Cookies(client.cookies)
        page = client.get("/dead-letters", follow_redirects=False)
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        out = client.post("/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        client.cookies = copied  # the cookie as it was before logging out, kept elsewhere
        assert client.get("/dead-letters", follow_redirects=False).status_code == 303
        client.cookies.clear()
        _log_in(client, "operator-password")  # a new login is a new session
        assert client.get("/dead-letters", follow_redirects=False).status_code == 200


def _csrf_of(client: httpx.Client, path: str = "/dead-letters") -> tuple[str, str]:
    page = client.get(path, follow_redirects=False)
    assert page.status_code == 200, page.status_code
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return page.text, csrf.group(1)


def test_an_operator_logs_out_everyone_and_every_cookie_is_refused(project_file: Path) -> None:
    settings = UiSettings(
        project_file,
        database_url=f"sqlite:///{project_file.parent}/s.db",
        operator_password=SecretStr("operator-password"),
        viewer_password=SecretStr("viewer-password"),
    )
    with served(settings) as operator, httpx.Client(timeout=30) as viewer:
        viewer.base_url = operator.base_url
        _log_in(operator, "operator-password")
        _log_in(viewer, "viewer-password")
        kept = httpx.Cookies(operator.cookies)  # a copy of the operator's, elsewhere
        page, token = _csrf_of(viewer)
        assert "Log out everyone" not in page, "only an operator sees the button"
        refused = viewer.post("/logout/everyone", data={"csrf": token})
        assert refused.status_code == 403
        assert viewer.get("/dead-letters", follow_redirects=False).status_code == 200

        page, token = _csrf_of(operator)
        assert "Log out everyone" in page
        done = operator.post("/logout/everyone", data={"csrf": token}, follow_redirects=False)
        assert (done.status_code, done.headers["location"]) == (303, "/login")
        assert "2 console sessions ended" in operator.get("/login").text
        assert "sessions ended" not in operator.get("/login").text, "said once"
        assert viewer.get("/dead-letters", follow_redirects=False).status_code == 303
        operator.cookies = kept
        assert operator.get("/dead-letters", follow_redirects=False).status_code == 303
        # Only this browser's own action is reported: a link cannot make the notice up.
        assert "sessions ended" not in operator.get("/login?ended=99").text
        operator.cookies.clear()
        _log_in(operator, "operator-password")  # a new login opens a session again
        assert operator.get("/dead-letters", follow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    ("given", "kept"),
    [("/syncs/a?b=1", "/syncs/a?b=1"), ("//evil.example/", "/"), ("https://evil.example", "/"),
     ("/\\evil", "/"), (None, "/")],
)  # fmt: skip
def test_after_login_it_goes_only_to_a_page_of_the_console(given: str | None, kept: str) -> None:
    assert safe_next(given) == kept


def test_masking_by_key_and_type_and_scrubbing_by_value() -> None:
    shown = mask(
        {
            "api_key": "abc123",
            "token": "${TICKETCO_TOKEN}",
            "nested": {"client_secret": SecretStr("s3cr3t"), "email": "a@b.example"},
            "key": "booking:x:1",
        }
    )
    assert shown == {
        "api_key": MASK,
        "token": "${TICKETCO_TOKEN}",
        "nested": {"client_secret": MASK, "email": "a@b.example"},
        "key": "booking:x:1",
    }
    scrub = Scrubber(["hunter22", "abc"])  # 3 characters: too short to tell from text
    assert scrub("login hunter22 for abc") == f"login {MASK} for abc"


def _heyloyalty_project(tmp_path: Path) -> Path:
    urls = {"ticketmaster": "http://127.0.0.1:1", "heyloyalty": "http://127.0.0.1:2"}
    path = tmp_path / "ticketbridge.yaml"
    path.write_text(yaml.safe_dump(project_dict(urls)))
    return path


def test_the_mapping_table_puts_the_default_beside_the_edited(tmp_path: Path) -> None:
    project = load_project(_heyloyalty_project(tmp_path), env=sandbox_env())
    tables = mapping_tables(project.get_sync(HEYLOYALTY))
    members = {row.field: row for row in tables["List fields (customer → member)"]}
    assert members["email"].change == "" and members["email"].default == "email"
    assert members["Cardnumber"].change == "added"
    assert members["Cardnumber"].edited == "cards.Cardnumber"
    assert "Tracking fields (order → purchase event)" in tables


def test_an_import_of_14_months_reads_two_chunks_of_at_most_a_year(tmp_path: Path) -> None:
    project = load_project(_heyloyalty_project(tmp_path), env=sandbox_env())
    prepared = prepare_import(
        project,
        HEYLOYALTY,
        ImportChoices(
            start=date(2025, 1, 1), end=date(2026, 3, 1), orders=False, send_optin=True,
            import_type="update",
        ),
    )  # fmt: skip
    assert [(w.start.date(), w.end.date()) for w in prepared.chunks] == [
        (date(2025, 1, 1), date(2026, 1, 1)),
        (date(2026, 1, 1), date(2026, 3, 1)),
    ]
    assert prepared.opts.kind == "backfill"
    assert prepared.opts.source_overrides == {"orders": False}
    assert prepared.opts.destination_overrides == {"send_optin": True, "import_type": "update"}
    assert project.get_sync(HEYLOYALTY).backfill_from is None, "the project is not changed"
    with pytest.raises(ValueError, match="destination setting import_type: Input should be"):
        prepare_import(
            project, HEYLOYALTY, ImportChoices(start=date(2025, 1, 1), import_type="merge")
        )
    with pytest.raises(ValueError, match="not after its start"):
        prepare_import(
            project, HEYLOYALTY, ImportChoices(start=date(2025, 1, 1), end=date(2024, 1, 1))
        )


def _lines_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    """Lines of the process's stdout up to the first containing ``marker``."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    proc.kill()
    raise AssertionError(
        f"no {marker!r} in the output: {lines} {proc.stderr.read() if proc.stderr else ''}"
    )


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@contextmanager
def _log_in_once(lines: list[str]) -> Iterator[httpx.Client]:
    """A client logged in with the one-time link the command printed."""
    url = next(line.split(": ", 1)[1] for line in lines if line.startswith("console: "))
    link = next(line.split(": ", 1)[1] for line in lines if line.startswith("one-time login: "))
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get(link, follow_redirects=False).status_code == 303
        yield client


def test_ticketbridge_ui_without_passwords_prints_a_one_time_login(project_file: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketbridge", "ui", "--port", str(port), "-c", str(project_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(project_file.parent)},
    )
    try:
        lines = _lines_until(proc, "operator password for this start", timeout=60)
        assert lines[0] == f"console: http://127.0.0.1:{port}"
        with _log_in_once(lines) as client:
            page = client.get("/")
            assert page.status_code == 200
            for sync in load_project(project_file, secrets=False).syncs:
                assert sync in page.text
    finally:
        code = _stop(proc)
    assert code == 0


@pytest.mark.e2e
def test_demo_ui_runs_the_demo_then_serves_the_console_on_its_results(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketbridge", "demo", "--ui", "--records", "100",
         "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        lines = _lines_until(proc, "one-time login", timeout=240)
        assert any("Tiqets ↔ ACME" in line for line in lines), "the demo's report comes first"
        with _log_in_once(lines) as client:
            overview = client.get("/").text
            for integration in INTEGRATIONS:
                assert integration.sync in overview
            runs = client.get(f"/syncs/{INTEGRATIONS[0].sync}").text
            assert runs.count('href="/runs/') >= 2, "both demo runs are in the history"
            assert "demo" in runs, "started by the demo"
            sales = client.get("/sales").text
            assert "cancelled (1)" in sales, "the demo's Tiqets sale, cancelled"
    finally:
        code = _stop(proc)
    assert code == 0


def test_a_run_whose_process_died_shows_as_crashed_not_running(project_file: Path) -> None:
    url = f"sqlite:///{project_file.parent}/s.db"
    sync = next(iter(load_project(project_file, secrets=False).syncs))
    store = open_store(url)
    try:
        holder = f"{socket.gethostname()}:{_ended_pid()}:test"
        lease = store.acquire_lease(sync, holder, ttl_s=3600)
        assert lease is not None
        run_id = store.start_run(sync, "run", lease, {"started_by": "a killed process"})
    finally:
        store.close()
    settings = UiSettings(
        project_file, database_url=url, operator_password=SecretStr("operator-password")
    )
    with served(settings) as client:
        login = client.get("/login").text
        token = login.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"csrf": token, "password": "operator-password"})
        page = client.get(f"/runs/{run_id}").text
    assert '<span class="badge crashed">crashed</span>' in page
    assert "hx-trigger" not in page, "a crashed run is not polled for progress"


def test_the_run_history_says_which_runs_serve_retried(project_file: Path) -> None:
    url = f"sqlite:///{project_file.parent}/s.db"
    sync = next(iter(load_project(project_file, secrets=False).syncs))
    store = open_store(url)
    try:
        store.record_action(sync, "run", "failed", {"started_by": "schedule"}, error="HTTP 503")
        store.record_action(sync, "run", "ok", {"started_by": "schedule", "retry": 1})
    finally:
        store.close()
    with served(_with_operator(project_file)) as client:
        _log_in(client, "operator-password")
        page = client.get(f"/syncs/{sync}").text
    assert page.count('small">schedule (retry 1)</td>') == 1
    assert page.count('small">schedule</td>') == 1, "the run the schedule made"


def test_a_sync_page_shows_a_cron_in_its_zone_and_its_next_time_in_utc(
    project_file: Path,
) -> None:
    data = yaml.safe_load(project_file.read_text())
    sync, cfg = next((n, c) for n, c in data["syncs"].items() if c.get("schedule") == "0 4 * * *")
    cfg["schedule_timezone"] = "Pacific/Kiritimati"  # UTC+14: 04:00 there is 14:00 UTC
    project_file.write_text(yaml.safe_dump(data, sort_keys=False))
    before = datetime.now(UTC)
    with served(_with_operator(project_file)) as client:
        _log_in(client, "operator-password")
        page = client.get(f"/syncs/{sync}").text
    assert "0 4 * * * (Pacific/Kiritimati)" in page
    due = before.replace(hour=14, minute=0, second=0, microsecond=0)
    if due <= before:
        due += timedelta(days=1)
    assert f"{due:%Y-%m-%d %H:%M:%S} UTC" in page


def _ended_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_large_csv_download_is_the_cli_file_chunk_after_chunk(project_file: Path) -> None:
    url = f"sqlite:///{project_file.parent}/s.db"
    sync = next(iter(load_project(project_file, secrets=False).syncs))
    store = open_store(url)
    try:
        lease = store.acquire_lease(sync, "test", ttl_s=60)
        assert lease is not None
        run_id = store.start_run(sync, "run", lease)
        for start in range(0, 2345, 500):  # several CSV chunks, and commits a second apart
            letters = [
                DeadLetterIn(key=f"booking:x:{n:05d}", stage="prepare", reason=f'bad, "{n}"')
                for n in range(start, min(start + 500, 2345))
            ]
            store.commit_batch(lease, run_id, dead_letters=letters)
        store.commit_batch(lease, run_id, resolved=["booking:x:00007"])
        expected = io.StringIO(newline="")
        dead_letters.write_csv(store.list_dead_letters(sync), expected)
        everything = io.StringIO(newline="")
        dead_letters.write_csv(store.list_dead_letters(sync, include_resolved=True), everything)
    finally:
        store.close()
    settings = UiSettings(
        project_file, database_url=url, viewer_password=SecretStr("viewer-password")
    )
    with served(settings) as client:
        login = client.get("/login").text
        token = login.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"csrf": token, "password": "viewer-password"})
        open_only = client.get(f"/dead-letters.csv?sync={sync}")
        with_resolved = client.get(f"/dead-letters.csv?sync={sync}&all=1")
    assert open_only.content == expected.getvalue().encode()
    assert with_resolved.content == everything.getvalue().encode()
    assert open_only.content.count(b"\r\n") == 2345  # the header and 2,344 open ones


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_dead_letter_pages_show_each_match_once_newest_first(state_url: str) -> None:
    store = open_store(state_url)
    try:
        for sync in ("a-sync", "b-sync"):
            lease = store.acquire_lease(sync, "test", ttl_s=60)
            assert lease is not None
            run_id = store.start_run(sync, "run", lease)
            for start in range(0, 130, 40):  # batches: several first_seen values, ties inside
                store.commit_batch(
                    lease,
                    run_id,
                    dead_letters=[
                        DeadLetterIn(key=f"k:{n:04d}", stage="prepare", reason=f"r{n % 3}")
                        for n in range(start, min(start + 40, 130))
                    ],
                )
        seen: list[tuple[str, str]] = []
        flt = queries.LetterFilter(reason="r1")
        while True:
            rows, more, total = queries.letters_page(store, flt, limit=17)
            seen += [(sync, d.key) for sync, d in rows]
            if more is None:
                break
            flt.after = queries.LetterFilter.parse_after(more)
        wanted = {(s, f"k:{n:04d}") for s in ("a-sync", "b-sync") for n in range(130) if n % 3 == 1}
        assert len(seen) == len(set(seen)) == len(wanted) and set(seen) == wanted
        order = [(d.first_seen, s, d.key) for s, d in _all(store, seen)]
        assert order == sorted(order, reverse=True), "newest first, then sync, then key"
        _, _, total = queries.letters_page(store, queries.LetterFilter(reason="r1"), 17)
        assert total == len(wanted)
        run_rows, run_total = queries.run_letters(store, "a-sync", run_id=1, limit=10)
        assert run_total == 130 and len(run_rows) == 10
    finally:
        store.close()


def _all(store: Any, keys: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    return [(sync, queries.letter(store, sync, key)) for sync, key in keys]
