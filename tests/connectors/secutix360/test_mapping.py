"""prepare: what S-360 is sent for a ticket, and the records it refuses (naming the field)."""

from __future__ import annotations

import pytest

from ticketbridge.connectors.secutix360.config import TicketFeedbackOptions
from ticketbridge.connectors.secutix360.mapping import prepare_ticket_feedback
from ticketbridge.errors import RecordRejected

from .support import make_ticket, person

OPTS = TicketFeedbackOptions()


def test_three_entities_and_a_case_insensitive_match() -> None:
    record = make_ticket(owner=person("Ann.Lee@EXAMPLE.org", "Ann", "Lee"), holder=None)
    mapped = prepare_ticket_feedback(record, OPTS)
    assert mapped["ticket"] == {
        "ticket_id": "S360-000001",
        "status": "DOWNLOADED",
        "mode": "lifecycle",
        "status_date": "2026-11-20T10:00:00Z",
        "previous_status": "INJECTED",
    }
    assert mapped["owner"]["email"] == "Ann.Lee@example.org"
    assert mapped["owner"]["match"] == "ann.lee@example.org"
    assert mapped["holder"] == {}


def test_the_mode_defaults_and_statuses_are_checked_against_it() -> None:
    assert prepare_ticket_feedback(make_ticket(mode=None), OPTS)["ticket"]["mode"] == "lifecycle"
    history = TicketFeedbackOptions(default_mode="history")
    unset = make_ticket(status="RECEIVED", mode=None)
    assert prepare_ticket_feedback(unset, history)["ticket"]["mode"] == "history"
    with pytest.raises(RecordRejected, match="'RECEIVED' is not a TIXNGO lifecycle status"):
        prepare_ticket_feedback(make_ticket(status="RECEIVED"), OPTS)
    with pytest.raises(RecordRejected, match="mobile_status_mode 'legacy'"):
        prepare_ticket_feedback(make_ticket(mode="legacy"), OPTS)
    with pytest.raises(RecordRejected, match="mobile_status is empty"):
        prepare_ticket_feedback(make_ticket(status=""), OPTS)


def test_a_bad_address_names_the_record_and_the_field() -> None:
    with pytest.raises(
        RecordRejected, match=r"ticket:tixngo:S360-000001: owner\.email: invalid email"
    ):
        prepare_ticket_feedback(make_ticket(owner=person("not-an-address")), OPTS)
