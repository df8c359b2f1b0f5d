"""The Airship Wallet destination: object ``event_tickets`` (one mobile pass per ticket).

Invariants:

* One Wallet event per canonical event, created under its external id with one pass group;
  an external id that already exists (400 at create) is read back and used, never a failure.
* One adaptive link per ticket (``adaptiveLinkExternalId`` = the ticket's id), the attendees
  of one event sent together, ``batch_size`` per request. Links are keyed by external id, so
  a retried create re-sends the same links instead of making new ones.
* Updates follow ``Change.changed``: a changed ``"pass"`` entity is one partial update of each
  of the ticket's passes (one per configured template); a changed ``"event"`` entity is one
  pass-group update for all of that event's changes in the run (however many batches they
  span), never one call per pass.
* A record refused by Wallet (or by this code, with the reason) is its ``Outcome(ok=False)``
  naming the record and the field; auth, fatal and retryable errors propagate to the engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ticketbridge.connectors.airship_wallet.client import AirshipWalletClient
from ticketbridge.connectors.airship_wallet.config import (
    PLATFORM,
    AirshipWalletConfig,
    EventTicketsOptions,
)
from ticketbridge.connectors.airship_wallet.mapping import (
    EVENT,
    PASS,
    attendee,
    event_body,
    event_external_id,
    event_fields,
    link_external_id,
    pass_group,
    prepare_event_tickets,
    with_change_messages,
)
from ticketbridge.connectors.airship_wallet.schemas import EventOut
from ticketbridge.connectors.base import (
    Change,
    CheckResult,
    Mapped,
    ObjectOptions,
    ObjectSpec,
    Outcome,
    Record,
)
from ticketbridge.connectors.kit import DestinationKit, run_bounded
from ticketbridge.errors import AuthError, ConnectorError, RecordRejected
from ticketbridge.http import HttpContext

OBJECT = "event_tickets"

EVENT_TICKETS = ObjectSpec(
    name=OBJECT,
    accepts=("ticket",),
    entities=(EVENT, PASS),
    default_policy={EVENT: "always", PASS: "always"},
    options=EventTicketsOptions,
    description="One Wallet event (with a pass group) per event and one adaptive link per "
    "ticket; ticket changes update its pass, event changes update the pass group.",
)


class _Refused(Exception):
    """Refuses every record of a step (one event, one batch): becomes ``Outcome(ok=False)``."""


class AirshipWalletDestination(DestinationKit[AirshipWalletConfig]):
    platform = PLATFORM
    config_model = AirshipWalletConfig
    OBJECTS = (EVENT_TICKETS,)
    client: AirshipWalletClient

    def __init__(
        self,
        config: AirshipWalletConfig | Mapping[str, Any],
        context: HttpContext,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock  # read by open_client, which the kit calls from __init__
        super().__init__(config, context)
        # Events this destination has made sure exist (one run): eventExternalId -> eventId.
        self._events: dict[str, str] = {}
        # Pass groups updated by this destination (one run), with the fields sent: an event
        # whose changed tickets span several batches is still one pass-group update, since
        # that update reached every pass of the event, those of later batches included.
        self._groups_sent: set[tuple[str, bytes]] = set()

    def open_client(self, config: AirshipWalletConfig, context: HttpContext) -> AirshipWalletClient:
        return AirshipWalletClient(config, context, clock=self._clock)

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        """Pure: see :func:`mapping.prepare_event_tickets`. Raises RecordRejected."""
        return prepare_event_tickets(record, self.object_options(obj, options, EventTicketsOptions))

    async def write(self, obj: str, changes: list[Change], options: ObjectOptions) -> list[Outcome]:
        opts = self.object_options(obj, options, EventTicketsOptions)
        failed: dict[str, str] = {}
        ids: dict[str, dict[str, str]] = {c.key: dict(c.dest_ids) for c in changes}
        # Event ids first: a record the mapping cannot place is refused alone, not the batch.
        events: dict[str, str] = {}
        for change in changes:
            try:
                events[change.key] = event_external_id(change.record, opts)
            except RecordRejected as exc:
                failed[change.key] = exc.message
        placed = [c for c in changes if c.key in events]
        # An update the ledger holds no link for (ids lost) is sent as a create: links upsert
        # on their external id, so that re-sends the same link.
        new = [c for c in placed if c.action == "create" or "link" not in c.dest_ids]
        old = [c for c in placed if c.action == "update" and "link" in c.dest_ids]
        # Events whose shared fields must be pushed to their pass group, with the fields.
        group_updates: dict[str, tuple[dict[str, Any], list[Change]]] = {}

        for change in old:
            ext = events[change.key]
            if change.dest_ids.get("event", ext) != ext:
                failed[change.key] = (
                    f"{change.key}: ticket moved from event {change.dest_ids['event']!r} to "
                    f"{ext!r}; a Wallet link cannot change event (re-issue the ticket)"
                )
            elif EVENT in change.changed and EVENT in change.fields:
                group = pass_group(change.record, opts)
                group_updates.setdefault(group, (change.fields[EVENT], []))[1].append(change)

        by_event: dict[str, list[Change]] = defaultdict(list)
        for change in new:
            by_event[events[change.key]].append(change)
        await run_bounded(
            list(by_event.items()),
            lambda item: self._create_links(item[0], item[1], opts, ids, failed, group_updates),
            self.config.concurrency,
        )

        await run_bounded(
            list(group_updates.items()),
            lambda item: self._update_group(item[0], item[1][0], item[1][1], opts, failed),
            self.config.concurrency,
        )
        pass_changes = [
            c for c in old if c.key not in failed and PASS in c.changed and c.fields.get(PASS)
        ]
        await run_bounded(
            pass_changes, lambda c: self._update_passes(c, opts, failed), self.config.concurrency
        )
        return [
            Outcome(c.key, ok=False, dest_ids=ids[c.key], reason=failed[c.key])
            if c.key in failed
            else Outcome(c.key, ok=True, dest_ids=ids[c.key])
            for c in changes
        ]

    # -- create: event, then links in batches ------------------------------------------

    async def _create_links(
        self,
        ext: str,
        members: list[Change],
        opts: EventTicketsOptions,
        ids: dict[str, dict[str, str]],
        failed: dict[str, str],
        group_updates: dict[str, tuple[dict[str, Any], list[Change]]],
    ) -> None:
        first = members[0].record
        fields = members[0].fields.get(EVENT) or event_fields(first, opts)
        group = pass_group(first, opts)
        try:
            event_id = await self._ensure_event(ext, fields, group, members, group_updates)
        except _Refused as exc:
            for change in members:
                failed[change.key] = f"{change.key}: {exc}"
            return
        size = self.config.batch_size
        for start in range(0, len(members), size):
            batch = members[start : start + size]
            by_link = {link_external_id(c.record, opts): c for c in batch}
            attendees = [
                attendee(link, c.fields.get(PASS) or prepare_event_tickets(c.record, opts)[PASS])
                for link, c in by_link.items()
            ]
            try:
                links = await self.client.create_links(ext, attendees)
            except RecordRejected as exc:
                for change in batch:
                    failed[change.key] = f"{change.key}: adaptive links refused: {exc.message}"
                continue
            answered = {link.external_id: link for link in links if link.external_id}
            for link_id, change in by_link.items():
                link = answered.get(link_id)
                if link is None:
                    failed[change.key] = f"{change.key}: no adaptive link {link_id!r} returned"
                elif not link.ok:
                    failed[change.key] = (
                        f"{change.key}: adaptive link {link_id!r} refused (HTTP {link.status})"
                    )
                else:
                    ids[change.key].update(
                        {"event": ext, "event_id": event_id, "link_external": link_id}
                    )
                    ids[change.key].update(link.dest_ids())

    async def _ensure_event(
        self,
        ext: str,
        fields: dict[str, Any],
        group: str,
        members: list[Change],
        group_updates: dict[str, tuple[dict[str, Any], list[Change]]],
    ) -> str:
        """The event's Wallet id, creating it (with its pass group) unless it exists."""
        known = self._events.get(ext)
        if known is not None:
            return known
        try:
            made = await self.client.create_event(ext, event_body(fields, group))
        except RecordRejected as exc:
            # 400 is also Wallet's answer to an external id that exists: read it back.
            found = await self.client.get_event(ext)
            if found is None:
                raise _Refused(f"event {ext!r} refused: {exc.message}") from None
            self._reconcile(found, fields, group, members, group_updates)
            made = found
        event_id = "" if made.event_id is None else str(made.event_id)
        self._events[ext] = event_id
        return event_id

    @staticmethod
    def _reconcile(
        found: EventOut,
        fields: dict[str, Any],
        group: str,
        members: list[Change],
        group_updates: dict[str, tuple[dict[str, Any], list[Change]]],
    ) -> None:
        """An event made earlier (another run, another sync) may hold older fields: push
        ours to its pass group in the same single group update as any other change."""
        stale = any(
            found.fields.get(k, {}).get("value") != v.get("value") for k, v in fields.items()
        )
        if stale:
            group_updates.setdefault(group, (fields, []))[1].extend(members)

    # -- updates -----------------------------------------------------------------------

    async def _update_group(
        self,
        group: str,
        fields: dict[str, Any],
        members: list[Change],
        opts: EventTicketsOptions,
        failed: dict[str, str],
    ) -> None:
        sent = (group, orjson.dumps(fields, option=orjson.OPT_SORT_KEYS))
        if sent in self._groups_sent:
            return
        try:
            found = await self.client.update_pass_group(group, with_change_messages(fields, opts))
        except RecordRejected as exc:
            reason = f"pass group {group!r} update refused: {exc.message}"
        else:
            if found:
                self._groups_sent.add(sent)
                return
            reason = f"pass group {group!r} not found in project {self.config.project_id}"
        for change in members:
            failed.setdefault(change.key, f"{change.key}: {reason}")

    async def _update_passes(
        self, change: Change, opts: EventTicketsOptions, failed: dict[str, str]
    ) -> None:
        link = change.dest_ids.get("link_external") or link_external_id(change.record, opts)
        body = with_change_messages(change.fields[PASS], opts)
        for template in self.config.templates:
            try:
                found = await self.client.update_pass(template, link, body)
            except RecordRejected as exc:
                failed[change.key] = (
                    f"{change.key}: pass {link!r} (template {template}) refused: {exc.message}"
                )
                return
            if not found:
                failed[change.key] = (
                    f"{change.key}: pass {link!r} not found under template {template}"
                )
                return

    # -- checks ------------------------------------------------------------------------

    async def check(self) -> list[CheckResult]:
        """Credentials accepted, project readable, every configured template readable."""
        project = f"project {self.config.project_id}"
        try:
            await self.client.check_credentials()
            found = await self.client.get_project()
        except AuthError as exc:
            return [
                CheckResult(
                    "credentials",
                    False,
                    f"Wallet refused the {self.config.auth} credentials (HTTP {exc.status})",
                ),
                CheckResult("project", False, "not checked: credentials refused"),
            ]
        except ConnectorError as exc:
            # Only an answer from Wallet (a 404, a 5xx) says the credentials passed; with no
            # answer at all they were not checked.
            credentials = (
                CheckResult("credentials", False, "not checked: Wallet did not answer")
                if exc.status is None
                else CheckResult("credentials", True, "accepted")
            )
            return [credentials, CheckResult("project", False, f"{project}: {exc.message}")]
        results = [
            CheckResult("credentials", True, f"{self.config.auth} accepted"),
            CheckResult("project", True, f"{project} readable ({found.name or 'unnamed'})"),
        ]
        for template in self.config.templates:
            try:
                tpl = await self.client.get_template(template)
                results.append(
                    CheckResult(f"template {template}", True, tpl.name or tpl.vendor or "found")
                )
            except ConnectorError as exc:
                results.append(CheckResult(f"template {template}", False, exc.message))
        return results
