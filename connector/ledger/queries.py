"""Order and package listings, counts and selections, in SQL: cost bounded by what is asked for.

Mixed into the SQL ledger stores; uses their ``_conn``, ``_record``, ``_package``, ``_read_rows``
and ``_page`` (a row whose JSON cannot be read is passed over, the page filled past it). Pages are
keyset pages: orders by ``(created_at, order_id)``, packages by ``id`` -- a row written while a
client walks the pages neither shifts nor repeats the rows it has yet to see. Listings never
decrypt buyer data (``with_pii=False``, the default, builds records whose ``ship_to`` is None);
counts are aggregates and the light rows (:class:`OrderLine`, :class:`OrderKey`) read columns
only, never an order's JSON, so a ledger of 100,000 finished orders costs the CLI, the status
page, the end-of-pass summary and the hourly purge no more than the orders they show or act on.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from ..model import FulfillmentStatus, TrackingStatus, iso, parse_iso
from .base import BOUGHT_PACKAGE_STATES, OrderRecord, OrderState, Package, PackageState
from .stored import stored_json
from .timestamps import from_text as _dt
from .timestamps import to_text as _ts

# The columns SqliteLedger._record reads; ``pii`` is added as NULL unless buyer data is wanted.
_ORDER_COLUMNS = ("order_id, data, state, hold_reason, hold_message, held_from, attempts, next_attempt_at,"
                  " pii_purged_at, updated_at, waived, created_at, pii IS NOT NULL AS address_on_file")
_SQL_CHUNK = 500  # bound parameters per IN (...) list
_ORDER_STATES = {s.value: s for s in OrderState}  # a dict lookup per row, not an enum call


class OrderLine(NamedTuple):
    """One order as a listing shows it, read from columns only (no JSON, no buyer data); the
    carrier and tracking number are its newest package's ('' without one)."""
    order_id: str
    site: str
    state: OrderState
    ship_by: datetime | None
    hold_reason: str
    held_from: OrderState | None
    created_at: str  # the keyset position: (created_at, order_id) is the next page's ``after``
    carrier: str
    tracking_number: str


class LabelsBought(NamedTuple):
    """One carrier's labels bought and not voided, and how many of them still wait for their file."""
    bought: int
    awaiting_file: int


class OrderKey(NamedTuple):
    """What a scheduler needs of an order: which one, whose, and when it must ship."""
    order_id: str
    account: str
    ship_by: datetime | None


class ShippedLine(NamedTuple):
    """A shipped package as the valid-tracking rate reads it, with what it needs of its order (no
    buyer data): :meth:`OrderQueries.shipped_lines`."""
    package_id: int
    order_id: str
    site: str
    skus: tuple[str, ...]
    confirms_on_amazon: bool  # as Order.confirms_on_amazon (False: an ERP's order for another channel)
    ship_by: datetime | None
    deliver_by: datetime | None
    carrier: str
    service: str
    state: PackageState
    shipped_at: datetime
    confirmed_at: datetime | None
    first_scan_at: datetime | None
    delivered_at: datetime | None
    scans: int
    tracking_level: str  # what the order required, from the package's plan ("tracked" without one)
    min_scans: int
    failed_attempt: bool  # a FAILED_ATTEMPT scan (read only for states that may have one)
    filed_as: str | None  # Amazon's carrier name, when not the code sent (Package.filed_as)


# Package states in which a failed delivery attempt may have been scanned, and that scan's status.
_MAY_HAVE_ATTEMPTED = tuple(s.value for s in (PackageState.DELIVERY_FAILED, PackageState.RETURNING,
                                               PackageState.RETURNED, PackageState.LOST))
_FAILED_ATTEMPT = TrackingStatus.FAILED_ATTEMPT.value
_PACKAGE_STATES = {s.value: s for s in PackageState}


def _shipped_line(r: Any) -> ShippedLine | None:
    """One row of :meth:`OrderQueries.shipped_lines` as its line; None when its order's data or its
    package's plan cannot be read."""
    read = _order_and_plan(r[4], r[5])
    if read is None:
        return None
    skus, confirms, deliver_by, tracking_level, min_scans = read
    return ShippedLine(
        r[0], r[1], r[2], skus, confirms, parse_iso(r[3]) if r[3] else None, deliver_by,
        r[6], r[7], _PACKAGE_STATES[r[8]], parse_iso(r[9]), _dt(r[10]), _dt(r[11]), _dt(r[12]), r[13],
        tracking_level, min_scans, bool(r[14]), r[15] or None)


