"""The pass-install part of the StateStore contract, on SQLite and PostgreSQL (see conftest).

Wallet callbacks report installs and uninstalls of passes; ``ticketbridge links`` reads them
back per ticket. Callbacks may arrive late or out of order: the newest report wins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ticketbridge.engine.state import PassInstall, SqlStateStore

if TYPE_CHECKING:
    from tests.engine.state.conftest import FakeClock

PROJECT = "12345"
AT = datetime(2026, 5, 1, 19, 0, tzinfo=UTC)


def report(
    external_id: str = "T1",
    status: str = "installed",
    *,
    template: str = "1001",
    at: datetime = AT,
    project: str = PROJECT,
    platform: str | None = "ios",
) -> PassInstall:
    return PassInstall(
        project_id=project,
        template_id=template,
        external_id=external_id,
        status=status,  # type: ignore[arg-type]
        changed_at=at,
        pass_id="77",
        platform=platform,
    )


def test_a_report_is_stored_and_read_back_by_external_id(
    store: SqlStateStore, clock: FakeClock
) -> None:
    assert store.record_pass_install(report("T1")) is True
    assert store.record_pass_install(report("T1", template="1002", platform="android")) is True
    assert store.record_pass_install(report("T2", "uninstalled")) is True
    found = store.get_pass_installs(PROJECT, ["T1", "T2", "T3"])
    assert set(found) == {"T1", "T2"}, "a ticket nobody reported on is missing"
    ios, android = found["T1"]
    assert (ios.template_id, ios.status, ios.platform) == ("1001", "installed", "ios")
    assert (android.template_id, android.platform) == ("1002", "android")
    assert ios.changed_at == AT and ios.pass_id == "77"
    assert ios.received_at == clock.now, "the store stamps when it heard of it"
    assert [r.status for r in found["T2"]] == ["uninstalled"]


def test_the_newest_report_wins_whatever_order_they_arrive_in(store: SqlStateStore) -> None:
    later = AT + timedelta(minutes=5)
    assert store.record_pass_install(report("T1", "uninstalled", at=later))
    assert store.record_pass_install(report("T1", "installed", at=AT)) is False, "older: kept out"
    [kept] = store.get_pass_installs(PROJECT, ["T1"])["T1"]
    assert (kept.status, kept.changed_at) == ("uninstalled", later)

    assert store.record_pass_install(report("T1", "installed", at=later + timedelta(seconds=1)))
    assert [r.status for r in store.get_pass_installs(PROJECT, ["T1"])["T1"]] == ["installed"]
    # Same instant (a platform stamping whole seconds): the report received last wins.
    same = later + timedelta(seconds=1)
    assert store.record_pass_install(report("T1", "uninstalled", at=same))
    assert [r.status for r in store.get_pass_installs(PROJECT, ["T1"])["T1"]] == ["uninstalled"]


def test_projects_are_kept_apart_and_many_ids_are_looked_up_in_chunks(
    store: SqlStateStore,
) -> None:
    store.record_pass_install(report("T1", project="999"))
    assert store.get_pass_installs(PROJECT, ["T1"]) == {}
    ids = [f"N{i:04d}" for i in range(1200)]  # more than one IN (...) chunk
    for n in ids[::7]:
        store.record_pass_install(report(n))
    found = store.get_pass_installs(PROJECT, ids + ids[:3])
    assert sorted(found) == ids[::7]
    assert all(len(v) == 1 for v in found.values())


def test_times_come_back_as_utc(store: SqlStateStore) -> None:
    oslo = datetime(2026, 5, 1, 21, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Oslo"))
    store.record_pass_install(report("T1", at=oslo))
    [got] = store.get_pass_installs(PROJECT, ["T1"])["T1"]
    assert got.changed_at == oslo and got.changed_at.tzinfo == UTC
