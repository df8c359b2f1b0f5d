"""What holds with no cluster at all: the refusals, and the local commands without the extra."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from ticketbridge.demo import write_example_project


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketbridge", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(env or {})},
        timeout=120,
    )


def test_a_worker_on_a_sqlite_state_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    write_example_project(tmp_path, port_base=18901)
    proc = cli(tmp_path, "worker", "--temporal", "127.0.0.1:1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "needs the state in PostgreSQL, shared by every worker" in message
    assert str(tmp_path / "ticketbridge.db") in message
    assert "TICKETBRIDGE_DATABASE_URL=postgresql+psycopg://" in message
    assert not (tmp_path / "ticketbridge.db").exists(), "refused before anything was opened"


def test_a_dry_run_is_not_sent_to_the_cluster(tmp_path: Path) -> None:
    write_example_project(tmp_path, port_base=18901)
    proc = cli(tmp_path, "run", "ticketco-bookings-to-airship", "--dry-run", "--temporal", "x:1")
    assert proc.returncode == 2
    assert "leave out --temporal" in proc.stderr


def test_an_unknown_sync_is_a_usage_error_before_the_cluster_is_asked(tmp_path: Path) -> None:
    write_example_project(tmp_path, port_base=18901)
    proc = cli(tmp_path, "run", "no-such-sync", "--temporal", "127.0.0.1:1")
    assert proc.returncode == 2
    assert "no-such-sync" in proc.stderr


# Runs ticketbridge with temporalio unimportable, as an install without the extra is.
WITHOUT_EXTRA = """
import sys
sys.modules["temporalio"] = None  # import temporalio -> ModuleNotFoundError
from ticketbridge.cli import main
sys.argv = ["ticketbridge", *sys.argv[1:]]
main()
"""


def test_without_the_extra_local_runs_work_and_cluster_commands_say_how_to_get_it(
    tmp_path: Path,
) -> None:
    write_example_project(tmp_path, port_base=18901)
    script = tmp_path / "no_extra.py"
    script.write_text(WITHOUT_EXTRA)
    runs = subprocess.run(
        [sys.executable, str(script), "runs"], capture_output=True, text=True, cwd=tmp_path
    )
    assert runs.returncode == 0 and "no runs yet" in runs.stdout
    for args in (["worker", "--temporal", "127.0.0.1:1"], ["schedules", "apply"]):
        proc = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "TICKETBRIDGE_DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/x",
            },
        )
        assert proc.returncode == 2, proc.stderr
        assert "pip install 'ticketbridge[temporal]'" in proc.stderr


def test_the_cli_and_the_local_scheduler_load_no_temporal_code() -> None:
    probe = (
        "import sys, ticketbridge.cli, ticketbridge.engine.scheduler, ticketbridge.runtime\n"
        "ours = ('temporalio', 'ticketbridge.temporal')\n"
        "print(sorted(m for m in sys.modules if m.startswith(ours)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert loaded == "[]"


def test_a_cluster_that_does_not_answer_is_one_line_and_exit_1(tmp_path: Path) -> None:
    write_example_project(tmp_path, port_base=18901)
    proc = cli(tmp_path, "run", "ticketco-bookings-to-airship", "--temporal", "127.0.0.1:1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot reach Temporal at 127.0.0.1:1 (namespace default)")
    assert "Traceback" not in proc.stderr


def test_tls_and_the_api_key_come_from_the_environment_and_never_show(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no temporal.toml profile of the machine
    monkeypatch.setenv("TEMPORAL_ADDRESS", "ns.example.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "ns.example")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key-123")
    from ticketbridge.temporal.cluster import Cluster

    options = Cluster().connect_options()
    assert options["target_host"] == "ns.example.tmprl.cloud:7233"
    assert options["namespace"] == "ns.example"
    assert options["api_key"] == "secret-key-123"
    assert options["tls"], "an API key turns TLS on"
    assert "secret-key-123" not in Cluster().where
    # The command line wins over the environment for the address and the namespace.
    chosen = Cluster("127.0.0.1:7233", "other").connect_options()
    assert (chosen["target_host"], chosen["namespace"]) == ("127.0.0.1:7233", "other")


def test_no_address_anywhere_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    from ticketbridge.errors import ConfigError
    from ticketbridge.temporal.cluster import Cluster

    with pytest.raises(ConfigError, match="--temporal HOST:PORT"):
        Cluster().connect_options()


def test_a_cron_in_a_zone_becomes_a_temporal_schedule_in_that_zone(tmp_path: Path) -> None:
    import yaml

    from ticketbridge.project import load_project
    from ticketbridge.temporal.schedules import desired_schedules

    config = write_example_project(tmp_path, port_base=18901)
    data = yaml.safe_load(config.read_text())
    sync, cfg = next((n, c) for n, c in data["syncs"].items() if c.get("schedule") == "0 4 * * *")
    cfg["schedule_timezone"] = "Europe/Oslo"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    desired = desired_schedules(load_project(config, secrets=False), "q", timedelta(minutes=5))
    text, schedule = desired[sync]
    assert text == "0 4 * * * (Europe/Oslo)"
    assert schedule.spec.cron_expressions == ["0 4 * * *"]
    assert schedule.spec.time_zone_name == "Europe/Oslo"
    others = [s for name, (_, s) in desired.items() if name != sync]
    assert others and all(s.spec.time_zone_name in (None, "UTC") for s in others)
