"""Heyloyalty never ends subscribed against anybody's "no": after any sequence of consent
answers, unsubscribes made on Heyloyalty itself, and reruns that lost their acknowledgements
(a run killed after its writes, before its commit),

* a channel the contact's latest answer denies is not ``active`` on the member, whether or
  not the sync may re-subscribe members;
* a member who unsubscribed on Heyloyalty stays unsubscribed when the sync may not
  re-subscribe (``resubscribe_unsubscribed: false``), also when a later "no" is written to it.

Real engine, real Heyloyalty destination, its sandbox in process. The safety half of DESIGN
guarantee 4; which answers are written at all is the destination tests' business.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.connectors.heyloyalty.support import Harness, make_contact, members_sync
from tests.fakes import RecordsSource
from ticketbridge.connectors.heyloyalty import create_sandbox
from ticketbridge.connectors.ticketmaster import CUSTOMERS
from ticketbridge.engine.pipeline import run_sync
from ticketbridge.engine.state.sql import open_store
from ticketbridge.model import ConsentState

pytestmark = pytest.mark.reliability

EMAIL = "jane.doe@example.com"
Answer = ConsentState
answers = st.sampled_from([Answer.GRANTED, Answer.DENIED, Answer.UNKNOWN])
# A run with the contact's answers (e-mail, SMS), the same after its state was lost, or the
# person unsubscribing on Heyloyalty between runs.
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["run", "run after a lost state"]), answers, answers),
        st.just(("unsubscribed on Heyloyalty", None, None)),
    ),
    min_size=1,
    max_size=6,
)


async def _play(script: list[tuple[str, Any, Any]], resubscribe: bool, folder: Path) -> None:
    harness = Harness(create_sandbox())
    spec = members_sync(resubscribe_unsubscribed=resubscribe)
    latest: tuple[Any, Any] | None = None
    left = False  # the person unsubscribed on Heyloyalty
    for n, (what, email, sms) in enumerate(script):
        if what == "unsubscribed on Heyloyalty":
            if any(m["fields"].get("email") == EMAIL for m in (await harness.data())["members"]):
                await harness.admin("POST", "mutate", {"unsubscribe": [EMAIL]})
                left = True
            continue
        state_file = folder / "state.db"
        if what == "run after a lost state":
            state_file.unlink(missing_ok=True)
        store = open_store(f"sqlite:///{state_file}")
        try:
            source = RecordsSource([make_contact(email_consent=email, sms_consent=sms)], CUSTOMERS)
            result = await run_sync(store, spec, source, harness.destination())
        finally:
            store.close()
        assert result.outcome == "ok", result
        latest = (email, sms)
        members = [m for m in (await harness.data())["members"] if m["fields"]["email"] == EMAIL]
        assert len(members) <= 1, members
        for member in members:
            for channel, answer in zip(("email", "mobile"), latest, strict=True):
                if answer is Answer.DENIED:
                    assert member["status"][channel] != "active", (script[: n + 1], member)
            if left and not resubscribe:
                assert member["status"]["status"] == "unsubscribed", (script[: n + 1], member)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, resubscribe=st.booleans())
def test_a_channel_the_source_denies_is_never_left_active(
    script: list[tuple[str, Any, Any]], resubscribe: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_play(script, resubscribe, Path(folder)))
