"""The project file: validated before anything runs, errors name file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ticketbridge.errors import ConfigError
from ticketbridge.project import load_project, load_project_text

ENV = {"TICKETCO_TOKEN": "tc-secret", "AIRSHIP_TOKEN": "as-secret"}

GOOD = """\
connections:
  ticketco:
    platform: ticketco
    base_url: http://127.0.0.1:8401/api/public/v1
    token: ${TICKETCO_TOKEN}
  airship:
    platform: airship_crm
    base_url: http://127.0.0.1:8402/v1
    token: ${AIRSHIP_TOKEN}
    account_id: 1
syncs:
  nightly:
    source: {connection: ticketco, stream: bookings, venues: ["Riverside Hall"]}
    destination:
      connection: airship
      object: contact_bookings
    groups: {per_venue: Booking, event_tags: [Golf]}
    schedule: "0 4 * * *"
    window: {field: attendance_at, from: -1d, to: +30d}
    match: [email, mobile]
    write_policy: {contact: on_create}
"""


def test_a_good_project_loads_with_secrets_from_the_environment() -> None:
    project = load_project_text(GOOD, env=ENV)
    sync = project.get_sync("nightly")
    assert sync.strategy == "window" and sync.window is not None
    assert sync.policy.mode("contact", "email") == "on_create"
    assert sync.policy.mode("booking", "party_size") == "always"
    assert sorted(project.secrets()) == ["as-secret", "tc-secret"]
    assert "tc-secret" not in repr(project.connections["ticketco"])
    assert sync.object_options.groups.event_tags == ["Golf"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutation", "line", "message"),
    [
        (("    window: {", "    windw: {"), 19, "unknown key 'windw'"),
        (("venues: [", "venus: ["), 13, "unknown key 'venus'"),
        (("    account_id: 1\n", "    account_id: 1\n    acount: 2\n"), 11, "unknown key 'acount'"),
        (("stream: bookings", "stream: orders"), 13, "no stream 'orders'"),
        (("connection: airship\n", "connection: airsip\n"), 15, "no connection named 'airsip'"),
        (("platform: ticketco", "platform: tiketco"), 3, "unknown platform 'tiketco'"),
        (
            ("write_policy: {contact: on_create}", "write_policy: {contact: sometimes}"),
            21,
            "write mode",
        ),
        (("field: attendance_at", "field: booked_at"), 19, "no window field 'booked_at'"),
        (('schedule: "0 4 * * *"', 'schedule: "at dawn"'), 18, "cron"),
        (
            ('schedule: "0 4 * * *"', 'schedule: "0 4 * * *"\n    schedule_timezone: Oslo'),
            19,
            "unknown timezone 'Oslo'",
        ),
        # Issue 20.6: these three once loaded, then failed the run with a traceback.
        (("from: -1d, to: +30d", "from: +30d, to: -1d"), 19, "window ends (-1d) before it starts"),
        (("to: +30d}", "to: +30d, timezone: Mars/Olympus}"), 19, "unknown timezone 'Mars/Olympus'"),
        (
            ("    account_id: 1\n", "    account_id: 1\n    rate_per_second: -5\n"),
            11,
            "greater than 0",
        ),
    ],
)
def test_errors_name_the_line_and_the_field(
    mutation: tuple[str, str], line: int, message: str
) -> None:
    text = GOOD.replace(*mutation)
    assert text != GOOD
    with pytest.raises(ConfigError) as info:
        load_project_text(text, env=ENV)
    assert info.value.line == line, str(info.value)
    assert message in str(info.value)
    assert str(info.value).startswith(f"ticketbridge.yaml:{line}: ")


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="TICKETCO_TOKEN is not set") as info:
        load_project_text(GOOD, env={"AIRSHIP_TOKEN": "x"})
    assert info.value.line == 5


def test_env_file_beside_the_project_is_read_but_never_overrides(tmp_path: Path) -> None:
    (tmp_path / "ticketbridge.yaml").write_text(GOOD)
    (tmp_path / ".env").write_text("TICKETCO_TOKEN=from-file\nAIRSHIP_TOKEN=file2\n")
    project = load_project(tmp_path / "ticketbridge.yaml", env={"AIRSHIP_TOKEN": "real"})
    assert sorted(project.secrets()) == ["from-file", "real"]


def test_check_with_a_typo_exits_2_naming_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "ticketbridge.yaml"
    path.write_text(GOOD.replace("    window: {", "    windw: {"))
    proc = subprocess.run(
        [sys.executable, "-m", "ticketbridge", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={**ENV, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{path}:19" in proc.stderr
    assert "unknown key 'windw'" in proc.stderr


def billion_laughs(levels: int = 9) -> str:
    text = 'lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, levels):
        text += f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n"
    return GOOD + text + f"laughs: *lol{levels - 1}\n"


def test_an_alias_bomb_fails_at_once_naming_the_line() -> None:
    """Issue 20.9: nine lines of aliases expanding to a billion values hung the loader."""
    with pytest.raises(ConfigError) as caught:
        load_project_text(billion_laughs(), env=ENV)
    assert "expands to more than 100,000 values through its aliases" in str(caught.value)
    assert caught.value.line is not None and caught.value.line > GOOD.count("\n")


def test_a_recursive_alias_is_an_error() -> None:
    with pytest.raises(ConfigError, match="refers to a block that contains it"):
        load_project_text(GOOD + "loop: &loop [*loop]\n", env=ENV)


def test_aliases_that_stay_small_are_fine() -> None:
    text = GOOD.replace(
        "    write_policy: {contact: on_create}\n",
        "    write_policy: &policy {contact: on_create}\n"
        "  again:\n"
        "    source: {connection: ticketco, stream: bookings}\n"
        "    destination: {connection: airship, object: contact_bookings}\n"
        "    write_policy: *policy\n",
    )
    project = load_project_text(text, env=ENV)
    assert project.get_sync("again").policy.mode("contact", "email") == "on_create"


def test_a_duplicate_key_is_an_error_naming_both_lines() -> None:
    """Issue 20.9: YAML keeps the last of two equal keys without a word."""
    text = GOOD.replace(
        "    write_policy: {contact: on_create}\n",
        "    write_policy: {contact: on_create}\n    write_policy: {contact: always}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_project_text(text, env=ENV)
    line = GOOD.count("\n") + 1
    assert str(caught.value) == (
        f"ticketbridge.yaml:{line}: syncs.nightly.write_policy: duplicate key "
        f"'write_policy' (first on line {line - 1})"
    )
