"""The Heyloyalty destination: object ``members`` (list members plus purchase tracking events).

Invariants (the Ticketmaster integration's documented behaviour, DESIGN guarantees 1 and 4):

* A contact is upserted on the match field (``unique_field`` email or mobile): a retried write
  updates the same member, never a second one. Two changes for one identity in a batch are
  written one after the other, so the second sees the first.
* ``import_type`` is honoured before anything is written: ``create`` never updates an existing
  member, ``update`` never creates one; both end as ``Outcome(ok=True, skipped=...)``.
* A member who unsubscribed is re-subscribed only when ``resubscribe_unsubscribed`` is on; else
  it is looked up first and left alone (the upsert would re-activate it).
* Purchases go to the Heycommerce tracking import, several orders per call. An order is sent
  at most once per destination (a run): orders already imported in this run are acknowledged
  without another call, and an update never re-sends a purchase.
* Per-record problems (a list field the list lacks, a 422) are that record's
  ``Outcome(ok=False)`` naming the field; auth, fatal and retryable errors propagate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ticketbridge.connectors.base import (
    Change,
    CheckResult,
    Mapped,
    ObjectOptions,
    ObjectSpec,
    Outcome,
    Record,
)
from ticketbridge.connectors.heyloyalty.client import HeyloyaltyClient
from ticketbridge.connectors.heyloyalty.config import (
    PLATFORM,
    STATUS,
    HeyloyaltyConfig,
    MembersOptions,
)
from ticketbridge.connectors.heyloyalty.mapping import (
    MEMBER,
    PURCHASE,
    match_key,
    prepare_members,
    tracking_rows,
)
from ticketbridge.connectors.heyloyalty.schemas import MEMBER_META, HlList, Member, MemberStatus
from ticketbridge.connectors.kit import DestinationKit, coerce_options, gather_or_cancel
from ticketbridge.errors import AuthError, ConnectorError, FatalError, RecordRejected
from ticketbridge.http import HttpContext

OBJECT = "members"


def status_withdrawals(mapped: Mapped) -> Mapped:
    """The channels the member's mapped ``status`` unsubscribes: what the engine passes
    through whatever the write policy (``ObjectSpec.withdrawals``)."""
    status = (mapped.get(MEMBER) or {}).get(STATUS) or {}
    withdrawn = {c: v for c, v in status.items() if v == "unsubscribed"}
    return {MEMBER: {STATUS: withdrawn}} if withdrawn else {}


MEMBERS = ObjectSpec(
    name=OBJECT,
    accepts=("contact", "booking"),
    entities=(MEMBER, PURCHASE),
    default_policy={MEMBER: "always", PURCHASE: "on_create"},
    options=MembersOptions,
    at_least_once={
        PURCHASE: "the Heycommerce tracking import has no idempotency key and no look-up "
        "(platforms.md 5.6): a run killed between an import and its commit imports it again"
    },
    description="Contacts upserted as list members (matched on email or mobile); orders sent "
    "once each as purchase events through the Heycommerce tracking import.",
    withdrawals=status_withdrawals,
)


def _empty(value: Any) -> bool:
    return value in (None, "", [], {})


def _status_to_write(
    consent: dict[str, str],
    member: dict[str, Any],
    *,
    created: bool,
    found: Member | None,
    upserted: bool = True,
) -> dict[str, str]:
    """The channels to set ``unsubscribed``; never ``active`` (an opt-in is written only by
    the create itself). ``member`` is what the upsert sent, ``found`` the member as looked up
    before it (None: not looked up), ``upserted`` whether an upsert came before this.

    * A member just created is active on every channel it has an address for, so each channel
      whose consent the source did not grant is turned off: an SMS-only consent never becomes
      an active e-mail subscription.
    * An existing member gets the source's withdrawals. After an upsert, whatever the look-up
      showed: updating a member re-activates it (platforms.md 5.4), so a channel it had
      unsubscribed may be active again. Only a channel that has no address on either side
      (none sent, none on the member as found) is left alone, as a created member's is.
    * Without an upsert (a withdrawal alone), a channel Heyloyalty already shows unsubscribed
      is not written again, unless another is: then the PATCH also carries what the member
      shows unsubscribed, as the PATCH re-activates it.
    """
    if created:
        return {
            c: "unsubscribed"
            for c in ("email", "mobile")
            if not _empty(member.get(c)) and consent.get(c) != "active"
        }
    denied = [c for c, value in consent.items() if value == "unsubscribed"]
    if upserted:
        had = found.fields() if found is not None else None
        return {
            c: "unsubscribed"
            for c in denied
            if had is None or not (_empty(member.get(c)) and _empty(had.get(c)))
        }
    current = found.status if found is not None else None
    new = {
        c: "unsubscribed"
        for c in denied
        if current is None or getattr(current, c) != "unsubscribed"
    }
    if not new or current is None:
        return new
    # A PATCH of an unsubscribed member re-activates it too (platforms.md 5.4): whatever it
    # shows unsubscribed is written again with the new "no", so that nothing comes back on.
    kept = {
        k: "unsubscribed"
        for k in ("status", "email", "mobile")
        if getattr(current, k) == "unsubscribed"
    }
    return {**kept, **new}


class HeyloyaltyDestination(DestinationKit[HeyloyaltyConfig]):
    platform = PLATFORM
    config_model = HeyloyaltyConfig
    OBJECTS = (MEMBERS,)
    client: HeyloyaltyClient

    def __init__(self, config: HeyloyaltyConfig | Mapping[str, Any], context: HttpContext) -> None:
        super().__init__(config, context)
        # The list (with its fields) is read once per destination, i.e. once per run.
        self._list: HlList | None = None
        self._list_lock = asyncio.Lock()
        # Order ids the tracking import acknowledged in this run: a write retried by the
        # engine (a later batch failed, a batch split) must not import them again.
        self._tracked: set[str] = set()

    def open_client(self, config: HeyloyaltyConfig, context: HttpContext) -> HeyloyaltyClient:
        return HeyloyaltyClient(config, context)

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        """Pure: see :func:`mapping.prepare_members`. Raises RecordRejected."""
        opts = self.object_options(obj, options, MembersOptions)
        return prepare_members(record, opts, self.config.default_region)

    async def write(self, obj: str, changes: list[Change], options: ObjectOptions) -> list[Outcome]:
        opts = self.object_options(obj, options, MembersOptions)
        outcomes: list[Outcome] = []
        members: list[Change] = []
        purchases: list[Change] = []
        for change in changes:
            if change.fields.get(MEMBER):
                members.append(change)
            elif change.fields.get(PURCHASE):
                purchases.append(change)
            else:
                outcomes.append(
                    Outcome(
                        change.key,
                        ok=True,
                        dest_ids=dict(change.dest_ids),
                        skipped=self._nothing_to_write(change),
                    )
                )
        # Members first: the purchase events of this batch then find their member.
        outcomes += await self._write_members(members, opts)
        outcomes += await self._write_purchases(purchases, opts)
        return outcomes

    @staticmethod
    def _nothing_to_write(change: Change) -> str:
        if change.record.kind == "booking":
            return "order cancelled before it was tracked; no purchase event"
        return "nothing to write: the write policy let no field through"

    # -- members -------------------------------------------------------------------------

    async def _list_info(self) -> HlList:
        async with self._list_lock:  # one fetch, however many writes start at once
            if self._list is None:
                self._list = await self.client.get_list()
            return self._list

    def _refuse(self, change: Change, reason: str) -> Outcome:
        return Outcome(change.key, ok=False, dest_ids=dict(change.dest_ids), reason=reason)

    async def _write_members(self, changes: list[Change], opts: MembersOptions) -> list[Outcome]:
        if not changes:
            return []
        known = (await self._list_info()).field_names()
        region = self.config.default_region
        outcomes: list[Outcome] = []
        ready: list[tuple[Change, dict[str, Any], str, dict[str, str]]] = []
        for change in changes:
            try:
                # The identity and the consent come from the record itself: a policy that
                # withholds them must still leave Heyloyalty able to find the member, and a
                # withdrawal is written whatever the policy (DESIGN guarantee 4). The plan's
                # own preparation of it, if there was one: preparing again cost a tenth of
                # a large load's main process.
                prepared = change.prepared or self.prepare(OBJECT, change.record, opts)
                own = prepared[MEMBER]
            except RecordRejected as exc:
                outcomes.append(self._refuse(change, exc.message))
                continue
            identity, consent = own[opts.match], dict(own.get(STATUS) or {})
            # The upsert's member holds list fields only (platforms.md 5.4); the status goes
            # by PATCH after it.
            member = {k: v for k, v in change.fields[MEMBER].items() if k != STATUS}
            member[opts.match] = identity
            unknown = sorted(k for k in member if k not in known)
            if unknown:
                outcomes.append(self._refuse(change, self._unknown_fields(unknown, opts)))
                continue
            ready.append((change, member, identity, consent))
        existing: dict[str, Member] = {}
        batch = [c for c, *_ in ready]
        guard = bool(ready) and self._needs_lookup(opts, batch)
        looked_up = guard or any(c.action == "create" for c in batch)
        if looked_up:
            found = await self.client.find_members(
                opts.match,
                [i for _, _, i, _ in ready],
                lambda stored, asked: (
                    match_key(opts.match, stored, region) == match_key(opts.match, asked, region)
                ),
                # Only the guards above must never miss a member. For a first write a member
                # missed is taken for a new one: its channels the contact did not grant are
                # turned off, never on.
                fail_closed=guard,
            )
            for m in found:
                key = match_key(opts.match, m.fields().get(opts.match), region)
                if key is not None:
                    existing.setdefault(key, m)
        slots = asyncio.Semaphore(self.config.concurrency)
        locks: dict[str, asyncio.Lock] = {}

        async def one(
            change: Change, member: dict[str, Any], identity: str, consent: dict[str, str]
        ) -> Outcome:
            key = match_key(opts.match, identity, region) or identity
            # Same identity: one after the other, and without holding a slot while waiting.
            async with locks.setdefault(key, asyncio.Lock()), slots:
                return await self._upsert_one(
                    change, member, consent, key, existing, opts, looked_up=looked_up
                )

        outcomes += await gather_or_cancel([one(*item) for item in ready])
        return outcomes

    @staticmethod
    def _needs_lookup(opts: MembersOptions, changes: list[Change]) -> bool:
        return (
            opts.import_type != "create_update"
            or not opts.resubscribe_unsubscribed
            or any(f.startswith(MEMBER + ".") for c in changes for f in c.if_empty)
        )

    def _unknown_fields(self, unknown: list[str], opts: MembersOptions) -> str:
        paths = opts.mapping.member_fields()
        named = ", ".join(f"{f!r} (from {paths[f]!r})" if f in paths else repr(f) for f in unknown)
        return (
            f"list {self.config.list_id} has no field {named}: add the field to the list in "
            "Heyloyalty or remove it from mapping.fields"
        )

    async def _upsert_one(
        self,
        change: Change,
        member: dict[str, Any],
        consent: dict[str, str],
        key: str,
        existing: dict[str, Member],
        opts: MembersOptions,
        *,
        looked_up: bool = False,
    ) -> Outcome:
        found = existing.get(key)
        ids = dict(change.dest_ids)
        if (
            change.action == "update"
            and ids.get("member")
            and set(change.fields[MEMBER]) <= {STATUS}
        ):
            # Only a withdrawal got through the write policy: no upsert (it would re-activate
            # the member's other channels), just the status.
            return await self._withdraw(change, consent, found, ids)
        if found is not None:
            ids["member"] = found.id
        if found is not None and opts.import_type == "create":
            return await self._left_alone(
                change, consent, found, ids, "exists; import type is create only"
            )
        if found is None and opts.import_type == "update":
            return Outcome(
                change.key,
                ok=True,
                dest_ids=ids,
                skipped="not on the list; import type is update only",
            )
        if (
            found is not None
            and not opts.resubscribe_unsubscribed
            and found.unsubscribed(opts.match)
        ):
            return await self._left_alone(
                change, consent, found, ids, "unsubscribed; not re-subscribed"
            )
        keep_if_empty = {
            f.removeprefix(MEMBER + ".") for f in change.if_empty if f.startswith(MEMBER + ".")
        }
        if found is not None and keep_if_empty:
            current = found.fields()
            member = {
                k: v
                for k, v in member.items()
                if k not in keep_if_empty or k == opts.match or _empty(current.get(k))
            }
        try:
            result = await self.client.upsert_member(
                opts.match,
                member,
                skip_optin=not opts.send_optin,
                trigger_automations=opts.trigger_automations,
                send_webhooks=opts.send_webhooks,
            )
        except RecordRejected as exc:
            return self._refuse(
                change, f"POST /lists/{self.config.list_id}/members/upsert refused: {exc.message}"
            )
        ids["member"] = result.member_id
        # Not on the list before this write: created by it, or by an attempt of it whose
        # answer was lost (then the retry's upsert says "update"). Either way a new member,
        # so the channels the contact did not grant are turned off as for any new member.
        # (Records written for the first time are always looked up first, see
        # _write_members.)
        created = result.type == "create" or (looked_up and found is None)
        withdrawn = _status_to_write(consent, member, created=created, found=found)
        if withdrawn:
            try:
                await self.client.set_member_status(result.member_id, withdrawn)
            except RecordRejected as exc:
                # Retried as a whole next run: the upsert again (idempotent), then the status.
                return self._refuse(
                    change,
                    f"PATCH /lists/{self.config.list_id}/members/{result.member_id} "
                    f"status {withdrawn} refused: {exc.message}",
                )
        # Later changes for the same identity in this batch now see the member, with the
        # addresses it has now.
        status = MemberStatus(status="active", **withdrawn)
        now = {**(found.fields() if found is not None else {}), **member}
        fields = {k: v for k, v in now.items() if k not in MEMBER_META}
        existing[key] = Member(id=result.member_id, status=status, **fields)
        return Outcome(change.key, ok=True, dest_ids=ids)

    async def _left_alone(
        self,
        change: Change,
        consent: dict[str, str],
        found: Member,
        ids: dict[str, str],
        reason: str,
    ) -> Outcome:
        """A member the sync may not update (no upsert): a "no" of the source is still
        written, as a status change alone (DESIGN guarantee 4). Before, a member unsubscribed
        from e-mail on Heyloyalty kept an SMS subscription the contact had since withdrawn."""
        outcome = await self._withdraw(change, consent, found, ids)
        if not outcome.ok or outcome.skipped:
            return outcome
        return Outcome(change.key, ok=True, dest_ids=ids, skipped=reason)

    async def _withdraw(
        self, change: Change, consent: dict[str, str], found: Member | None, ids: dict[str, str]
    ) -> Outcome:
        withdrawn = _status_to_write(consent, {}, created=False, found=found, upserted=False)
        if not withdrawn:
            return Outcome(change.key, ok=True, dest_ids=ids)
        try:
            await self.client.set_member_status(ids["member"], withdrawn)
        except FatalError as exc:
            if exc.status != 404:
                raise
            # Deleted (or anonymised) in Heyloyalty: there is nobody left to unsubscribe.
            return Outcome(
                change.key, ok=True, dest_ids=ids, skipped="member no longer on the list"
            )
        except RecordRejected as exc:
            return self._refuse(
                change,
                f"PATCH /lists/{self.config.list_id}/members/{ids['member']} "
                f"status {withdrawn} refused: {exc.message}",
            )
        return Outcome(change.key, ok=True, dest_ids=ids)

    # -- purchases -----------------------------------------------------------------------

    async def _write_purchases(self, changes: list[Change], opts: MembersOptions) -> list[Outcome]:
        if not changes:
            return []
        tracking_id = self.config.tracking_id
        if not tracking_id:
            reason = (
                "no tracking_id on the connection: purchases are imported through a "
                "Heycommerce tracking integration; set its id and retry"
            )
            return [self._refuse(c, reason) for c in changes]
        outcomes: list[Outcome] = []
        pending: dict[str, list[Change]] = {}
        for change in changes:
            order_id = str(change.fields[PURCHASE].get("order_id") or change.key)
            ids = {**change.dest_ids, PURCHASE: order_id}
            if change.action == "update":
                # Purchase events are creates only; an update means it was tracked before.
                outcomes.append(
                    Outcome(
                        change.key,
                        ok=True,
                        dest_ids=ids,
                        skipped="purchase already tracked; never re-sent",
                    )
                )
            elif order_id in self._tracked:
                outcomes.append(Outcome(change.key, ok=True, dest_ids=ids))
            else:
                pending.setdefault(order_id, []).append(change)
        orders = list(pending.items())
        size = self.config.tracking_batch_size
        for start in range(0, len(orders), size):
            refused = await self._import(tracking_id, orders[start : start + size], opts)
            for order_id, group in orders[start : start + size]:
                problem = refused.get(order_id)
                for change in group:
                    if problem is None:
                        outcomes.append(
                            Outcome(
                                change.key,
                                ok=True,
                                dest_ids={**change.dest_ids, PURCHASE: order_id},
                            )
                        )
                    else:
                        outcomes.append(self._refuse(change, problem))
        return outcomes

    async def _import(
        self, tracking_id: str, orders: list[tuple[str, list[Change]]], opts: MembersOptions
    ) -> dict[str, str]:
        """Import ``orders``; returns the refused ones with their reason.

        A 422 refuses the whole call, so the batch is halved until the bad orders stand alone;
        the halves that are accepted are not sent again.
        """
        rows = [row for _, group in orders for row in tracking_rows(group[0].fields[PURCHASE])]
        try:
            await self.client.import_transactions(tracking_id, rows, errors_to=opts.errors_to)
        except AuthError:
            raise
        except FatalError as exc:
            # Not found or not allowed at the tracking host (a wrong tracking_id or URL): the
            # purchases wait as dead letters; the members of this batch are written all the
            # same, instead of the whole run stopping.
            reason = (
                f"tracking import at {self.config.tracking_base_url} refused the call "
                f"(HTTP {exc.status}: {exc.message.strip() or 'no reason given'}): check "
                "tracking_id and tracking_base_url"
            )
            return {order_id: reason for order_id, _ in orders}
        except RecordRejected as exc:
            if len(orders) == 1:
                return {
                    orders[0][0]: f"tracking import refused order {orders[0][0]}: {exc.message}"
                }
            mid = len(orders) // 2
            return {
                **await self._import(tracking_id, orders[:mid], opts),
                **await self._import(tracking_id, orders[mid:], opts),
            }
        self._tracked.update(order_id for order_id, _ in orders)
        return {}

    # -- checks --------------------------------------------------------------------------

    async def check(self) -> list[CheckResult]:
        """Signature accepted, list readable, default mapping's fields on the list, tracking
        integration configured. Nothing is written."""
        return await self.check_options(MembersOptions())

    async def check_options(self, options: ObjectOptions) -> list[CheckResult]:
        """As :meth:`check`, for the mapping of one sync's options."""
        opts = coerce_options(options, MembersOptions)
        list_name = f"list {self.config.list_id}"
        try:
            await self.client.lists()
        except AuthError as exc:
            return [
                CheckResult(
                    "signature",
                    False,
                    f"Heyloyalty refused the API key or signature (HTTP "
                    f"{exc.status}): check api_key and api_secret",
                ),
                CheckResult("list", False, "not checked: signature refused"),
            ]
        except ConnectorError as exc:
            # Not a signature problem: the API did not answer as Heyloyalty (a wrong base_url
            # gives 404 here).
            status = f" (HTTP {exc.status})" if exc.status is not None else ""
            detail = f"GET /lists failed{status}: {exc.message}; check base_url"
            return [CheckResult("api", False, detail)]
        results = [CheckResult("signature", True, "accepted")]
        try:
            found = await self.client.get_list()
        except ConnectorError as exc:
            return [*results, CheckResult("list", False, f"{list_name}: {exc.message}")]
        self._list = found
        results.append(CheckResult("list", True, f"{list_name} ({found.name or 'unnamed'})"))
        known = found.field_names()
        wanted = sorted(f for f in opts.mapping.member_fields() if f != STATUS)
        missing = [f for f in wanted if f not in known]
        results.append(
            CheckResult(
                "fields",
                not missing,
                f"missing on {list_name}: {', '.join(missing)}"
                if missing
                else f"all {len(wanted)} mapped fields exist: {', '.join(wanted)}",
            )
        )
        results.append(
            CheckResult(
                "tracking",
                bool(self.config.tracking_id),
                f"tracking integration {self.config.tracking_id}"
                if self.config.tracking_id
                else "no tracking_id: purchase events cannot be imported",
            )
        )
        return results
