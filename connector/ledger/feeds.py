"""Feeds in the ledger: bulk shipment confirmations and the packages each one carries.

The exactly-once rule: a package is never in a feed and a single confirmation at once. Claiming
packages for a feed is ONE transaction that moves each package (and its order) LABELED ->
CONFIRMING -- the claim confirmShipment takes too (``engine/confirm.py``) -- and records its
membership, so the single-confirmation path finds it claimed, and a package the single path
claimed is no longer LABELED for a feed. While the feed is open (:meth:`FeedStore.in_open_feed`)
the single path leaves the package alone; :meth:`FeedStore.settle_feed` ends the membership,
moving every package on in the same transaction as the feed's result.

A feed row moves CLAIMED -> UPLOADED (document uploaded; ``attempts`` counts uploads) ->
SUBMITTED (``feed_id`` stored) -> DONE or FAILED. Mixed into the SQL ledger stores; uses their
``_conn``/``_write``/``_now`` and transition helpers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..holds import parse_hold_reason
from ..model import Order
from .base import OrderState, Package, PackageState
from .timestamps import from_text as _dt
from .timestamps import to_text as _ts

UNSUBMITTED_FEED_STATES = ("CLAIMED", "UPLOADED")  # no Amazon feed id yet
OPEN_FEED_STATES = (*UNSUBMITTED_FEED_STATES, "SUBMITTED")
# what a settled package became: accepted (CONFIRMED), unknown (CONFIRMED, read back to decide),
# rejected (LABELED, order held), retry (LABELED, order due again), skipped (moved by someone else)
RESULTS = ("accepted", "unknown", "rejected", "retry", "skipped")
# an order in one of these must not be confirmed by a feed that is still to be (re)submitted
_NOT_TO_SEND = {OrderState.HELD.value, OrderState.VOIDED.value, OrderState.CANCELLED.value}
_UNHOLDABLE = {OrderState.CANCELLED.value, OrderState.VERIFIED.value, OrderState.VOIDED.value}


def _cancel_requested(order_data: str) -> bool:
    """Whether the order's stored data says the buyer asked to cancel (a feed never carries such
    an order: the single path holds it, or confirms it once an operator released it)."""
    try:
        return bool(json.loads(order_data).get("buyer_cancel_requested"))
    except (ValueError, TypeError, AttributeError):
        return False  # unreadable: building the document says so


@dataclass(frozen=True)
class FeedRecord:
    id: int
    account: str
    feed_type: str
    marketplace_ids: tuple[str, ...]
    state: str
    feed_document_id: str
    feed_id: str
    processing_status: str
    attempts: int
    created_at: datetime
    uploaded_at: datetime | None
    submitted_at: datetime | None
    checked_at: datetime | None
    done_at: datetime | None
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    summary: str


@dataclass(frozen=True)
class FeedMember:
    package_id: int
    first_row: int
    last_row: int
    result: str
    error: str


@dataclass(frozen=True)
class FeedOutcome:
    """How :meth:`FeedStore.settle_feed` moves one member package on."""

    package_id: int
    result: str  # one of RESULTS but "skipped"
    error: str = ""
    hold_reason: str = ""  # with result "rejected": the order is held with this reason
    hold_message: str = ""


def _feed(row: Any) -> FeedRecord:
    return FeedRecord(
        id=int(row["id"]),
        account=row["account"],
        feed_type=row["feed_type"],
        marketplace_ids=tuple(json.loads(row["marketplace_ids"])),
        state=row["state"],
        feed_document_id=row["feed_document_id"],
        feed_id=row["feed_id"],
        processing_status=row["processing_status"],
        attempts=int(row["attempts"]),
        created_at=_dt(row["created_at"]),
        uploaded_at=_dt(row["uploaded_at"]),
        submitted_at=_dt(row["submitted_at"]),
        checked_at=_dt(row["checked_at"]),
        done_at=_dt(row["done_at"]),
        rows_total=int(row["rows_total"]),
        rows_accepted=int(row["rows_accepted"]),
        rows_rejected=int(row["rows_rejected"]),
        summary=row["summary"],
    )


class FeedStore:
    """claim / track / settle the feeds of bulk shipment confirmation (see the module docstring)."""

    def claim_feed(
        self,
        account: str,
        feed_type: str,
        marketplace_ids: Sequence[str],
        packages: Sequence[tuple[Package, int]],
        *,
        shipped_at: datetime,
        members_rest: timedelta | None = None,
    ) -> tuple[int, list[FeedMember]]:
        """Claim ``packages`` ((package, number of document rows it needs), in document order) for a
        new feed, in one transaction: each package still LABELED whose order is LABELED moves to
        CONFIRMING (its ship date kept, or set to ``shipped_at``; a confirmation attempt counted) and
        becomes a member. With ``members_rest``, the members' orders are due only that long after
        the claim (the feed's end makes them due). Returns (feed row id, members); (0, []) when none
        could be claimed."""
        if not packages:
            return 0, []
        with self._write() as conn:
            at = self._clock()
            now = _ts(at)
            rest_until = _ts(at + members_rest) if members_rest else None
            feed_row = conn.execute(
                "INSERT INTO feeds (account, feed_type, marketplace_ids, state, created_at)"
                " VALUES (?, ?, ?, 'CLAIMED', ?) RETURNING id",
                (account, feed_type, json.dumps(list(marketplace_ids)), now),
            ).fetchone()
            feed_row_id = int(feed_row[0])
            members: list[FeedMember] = []
            row = 1
            for package, rows in packages:
                if rows < 1:
                    raise ValueError(
                        f"package {package.package_ref} of order {package.order_id}: no feed rows"
                    )
                order = conn.execute(
                    "SELECT state FROM orders WHERE order_id = ?", (package.order_id,)
                ).fetchone()
                if order is None or order["state"] != OrderState.LABELED.value:
                    continue
                cur = conn.execute(
                    "UPDATE packages SET state = ?, shipped_at = COALESCE(shipped_at, ?),"
                    " confirm_attempts = confirm_attempts + 1, updated_at = ? WHERE id = ? AND state = ?",
                    (
                        PackageState.CONFIRMING.value,
                        _ts(shipped_at),
                        now,
                        package.id,
                        PackageState.LABELED.value,
                    ),
                )
                if cur.rowcount != 1:
                    continue  # the single path (or another worker) has it
                self._transition(
                    conn,
                    package.order_id,
                    package.id,
                    now,
                    PackageState.LABELED.value,
                    PackageState.CONFIRMING.value,
                    f"package {package.package_ref}; claimed for feed {feed_row_id}",
                )
                self._move_order_with_package(
                    conn, package.order_id, package.package_ref, OrderState.CONFIRMING, now, rest_until
                )
                conn.execute(
                    "INSERT INTO feed_packages (feed_row_id, package_id, first_row, last_row)"
                    " VALUES (?, ?, ?, ?)",
                    (feed_row_id, package.id, row, row + rows - 1),
                )
                members.append(FeedMember(package.id, row, row + rows - 1, "", ""))
                row += rows
            if not members:
                conn.execute("DELETE FROM feeds WHERE id = ?", (feed_row_id,))
                return 0, []
            conn.execute("UPDATE feeds SET rows_total = ? WHERE id = ?", (row - 1, feed_row_id))
        return feed_row_id, members

    def leave_out_of_feed(self, feed_row_id: int, *, result: str) -> dict[str, int]:
        """Before a feed not yet submitted is (re)submitted: every member whose package is no longer
        CONFIRMING (``skipped``) or whose order was held, voided or cancelled, or whose buyer asked
        to cancel, since the claim (its package moved on by ``result``, as :meth:`settle_feed`
        would; back to LABELED, the single path holds it for the request) leaves the feed, and the
        rows of the others are numbered again; with none left the feed is FAILED. One transaction;
        returns the count per result (empty: nobody left, or the feed was submitted)."""
        counts: dict[str, int] = {}
        with self._write() as conn:
            now = self._now()
            feed = conn.execute("SELECT state FROM feeds WHERE id = ?", (feed_row_id,)).fetchone()
            if feed is None or feed["state"] not in UNSUBMITTED_FEED_STATES:
                return {}
            members = conn.execute(
                "SELECT fp.package_id, fp.first_row, fp.last_row, p.state AS package_state,"
                " o.state AS order_state, o.data AS order_data"
                " FROM feed_packages fp JOIN packages p ON p.id = fp.package_id"
                " JOIN orders o ON o.order_id = p.order_id WHERE fp.feed_row_id = ? AND fp.result = ''"
                " ORDER BY fp.first_row",
                (feed_row_id,),
            ).fetchall()
            row = 1
            for member in members:
                package_id, rows = int(member["package_id"]), member["last_row"] - member["first_row"] + 1
                cancel_requested = _cancel_requested(member["order_data"])
                if member["package_state"] == PackageState.CONFIRMING.value and (
                    member["order_state"] not in _NOT_TO_SEND
                ) and not cancel_requested:
                    if member["first_row"] != row:
                        conn.execute(
                            "UPDATE feed_packages SET first_row = ?, last_row = ?"
                            " WHERE feed_row_id = ? AND package_id = ?",
                            (row, row + rows - 1, feed_row_id, package_id),
                        )
                    row += rows
                    continue
                error = (f"left out of feed {feed_row_id} before it was submitted: the order is "
                         f"{member['order_state']}, the package {member['package_state']}"
                         + (", the buyer asked to cancel" if cancel_requested else ""))
                outcome = FeedOutcome(package_id, result, error)
                settled = self._settle_package(conn, feed_row_id, outcome, now, None)
                counts[settled] = counts.get(settled, 0) + 1
                conn.execute(
                    "UPDATE feed_packages SET result = ?, error = ? WHERE feed_row_id = ? AND package_id = ?",
                    (settled, error, feed_row_id, package_id),
                )
            if counts and row == 1:
                conn.execute(
                    "UPDATE feeds SET state = 'FAILED', rows_total = 0, done_at = ?, summary = ?"
                    " WHERE id = ?",
                    (now, "every package left the feed before it was submitted", feed_row_id),
                )
            elif counts:
                conn.execute("UPDATE feeds SET rows_total = ? WHERE id = ?", (row - 1, feed_row_id))
        return counts

    def feed_backlogs(self, states: Sequence[OrderState]) -> dict[str, int]:
        """How many orders each account has in ``states`` (accounts with none left out): one read
        for every account, where :meth:`feed_backlog` reads one."""
        marks = ", ".join("?" for _ in states)
        rows = self._conn().execute(
            f"SELECT account, COUNT(*) AS n FROM orders WHERE state IN ({marks}) GROUP BY account",
            tuple(OrderState(s).value for s in states)).fetchall()
        return {row["account"]: int(row["n"]) for row in rows}

    def feed_backlog(self, account: str, states: Sequence[OrderState]) -> tuple[int, datetime | None]:
        """How many of the account's orders are in ``states``, and the earliest ship-by among them."""
        marks = ", ".join("?" for _ in states)
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) AS n, MIN(ship_by) AS first FROM orders"
                f" WHERE account = ? AND state IN ({marks})",
                (account, *(OrderState(s).value for s in states)),
            )
            .fetchone()
        )
        return int(row["n"]), (_dt(row["first"]) if row["first"] else None)

    def park_for_feed(self, order_id: str, until: datetime) -> None:
        """Make a LABELED order (a feed will claim it) or a CONFIRMING one (a feed in flight holds
        it: its report settles it) due only at ``until``, without counting a failed attempt as
        ``defer`` does. The next state change clears it."""
        with self._write(order_id) as conn:
            conn.execute("UPDATE orders SET next_attempt_at = ? WHERE order_id = ? AND state IN (?, ?)",
                         (_ts(until), order_id, OrderState.LABELED.value, OrderState.CONFIRMING.value))

    def labeled_for_feed(
        self, account: str, *, limit: int, due_before: datetime | None = None
    ) -> list[tuple[Order, Package]]:
        """The account's LABELED packages of LABELED orders (due by ``due_before`` when given),
        earliest ship-by first, with their orders (without the buyer's address: a feed does not
        need it). One whose order or package cannot be read is passed over, named in a warning (the
        order is held ledger_inconsistent when driven); the others go in."""
        due = " AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?)" if due_before else ""
        rows = (
            self._conn()
            .execute(
                "SELECT p.*, o.data AS order_data FROM packages p JOIN orders o ON o.order_id = p.order_id"
                " WHERE o.account = ? AND o.state = ? AND p.state = ?" + due
                + " ORDER BY (o.ship_by IS NULL), o.ship_by, o.order_id, p.id LIMIT ?",
                (account, OrderState.LABELED.value, PackageState.LABELED.value,
                 *((_ts(due_before),) if due_before else ()), limit),
            )
            .fetchall()
        )
        return self._read_rows(rows, self._order_and_package)

    def _order_and_package(self, row: Any) -> tuple[Order, Package]:
        return self._order(row["order_id"], row["order_data"]), self._package(row)

    def feed_uploaded(self, feed_row_id: int, feed_document_id: str) -> None:
        """The document is uploaded (again): UPLOADED, one more attempt, no feed id yet."""
        self._feed_update(
            feed_row_id,
            UNSUBMITTED_FEED_STATES,
            "UPLOADED",
            "feed_document_id = ?, feed_id = '', uploaded_at = ?, attempts = attempts + 1",
            lambda now: (feed_document_id, now),
        )

    def feed_submitted(self, feed_row_id: int, feed_id: str) -> None:
        """createFeed answered: SUBMITTED with Amazon's feed id."""
        self._feed_update(
            feed_row_id,
            ("UPLOADED",),
            "SUBMITTED",
            "feed_id = ?, submitted_at = ?",
            lambda now: (feed_id, now),
        )

    def feed_checked(self, feed_row_id: int, processing_status: str) -> None:
        """What getFeed said last (the state stays SUBMITTED until the feed is settled)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE feeds SET processing_status = ?, checked_at = ? WHERE id = ?",
                (processing_status, self._now(), feed_row_id),
            )

    def _feed_update(
        self, feed_row_id: int, expect: Sequence[str], new: str, assignments: str, values: Any
    ) -> None:
        from .base import StaleStateError

        with self._write() as conn:
            now = self._now()
            marks = ", ".join("?" for _ in expect)
            cur = conn.execute(
                f"UPDATE feeds SET state = ?, {assignments} WHERE id = ? AND state IN ({marks})",
                (new, *values(now), feed_row_id, *expect),
            )
            if cur.rowcount != 1:
                raise StaleStateError(f"feed {feed_row_id} is not {' or '.join(expect)}")

    def get_feed_record(self, feed_row_id: int) -> FeedRecord | None:
        row = self._conn().execute("SELECT * FROM feeds WHERE id = ?", (feed_row_id,)).fetchone()
        return _feed(row) if row is not None else None

    def feeds(self, account: str | None = None, *, open_only: bool = False) -> list[FeedRecord]:
        """Feed rows, oldest first; only those still in flight with ``open_only``."""
        sql, args = "SELECT * FROM feeds WHERE 1 = 1", []
        if account is not None:
            sql += " AND account = ?"
            args.append(account)
        if open_only:
            sql += f" AND state IN ({', '.join('?' for _ in OPEN_FEED_STATES)})"
            args.extend(OPEN_FEED_STATES)
        rows = self._conn().execute(sql + " ORDER BY id", args).fetchall()
        return [_feed(r) for r in rows]

    def feed_members(self, feed_row_id: int) -> list[FeedMember]:
        rows = (
            self._conn()
            .execute("SELECT * FROM feed_packages WHERE feed_row_id = ? ORDER BY first_row", (feed_row_id,))
            .fetchall()
        )
        return [
            FeedMember(int(r["package_id"]), int(r["first_row"]), int(r["last_row"]), r["result"], r["error"])
            for r in rows
        ]

    def in_open_feed(self, package_id: int) -> bool:
        """Whether a feed still in flight holds this package's claim."""
        return self.open_feed_of(package_id) is not None

    def open_feed_of(self, package_id: int, states: Sequence[str] = OPEN_FEED_STATES) -> int | None:
        """The row id of the feed in ``states`` that holds this package's claim, if one does."""
        marks = ", ".join("?" for _ in states)
        row = (
            self._conn()
            .execute(
                "SELECT fp.feed_row_id FROM feed_packages fp JOIN feeds f ON f.id = fp.feed_row_id"
                f" WHERE fp.package_id = ? AND fp.result = '' AND f.state IN ({marks}) LIMIT 1",
                (package_id, *states),
            )
            .fetchone()
        )
        return int(row[0]) if row is not None else None

    def confirmed_by_feed(self, package_id: int, *, accepted_only: bool = False) -> datetime | None:
        """When a feed confirmed this package (or may have: its line accepted or in doubt), None if
        none did. Amazon numbers such a package itself, so only its tracking number identifies it
        when the order is read back. ``accepted_only``: a line Amazon's report accepted, not one in
        doubt (a FATAL feed, one given up: maybe never applied)."""
        results = "('accepted')" if accepted_only else "('accepted', 'unknown')"
        row = (
            self._conn()
            .execute(
                "SELECT COALESCE(f.done_at, f.submitted_at, f.created_at) FROM feed_packages fp"
                " JOIN feeds f ON f.id = fp.feed_row_id"
                f" WHERE fp.package_id = ? AND fp.result IN {results}"
                " ORDER BY f.id DESC LIMIT 1",
                (package_id,),
            )
            .fetchone()
        )
        return _dt(row[0]) if row is not None else None

    def settle_feed(
        self,
        feed_row_id: int,
        outcomes: Sequence[FeedOutcome],
        *,
        state: str = "DONE",
        processing_status: str = "",
        summary: str = "",
        confirmed_rests_for: timedelta | None = None,
    ) -> dict[str, int]:
        """End a feed in one transaction: every member package still CONFIRMING moves on by its
        outcome (accepted/unknown -> CONFIRMED; rejected -> LABELED and its order HELD; retry ->
        LABELED), a member someone else moved meanwhile is ``skipped``, and the feed becomes
        ``state`` (DONE or FAILED). Returns the count per result. A feed settled already is left
        as it is (empty counts). ``confirmed_rests_for``: a CONFIRMED package's order is not due
        again until then (as :meth:`advance`'s ``order_rests_for``: the verify grace)."""
        if state not in ("DONE", "FAILED"):
            raise ValueError(f"feed {feed_row_id}: settle to DONE or FAILED, not {state!r}")
        by_package = {o.package_id: o for o in outcomes}
        unknown = [o.result for o in outcomes if o.result not in RESULTS[:4]]
        if unknown:
            raise ValueError(f"feed {feed_row_id}: unknown result(s) {', '.join(sorted(set(unknown)))}")
        counts: dict[str, int] = {}
        with self._write() as conn:
            at = self._clock()
            now = _ts(at)
            rests_until = _ts(at + confirmed_rests_for) if confirmed_rests_for else None
            feed = conn.execute("SELECT state FROM feeds WHERE id = ?", (feed_row_id,)).fetchone()
            if feed is None:
                raise KeyError(f"unknown feed {feed_row_id}")
            if feed["state"] not in OPEN_FEED_STATES:
                return {}
            members = conn.execute(
                "SELECT package_id FROM feed_packages WHERE feed_row_id = ? AND result = ''", (feed_row_id,)
            ).fetchall()
            for member in members:
                package_id = int(member["package_id"])
                outcome = by_package.get(package_id) or FeedOutcome(package_id, "unknown", "no result for it")
                result = self._settle_package(conn, feed_row_id, outcome, now, rests_until)
                counts[result] = counts.get(result, 0) + 1
                conn.execute(
                    "UPDATE feed_packages SET result = ?, error = ? WHERE feed_row_id = ? AND package_id = ?",
                    (result, outcome.error[:500], feed_row_id, package_id),
                )
            conn.execute(
                "UPDATE feeds SET state = ?, processing_status = ?, done_at = ?, rows_accepted = ?,"
                " rows_rejected = ?, summary = ? WHERE id = ?",
                (
                    state,
                    processing_status,
                    now,
                    counts.get("accepted", 0),
                    counts.get("rejected", 0),
                    summary[:1000],
                    feed_row_id,
                ),
            )
        return counts

    def _settle_package(self, conn: Any, feed_row_id: int, outcome: FeedOutcome, now: str,
                        rests_until: str | None) -> str:
        row = conn.execute(
            "SELECT order_id, package_ref, state FROM packages WHERE id = ?", (outcome.package_id,)
        ).fetchone()
        if row is None or row["state"] != PackageState.CONFIRMING.value:
            if row is not None and row["state"] == PackageState.VOIDING.value and outcome.result in (
                    "accepted", "unknown"):
                # Its void is under way, and Amazon may show its line: kept, so that a void the
                # carrier refuses reads the package back by its tracking number (confirmed_by_feed)
                # instead of confirming it again.
                return outcome.result
            return "skipped"  # voided (Amazon cancelled the order) or moved by a person meanwhile
        order_id, ref = row["order_id"], row["package_ref"]
        confirmed = outcome.result in ("accepted", "unknown")
        new = PackageState.CONFIRMED if confirmed else PackageState.LABELED
        if confirmed:
            conn.execute(
                "UPDATE packages SET state = ?, confirmed_at = ?, error = ?, updated_at = ? WHERE id = ?",
                (
                    new.value,
                    now,
                    "" if outcome.result == "accepted" else outcome.error[:500],
                    now,
                    outcome.package_id,
                ),
            )
        else:
            conn.execute(
                "UPDATE packages SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                (new.value, outcome.error[:500], now, outcome.package_id),
            )
        self._transition(
            conn,
            order_id,
            outcome.package_id,
            now,
            PackageState.CONFIRMING.value,
            new.value,
            f"package {ref}; feed {feed_row_id}: {outcome.result}",
        )
        self._move_order_with_package(
            conn, order_id, ref, OrderState.CONFIRMED if confirmed else OrderState.LABELED, now,
            rests_until if confirmed else None,
        )
        if outcome.result == "rejected" and outcome.hold_reason:
            self._hold_in(conn, order_id, outcome.hold_reason, outcome.hold_message, now)
        return outcome.result

    def _hold_in(self, conn: Any, order_id: str, reason: str, message: str, now: str) -> None:
        """Hold the order inside the caller's transaction (what ``hold`` does in its own). An order
        held already keeps its hold (an operator's, say: a release for this reason must not end
        it); its message gains this one."""
        reason = parse_hold_reason(reason).value
        row = self._order_row(conn, order_id, "state, hold_message")
        state = row["state"]
        if state in _UNHOLDABLE:
            return
        if state == OrderState.HELD.value:
            note = f"{reason}: {message}" if message else reason
            conn.execute(
                "UPDATE orders SET hold_message = ?, updated_at = ? WHERE order_id = ?",
                (f"{row['hold_message']}; {note}" if row["hold_message"] else note, now, order_id),
            )
            self._transition(conn, order_id, None, now, state, state, f"while held: {note}")
            return
        conn.execute(
            "UPDATE orders SET state = ?, hold_reason = ?, hold_message = ?, held_from = ?,"
            " attempts = 0, next_attempt_at = NULL, updated_at = ? WHERE order_id = ?",
            (OrderState.HELD.value, reason, message, state, now, order_id),
        )
        self._transition(
            conn,
            order_id,
            None,
            now,
            state,
            OrderState.HELD.value,
            f"{reason}: {message}" if message else reason,
        )
