"""Workflow ids and lease holders: what one run per sync cluster-wide rests on."""

from __future__ import annotations

from tests.fakes import spec
from ticketbridge.engine.leases import holder_is_dead
from ticketbridge.temporal import ids


def test_the_workflow_id_is_the_syncs_own_so_every_start_of_it_meets_the_others() -> None:
    assert ids.workflow_id(spec("venue-7-bookings")) == "ticketbridge-sync:venue-7-bookings"
    assert ids.workflow_id(spec("a")) != ids.workflow_id(spec("b"))
    assert ids.lease_names(spec("a")) == ["a"]


def test_a_lease_key_shared_by_several_syncs_gives_them_one_workflow_id() -> None:
    # SyncSpec.lease_key (one run per TIXNGO organizer) comes from another branch; a spec
    # that has one must map to it, whichever sync it is.
    first, second = spec("to-s360"), spec("to-crm")
    for s in (first, second):
        object.__setattr__(s, "lease_key", "tixngo:organizer-42")
    assert (
        ids.workflow_id(first) == ids.workflow_id(second) == "ticketbridge-sync:tixngo:organizer-42"
    )
    assert ids.lease_names(first) == ["to-s360", "tixngo:organizer-42"]
    own = spec("plain")
    object.__setattr__(own, "lease_key", "plain")
    assert ids.lease_names(own) == ["plain"]


def test_schedule_ids_name_their_sync_and_nobody_elses() -> None:
    assert ids.sync_of_schedule(ids.schedule_id("nightly")) == "nightly"
    assert ids.sync_of_schedule("someone-elses-schedule") is None


def test_an_attempts_holder_is_recognised_by_the_next_attempt_only() -> None:
    wf = "ticketbridge-sync:nightly"
    first = ids.holder(wf, "run-1", 1, "111@host-a")
    second = ids.holder(wf, "run-1", 2, "222@host-b")
    later_run = ids.holder(wf, "run-2", 1, "333@host-c")
    assert ids.is_other_attempt(first, wf, second)
    assert ids.is_other_attempt(first, wf, later_run)
    assert not ids.is_other_attempt(second, wf, second), "never one's own"
    other_sync = ids.holder("ticketbridge-sync:nightly-2", "run-9", 1, "1@h")
    assert not ids.is_other_attempt(other_sync, wf, second)
    assert not ids.is_other_attempt("host-a:4242:beefcafe", wf, second), "a local run"


def test_a_temporal_holder_is_never_judged_dead_by_process_id() -> None:
    # Only the cluster can say an attempt is over; a pid in the holder means nothing here.
    holder = ids.holder("ticketbridge-sync:x", "r", 1, "999999@localhost")
    assert not holder_is_dead(holder)