def _order_and_plan(data: str | None, plan: str | None) -> tuple[Any, ...] | None:
    """What the valid-tracking rate reads of an order's JSON and its package's plan ('' or none: no
    plan); None when either is not a JSON object or holds a field it cannot read. Read here, not in
    SQL: there one such row (a hand edit, a restore gone wrong) failed the whole page."""
    order, planned = stored_json(data), stored_json(plan, empty="{}")
    if order is None or planned is None:
        return None
    try:
        skus = tuple(item["sku"] for item in order.get("items") or ())
        deliver_by = parse_iso(order["deliver_by"]) if order.get("deliver_by") else None
        min_scans = int(planned.get("min_scans") or 1)
    except (KeyError, TypeError, ValueError):
        return None
    confirms = (order.get("channel") or "amazon") == "amazon" and order.get("confirm") not in (0, False)
    return skus, confirms, deliver_by, planned.get("tracking_level") or "tracked", min_scans


# schedule(): the columns of an OrderKey, its order (orders without a ship-by last), and "due"
_KEY_COLUMNS = "order_id, account, ship_by"
_SCHEDULE_ORDER = "CASE WHEN ship_by IS NULL THEN 1 ELSE 0 END, ship_by, order_id"
_DUE = "(next_attempt_at IS NULL OR next_attempt_at <= ?)"
# The clock of an order nobody ships (held or waiting): its ship-by (model.iso() text) and its
# arrival in the ledger (timestamps text) both at the cut-off or before. An order that arrives long
# past its ship-by (an ERP's, whose ship-by may lie a year back) came to be shipped now.
_PAST_SHIP_BY_AND_ARRIVAL = "(o.ship_by IS NULL OR o.ship_by <= ?) AND o.created_at <= ?"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _iso_ms_ceiling(dt: datetime) -> str:
    """``dt`` as model.iso() text (the form of orders.ship_by), rounded up to the millisecond, so
    ``ship_by < this`` keeps every ship-by strictly before ``dt``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    if dt.microsecond % 1000:
        try:
            dt += timedelta(microseconds=1000 - dt.microsecond % 1000)
        except OverflowError:  # the last millisecond of year 9999: no ship-by is later
            dt = dt.replace(microsecond=999_000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _values(kind: type, values: Iterable[Any] | None) -> list[str] | None:
    return None if values is None else sorted({kind(v).value for v in values})


class OrderQueries:
    """order_page / order_detail / package_page / latest_packages, and the light reads: order_lines,
    count_orders, state_site_counts, held_summary, labels_bought, schedule, soonest_ship_by,
    pii_expired."""

    def shipped_lines(self, states: Iterable[OrderState | str], *, shipped_since: datetime,
                      after_id: int | None = None, limit: int) -> tuple[list[ShippedLine], int | None]:
        """Packages shipped at or after ``shipped_since`` (the valid-tracking rate's window) whose
        order is in ``states``, as the light rows the rate reads: package columns, and of the order
        its site, dates, SKUs and channel (read out of its JSON here: a package whose order's data
        or plan is not JSON is left out, the others are read), whether a failed delivery attempt
        was scanned, and the carrier Amazon filed it under when not the code sent (``filed_as``). No
        buyer data, no per-order query.

        Walks the packages by id above ``after_id``, ``limit`` (at most 500) at a time: returns
        this page's rows and the id to pass as ``after_id`` next (None at the end). The ids are
        picked from the packages alone, so the walk costs the window, not a scan of the orders per
        page."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        wanted = _values(OrderState, states) or []
        ids = [r[0] for r in self._conn().execute(
            "SELECT id FROM packages WHERE shipped_at >= ? AND id > ? ORDER BY id LIMIT ?",
            (_ts(shipped_since), after_id or 0, min(limit, _SQL_CHUNK))).fetchall()]
        if not ids or not wanted:
            return [], None
        rows = self._conn().execute(
            "SELECT p.id, p.order_id, o.site, o.ship_by, o.data, p.plan,"
            " p.carrier, p.service, p.state, p.shipped_at, p.confirmed_at, p.first_scan_at,"
            f" p.delivered_at, p.scans, CASE WHEN p.state IN ({_marks(_MAY_HAVE_ATTEMPTED)}) THEN EXISTS"
            " (SELECT 1 FROM tracking_events e WHERE e.package_id = p.id AND e.status = ?) ELSE FALSE END,"
            " p.filed_as FROM packages p JOIN orders o ON o.order_id = p.order_id"
            f" WHERE p.id IN ({_marks(ids)}) AND o.state IN ({_marks(wanted)}) ORDER BY p.id",
            (*_MAY_HAVE_ATTEMPTED, _FAILED_ATTEMPT, *ids, *wanted)).fetchall()
        lines = [line for line in map(_shipped_line, rows) if line is not None]
        return lines, (ids[-1] if len(ids) == min(limit, _SQL_CHUNK) else None)

    def _order_select(self, with_pii: bool) -> str:
        return f"SELECT {_ORDER_COLUMNS}, {'pii' if with_pii else 'NULL AS pii'} FROM orders"

    def order_page(self, *, states: Iterable[OrderState | str] | None = None, site: str | None = None,
                   account: str | None = None, hold_reason: str | None = None,
                   ship_by_before: datetime | None = None, updated_since: datetime | None = None,
                   after: tuple[str, str] | None = None, limit: int,
                   with_pii: bool = False, attempted: bool | None = None) -> list[tuple[OrderRecord, str]]:
        """Up to ``limit`` orders matching every filter given, by (created_at, order_id), after the
        position ``after`` = (created_at text, order_id) of the last row of the previous page.

        Each row comes as (record, its created_at text: the next page's ``after``). Buyer addresses
        are not decrypted unless ``with_pii``. ``ship_by_before``: ship-by strictly before it
        (orders without one are left out); ``updated_since``: updated at or after it;
        ``attempted``: with (True) or without (False) a failed attempt since its last step. An order
        whose stored data cannot be read is passed over (named in a warning), the page filled past it."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        filters = _filters(OrderState, states, {"site": site, "account": account, "hold_reason": hold_reason},
                           updated_since)
        if filters is None:
            return []
        where, params = filters
        if attempted is not None:
            where.append("attempts > 0" if attempted else "attempts = 0")

        def fetch(position: tuple[str, str] | None, n: int) -> list[Any]:
            clauses, values = list(where), list(params)
            _page_filters(clauses, values, ship_by_before, position)
            sql = self._order_select(with_pii) + (" WHERE " + " AND ".join(clauses) if clauses else "")
            sql += " ORDER BY created_at, order_id LIMIT ?"
            return self._conn().execute(sql, (*values, n)).fetchall()

        return self._page(fetch, lambda r: (self._record(r), r["created_at"]),
                          lambda r: (r["created_at"], r["order_id"]), after, limit)

    def order_detail(self, order_id: str, *, with_pii: bool = False) -> tuple[OrderRecord, bool] | None:
        """One order and whether a buyer address is on file, decrypting it only ``with_pii``."""
        row = self._conn().execute(
            self._order_select(with_pii) + " WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        return self._record(row), bool(row["address_on_file"])

    def package_page(self, *, states: Iterable[PackageState | str] | None = None, carrier: str | None = None,
                     order_id: str | None = None, updated_since: datetime | None = None,
                     after_id: int | None = None, limit: int) -> list[Package]:
        """Up to ``limit`` packages matching every filter given, by id, with an id above ``after_id``."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        filters = _filters(PackageState, states, {"carrier": carrier, "order_id": order_id}, updated_since)
        if filters is None:
            return []
        where, params = filters
        sql = f"SELECT * FROM packages WHERE {' AND '.join([*where, 'id > ?'])} ORDER BY id LIMIT ?"

        def fetch(after: int, n: int) -> list[Any]:
            return self._conn().execute(sql, (*params, after, n)).fetchall()

        return self._page(fetch, self._package, lambda r: r["id"], int(after_id or 0), limit)

    def latest_packages(self, order_ids: Sequence[str]) -> dict[str, Package]:
        """The newest package (highest id) of each of these orders that has one."""
        ids = list(dict.fromkeys(order_ids))
        found: dict[str, Package] = {}
        for start in range(0, len(ids), _SQL_CHUNK):
            chunk = ids[start:start + _SQL_CHUNK]
            rows = self._conn().execute(
                "SELECT * FROM packages WHERE id IN (SELECT MAX(id) FROM packages"
                f" WHERE order_id IN ({', '.join('?' * len(chunk))}) GROUP BY order_id)", chunk).fetchall()
            found.update((package.order_id, package) for package in self._read_rows(rows, self._package))
        return found


    # -- light rows, counts and selections (no JSON parsed, nothing decrypted) -----------------------
    def order_lines(self, *, states: Iterable[OrderState | str] | None = None,
                    ship_by_before: datetime | None = None, after: tuple[str, str] | None = None,
                    limit: int) -> list[OrderLine]:
        """:meth:`order_page` as light rows (same order, filters and ``after`` positions), each with
        its newest package's carrier and tracking number, in one query that reads indexes only
        (orders_listing, packages_newest: migration 9)."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        filters = _filters(OrderState, states, {}, None, "o.")
        if filters is None:
            return []
        where, params = filters
        _page_filters(where, params, ship_by_before, after, "o.")
        # One flat join, limited as a whole: each order joins at most its newest package, so the
        # limit counts orders (a page in a subquery made SQLite sort the page again).
        rows = self._conn().execute(
            "SELECT o.order_id, o.site, o.state, o.ship_by, o.hold_reason, o.held_from, o.created_at,"
            " p.carrier, p.tracking_number FROM orders o LEFT JOIN packages p ON p.order_id = o.order_id"
            " AND NOT EXISTS (SELECT 1 FROM packages n WHERE n.order_id = o.order_id AND n.id > p.id)"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY o.created_at, o.order_id LIMIT ?", (*params, limit)).fetchall()
        state, parse, line = _ORDER_STATES, parse_iso, tuple.__new__  # (a NamedTuple's __new__ is Python)
        return [line(OrderLine, (r[0], r[1], state[r[2]], parse(r[3]) if r[3] else None, r[4],
                                 state[r[5]] if r[5] else None, r[6], r[7] or "", r[8] or "")) for r in rows]

    def cancelled_on_amazon(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` Amazon has cancelled (its status as last read), by their JSON:
        nothing decrypted, a few hundred ids per query."""
        return self.with_amazon_status(order_ids, (FulfillmentStatus.CANCELLED,))

    def with_amazon_status(self, order_ids: Sequence[str], statuses: Sequence[FulfillmentStatus]) -> set[str]:
        """Which of ``order_ids`` Amazon shows in one of ``statuses`` (as last read), as
        :meth:`cancelled_on_amazon` reads them. The status is read from each one's JSON here, not
        in SQL, where one order whose data is not JSON failed the whole read; such an order is in
        no status (what Amazon says of it cannot be read)."""
        found: set[str] = set()
        values = [FulfillmentStatus(s).value for s in statuses]  # (a hand-edited status may be a list)
        for start in range(0, len(order_ids), _SQL_CHUNK):
            ids = list(order_ids[start:start + _SQL_CHUNK])
            rows = self._conn().execute(
                f"SELECT order_id, data FROM orders WHERE order_id IN ({_marks(ids)})", ids).fetchall()
            found.update(order_id for order_id, data in rows if _amazon_status(data)[0] in values)
        return found

    def holds_of(self, order_ids: Sequence[str]) -> dict[str, str]:
        """The hold reason of each of ``order_ids`` that is HELD, a few hundred ids per query."""
        ids_all, found = list(dict.fromkeys(order_ids)), {}
        for start in range(0, len(ids_all), _SQL_CHUNK):
            ids = ids_all[start:start + _SQL_CHUNK]
            found.update((r[0], r[1] or "held") for r in self._conn().execute(
                f"SELECT order_id, hold_reason FROM orders WHERE order_id IN ({_marks(ids)}) AND state = ?",
                (*ids, OrderState.HELD.value)).fetchall())
        return found

    def purged_orders(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` had their buyer data purged (their labels erased with it): a few
        hundred ids per query, by the primary key; unknown ids are not named."""
        ids_all, found = list(dict.fromkeys(order_ids)), set()
        for start in range(0, len(ids_all), _SQL_CHUNK):
            ids = ids_all[start:start + _SQL_CHUNK]
            found.update(r[0] for r in self._conn().execute(
                f"SELECT order_id FROM orders WHERE order_id IN ({_marks(ids)})"
                " AND pii_purged_at IS NOT NULL", ids).fetchall())
        return found

    def count_orders(self, states: Iterable[OrderState | str] | None = None) -> int:
        """How many orders are in ``states`` (all when None)."""
        filters = _filters(OrderState, states, {}, None)
        if filters is None:
            return 0
        where, params = filters
        sql = "SELECT COUNT(*) FROM orders" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self._conn().execute(sql, params).fetchone()[0])

    def state_site_counts(self, states: Iterable[OrderState | str] | None = None
                          ) -> dict[tuple[str, str], int]:
        """Orders per (state, site) among ``states`` (all when None); the site as stored ('' unknown)."""
        filters = _filters(OrderState, states, {}, None)
        if filters is None:
            return {}
        where, params = filters
        sql = ("SELECT state, site, COUNT(*) FROM orders" + (" WHERE " + " AND ".join(where) if where else "")
               + " GROUP BY state, site")
        return {(r[0], r[1]): int(r[2]) for r in self._conn().execute(sql, params).fetchall()}

    def retrying_count(self, states: Iterable[OrderState | str]) -> int:
        """Orders among ``states`` with a failed attempt since their last step (what ``order_page``
        lists with ``attempted=True``), counted in SQL."""
        filters = _filters(OrderState, states, {}, None)
        if filters is None:
            return 0
        where, params = filters
        sql = "SELECT COUNT(*) FROM orders WHERE " + " AND ".join([*where, "attempts > 0"])
        return int(self._conn().execute(sql, params).fetchone()[0])

    def held_summary(self) -> dict[str, tuple[int, str, str]]:
        """Per hold reason of the HELD orders: how many, and the id and message of the first of them
        (by update time, then order id)."""
        conn = self._conn()
        held = OrderState.HELD.value
        out: dict[str, tuple[int, str, str]] = {}
        for r in conn.execute("SELECT hold_reason, COUNT(*) FROM orders WHERE state = ? GROUP BY hold_reason"
                              " ORDER BY hold_reason", (held,)).fetchall():
            first = conn.execute("SELECT order_id, hold_message FROM orders WHERE state = ?"
                                 " AND hold_reason = ? ORDER BY updated_at, order_id LIMIT 1",
                                 (held, r[0])).fetchone()
            order_id, message = (first[0], first[1]) if first is not None else ("", "")
            out[r[0]] = (int(r[1]), order_id, message)
        return out

    def labels_bought(self) -> dict[str, LabelsBought]:
        """Per carrier, the labels bought and not voided (packages in :data:`BOUGHT_PACKAGE_STATES`,
        whatever their order's state: a held order's label was paid for too), and how many of them
        still wait for their file (LABEL_CREATED: the file is written by a later step, after a full
        disk, say). Whether a label has a file is not what counts: one still to be written was
        bought all the same, and one the ERP bought keeps its file there. One indexed aggregate."""
        bought = [s.value for s in BOUGHT_PACKAGE_STATES]
        rows = self._conn().execute(
            "SELECT carrier, COUNT(*), SUM(CASE WHEN state = ? THEN 1 ELSE 0 END) FROM packages"
            f" WHERE state IN ({_marks(bought)}) GROUP BY carrier ORDER BY carrier",
            (PackageState.LABEL_CREATED.value, *bought)).fetchall()
        return {r[0]: LabelsBought(int(r[1]), int(r[2] or 0)) for r in rows}

    def schedule(self, states: Iterable[OrderState | str], *, due_before: datetime | None = None,
                 accounts: Iterable[str] | None = None, except_accounts: Iterable[str] = (),
                 limit: int | None = None) -> list[OrderKey]:
        """The orders in ``states`` to work on, earliest ship-by first (orders without one last),
        then by order id; with ``due_before``, only those not deferred past it (as :meth:`orders`);
        with ``accounts``, only theirs; none of ``except_accounts``; at most ``limit``. One query
        that reads an index alone (orders_due: migration 20), nothing decrypted: the dispatcher
        sends it, with a limit, each time a worker comes free.

        With a limit, it is read in parts: for each state, the orders without a retry time, with a
        ship-by and without one, each read in the index's order and cut at the limit; and, of every
        state at once, those whose retry time has come, a range of the index per state, sorted.
        Only the parts' rows are sorted again. So neither are the ten thousand new orders of a
        peak's start all sorted at every read, nor the thousands parked midway (a retry time ahead)
        passed over one by one.
        The account lists are bound once, in a WITH list: repeated in each part, the read of a
        worker owning a thousand accounts took 54 ms on PostgreSQL against 8.5 ms."""
        wanted = _values(OrderState, states)
        names = None if accounts is None else sorted(set(accounts))
        if not wanted or names == []:
            return []
        lists, where, list_params = [], [], []
        left_out = sorted(set(except_accounts))
        for name, values, test in (("owned", names, "IN"), ("left_out", left_out, "NOT IN")):
            if values:
                lists.append(f"{name}(account) AS (VALUES {', '.join(['(?)'] * len(values))})")
                where.append(f"account {test} (SELECT account FROM {name})")
                list_params.extend(values)
        due = [_ts(due_before)] if due_before is not None else []
        accounts_only = "".join(f" AND {w}" for w in where)
        head = "WITH " + ", ".join(lists) + " " if lists else ""
        if limit is None:
            return self._keys(f"{head}SELECT {_KEY_COLUMNS} FROM orders WHERE state IN ({_marks(wanted)})"
                              f"{accounts_only}{' AND ' + _DUE if due else ''} ORDER BY {_SCHEDULE_ORDER}",
                              [*list_params, *wanted, *due])
        # Orders without a retry time, by state, with a ship-by and without: each part read in the
        # index's order (the retry time named in ORDER BY, NULL as it is, so that PostgreSQL sees
        # that too). Then the retries due, of every state at once: a range of retry times per state.
        parts, params = [], list(list_params)

        def part(condition: str, values: list, order: str) -> None:
            parts.append(f"SELECT * FROM (SELECT {_KEY_COLUMNS} FROM orders WHERE {condition}{accounts_only}"
                         f" ORDER BY {order} LIMIT ?) AS part{len(parts)}")
            params.extend([*values, int(limit)])

        for state in wanted:
            for ship_by in ("ship_by IS NOT NULL", "ship_by IS NULL"):
                part(f"state = ? AND next_attempt_at IS NULL AND {ship_by}", [state],
                     "next_attempt_at, ship_by, order_id")
        # The lower bound every retry time passes makes a range PostgreSQL estimates small: with
        # "<= ?" alone it guesses a third of the rows, finds its generic plan dear, and plans the
        # prepared statement anew at each read (~1 ms).
        retried = "next_attempt_at > '' AND next_attempt_at <= ?" if due else "next_attempt_at IS NOT NULL"
        part(f"state IN ({_marks(wanted)}) AND {retried}", [*wanted, *due], _SCHEDULE_ORDER)
        return self._keys(f"{head}SELECT {_KEY_COLUMNS} FROM ({' UNION ALL '.join(parts)}) AS due"
                          f" ORDER BY {_SCHEDULE_ORDER} LIMIT ?", [*params, int(limit)])

    def _keys(self, sql: str, params: Sequence[Any]) -> list[OrderKey]:
        rows = self._conn().execute(sql, params).fetchall()
        return [OrderKey(r[0], r[1], parse_iso(r[2]) if r[2] else None) for r in rows]

    def soonest_ship_by(self, states: Iterable[OrderState | str], *, limit: int) -> list[OrderRecord]:
        """Up to ``limit`` orders in ``states`` with a ship-by, soonest first (buyer data not read)."""
        wanted = _values(OrderState, states) or []
        if not wanted or limit <= 0:
            return []
        rows = self._conn().execute(
            self._order_select(False) + f" WHERE state IN ({_marks(wanted)}) AND ship_by IS NOT NULL"
            " ORDER BY ship_by, created_at, order_id LIMIT ?", (*wanted, limit)).fetchall()
        return self._read_rows(rows, self._record)

    def pii_expired(self, *, gone: Iterable[OrderState], shipped: Iterable[OrderState],
                    confirmed: Iterable[PackageState], ended_before: datetime,
                    shipped_before: datetime, cancelled: Iterable[OrderState] = (),
                    shipped_elsewhere: Iterable[OrderState] = (),
                    abandoned: Iterable[OrderState] = ()) -> list[str]:
        """Ids of the orders whose buyer address is due for erasure and not erased yet, by the rule
        of :mod:`connector.engine.purge` (which passes its states and cut-offs):

        * every order in ``gone`` (nothing to ship);
        * every order in ``cancelled`` whose Amazon status is CANCELLED (nothing to ship either);
        * an order in ``shipped`` when at least one of its packages' lives has ended and every
          ended one ended at the cut-off or before: a DELIVERED package at ``delivered_at``
          (<= ``ended_before``), a RETURNED one at ``last_scan_at`` (<= ``ended_before``), a package
          in ``confirmed`` with a ship date at ``shipped_at`` (<= ``shipped_before``). A package
          with none of these (not confirmed, a voided label) does not count. A DELIVERED package
          without ``delivered_at`` ended at its ``last_scan_at``, else its ``updated_at``;
        * an order in ``shipped_elsewhere`` whose Amazon status is SHIPPED and none of whose
          packages is followed (DELIVERED, RETURNED or in ``confirmed``: the parcel is someone
          else's), once Amazon's last update of it -- at or after its shipment -- is at
          ``shipped_before`` or before (the fallback of a parcel never followed to an end);
        * an order in ``abandoned`` none of whose packages is followed, whose ship-by (if any) and
          arrival in the ledger are at ``shipped_before`` or before: a hold nobody settled
          in all that time (an ERP's order, an unknown SKU) must not keep the address for good.

        Only orders not purged yet are read (an index holds just those), and no address is decrypted."""
        gone_v, shipped_v = _values(OrderState, gone) or [], _values(OrderState, shipped) or []
        cancelled_v = _values(OrderState, cancelled) or []
        elsewhere_v = _values(OrderState, shipped_elsewhere) or []
        confirmed_v = _values(PackageState, confirmed) or []
        if {PackageState.DELIVERED.value, PackageState.RETURNED.value} & set(confirmed_v):
            raise ValueError("confirmed package states must not include DELIVERED or RETURNED "
                             "(their life ends at delivery or return)")
        if not confirmed_v:
            confirmed_v = [""]  # IN () is not SQL; no package state is ''
        done, late = _ts(ended_before), _ts(shipped_before)
        delivered, returned = PackageState.DELIVERED.value, PackageState.RETURNED.value
        at = "COALESCE(p.delivered_at, p.last_scan_at, p.updated_at)"  # a delivery stored without its time
        ended = (f"(p.state = '{delivered}' AND {at} <= ?) OR (p.state = '{returned}'"
                 f" AND p.last_scan_at <= ?) OR (p.state IN ({_marks(confirmed_v)}) AND p.shipped_at <= ?)")
        later = (f"(p.state = '{delivered}' AND {at} > ?) OR (p.state = '{returned}'"
                 f" AND p.last_scan_at > ?) OR (p.state IN ({_marks(confirmed_v)}) AND p.shipped_at > ?)")
        cuts = (done, done, *confirmed_v, late)
        # no parcel of the order is followed here (delivered, returned, or confirmed and tracked)
        unfollowed = (f" AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.order_id = o.order_id AND"
                      f" p.state IN ('{delivered}', '{returned}', {_marks(confirmed_v)})))")
        clauses, params = [], []
        if gone_v:
            clauses.append(f"o.state IN ({_marks(gone_v)})")
            params.extend(gone_v)
        abandoned_v = _values(OrderState, abandoned) or []
        if abandoned_v:
            clauses.append(f"(o.state IN ({_marks(abandoned_v)}) AND {_PAST_SHIP_BY_AND_ARRIVAL}"
                           + unfollowed)
            params.extend((*abandoned_v, iso(shipped_before), late, *confirmed_v))
        if shipped_v:
            clauses.append(
                f"(o.state IN ({_marks(shipped_v)})"
                f" AND EXISTS (SELECT 1 FROM packages p WHERE p.order_id = o.order_id AND ({ended}))"
                f" AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.order_id = o.order_id AND ({later})))")
            params.extend((*shipped_v, *cuts, *cuts))
        due = set(self._by_amazon_status(cancelled_v, elsewhere_v, iso(shipped_before),
                                         [delivered, returned, *confirmed_v]))
        if clauses:
            everyone = sorted({*gone_v, *shipped_v, *abandoned_v})
            due.update(r[0] for r in self._conn().execute(
                "SELECT o.order_id FROM orders o WHERE o.pii_purged_at IS NULL"
                f" AND o.state IN ({_marks(everyone)}) AND ({' OR '.join(clauses)})",
                (*everyone, *params)).fetchall())
        return sorted(due)

    def _by_amazon_status(self, cancelled: list[str], elsewhere: list[str], updated_before: str,
                          followed: list[str]) -> list[str]:
        """:meth:`pii_expired`'s orders in ``cancelled`` that Amazon cancelled, and in ``elsewhere``
        that it shows shipped (its last update at ``updated_before`` or before) with no parcel in
        ``followed``. Amazon's word is read from each one's JSON here, not in SQL: there, one row
        whose data is not JSON (a hand edit, a restore gone wrong) failed the whole selection, and
        no address was erased any more. Such an order is passed over; its hold's own clock (ship-by
        + the fallback) erases its address. Reads the held orders whose address is still there."""
        states = sorted({*cancelled, *elsewhere})
        if not states:
            return []
        rows = self._conn().execute(
            "SELECT o.order_id, o.state, o.data, NOT EXISTS (SELECT 1 FROM packages p WHERE"
            f" p.order_id = o.order_id AND p.state IN ({_marks(followed)})) FROM orders o"
            f" WHERE o.pii_purged_at IS NULL AND o.state IN ({_marks(states)})",
            (*followed, *states)).fetchall()
        due = []
        for order_id, state, data, unfollowed in rows:
            status, updated = _amazon_status(data)
            if ((state in cancelled and status == FulfillmentStatus.CANCELLED.value)
                    or (state in elsewhere and status == FulfillmentStatus.SHIPPED.value and unfollowed
                        and isinstance(updated, str) and updated <= updated_before)):
                due.append(order_id)
        return due

    def pii_unshipped_expired(self, *, unshipped: Iterable[OrderState], unbought: Iterable[PackageState],
                              due_before: datetime) -> list[str]:
        """Ids of the orders still on their way to a label whose buyer address is due for erasure
        and not erased yet (the rule of :mod:`connector.engine.purge`, which passes its states):

        * the order is in ``unshipped`` (waiting to be planned or bought for: NEW, PLANNED);
        * every package of it is in ``unbought`` (planned, failed, voided): no label is claimed or
          bought for it, so no call to a carrier may be using the address and no label needs it;
        * its ship-by (if any) and its arrival in the ledger are at ``due_before`` or before:
          the clock of ``pii_expired``'s ``abandoned`` (a hold nobody settles).

        Only orders not purged yet are read, and no address is decrypted.
        :meth:`purge_unshipped_pii` asks again inside its write, for the orders it erases."""
        return self._unshipped_due(self._conn(), unshipped, unbought, due_before)

    def _unshipped_due(self, conn: Any, unshipped: Iterable[OrderState], unbought: Iterable[PackageState],
                       due_before: datetime, among: Sequence[str] | None = None) -> list[str]:
        """:meth:`pii_unshipped_expired` on ``conn`` (a write transaction's, to ask again under its
        lock), among ``among`` only when given (at most ``_SQL_CHUNK`` ids)."""
        states = _values(OrderState, unshipped) or []
        if not states or (among is not None and not among):
            return []
        kept = _values(PackageState, unbought) or [""]  # NOT IN () is not SQL; no package state is ''
        sql = ("SELECT o.order_id FROM orders o WHERE o.pii_purged_at IS NULL"
               f" AND o.state IN ({_marks(states)}) AND {_PAST_SHIP_BY_AND_ARRIVAL}"
               " AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.order_id = o.order_id"
               f" AND p.state NOT IN ({_marks(kept)}))")
        params: list[Any] = [*states, iso(due_before), _ts(due_before), *kept]
        if among is not None:
            sql += f" AND o.order_id IN ({_marks(among)})"
            params.extend(among)
        return [r[0] for r in conn.execute(sql + " ORDER BY o.order_id", params).fetchall()]


def _amazon_status(data: str | None) -> tuple[Any, Any]:
    """An order's Amazon status and last update as its stored JSON holds them; (None, None) when
    it is not a JSON object."""
    order = stored_json(data) or {}
    return order.get("status"), order.get("last_updated")


def _page_filters(where: list[str], params: list[Any], ship_by_before: datetime | None,
                  after: tuple[str, str] | None, table: str = "") -> None:
    """The ship-by bound and the keyset position of an order page (columns prefixed with ``table``,
    e.g. ``"o."`` in a join)."""
    if ship_by_before is not None:
        where.append(f"{table}ship_by IS NOT NULL AND {table}ship_by < ?")
        params.append(_iso_ms_ceiling(ship_by_before))
    if after is not None:
        created_at, order_id = after
        where.append(f"({table}created_at, {table}order_id) > (?, ?)")
        params.extend((str(created_at), str(order_id)))


def _filters(kind: Any, states: Any, equal: dict[str, str | None],
             updated_since: datetime | None, table: str = "") -> tuple[list[str], list[Any]] | None:
    """WHERE clauses and parameters shared by the listings: states, equal columns, updated since
    (columns prefixed with ``table``); None when ``states`` is given and empty (nothing can match)."""
    where: list[str] = []
    params: list[Any] = []
    wanted = _values(kind, states)
    if wanted is not None:
        if not wanted:
            return None
        where.append(f"{table}state IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    for column, value in equal.items():
        if value is not None:
            where.append(f"{table}{column} = ?")
            params.append(value)
    if updated_since is not None:
        where.append(f"{table}updated_at >= ?")
        params.append(_ts(updated_since))
    return where, params
