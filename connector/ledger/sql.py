"""The SQL ledger: every query and transition, shared by the SQLite and PostgreSQL stores.

The stores differ only in how they connect and how a write transaction takes its lock
(:mod:`connector.ledger.sqlite`, :mod:`connector.ledger.postgres`); the statements here are plain
SQL both accept, with ``?`` placeholders (the PostgreSQL store translates them). Every
read-then-write runs inside :meth:`SqlLedger._write`, which holds the store's write lock from its
first statement, so a compare-and-set cannot interleave with another writer. A transaction that
reads and writes one order's rows only (besides appending transitions and events) names the order
as its ``scope`` (one account's quota state likewise, as ``quota:<account>``): a store that can
lock finer (PostgreSQL) then serialises it only against the same scope's and against unscoped
transactions. Every state change
writes its ``transitions`` row in the same transaction. Buyer addresses are stored only as Fernet
tokens (:mod:`connector.ledger.crypto`).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..events import Event, matches, order_event, package_events
from ..holds import CLAIM_GIVEN_UP_BY_RELEASE, WAIVED_BY_RELEASE, parse_hold_reason
from ..model import Address, Order, iso, parse_iso, utcnow
from .base import (
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    TERMINAL_PACKAGE_STATES,
    TRACKED_PACKAGE_STATES,
    Alert,
    CorruptRecordError,
    Ledger,
    OrderFinishedError,
    OrderRecord,
    OrderState,
    Package,
    PackageChange,
    PackageState,
    StaleStateError,
    TrackingRecord,
)
from .crypto import PiiCipher, PiiDecryptError, open_address, seal_address
from .feeds import FeedStore
from .items import ItemStore
from .leases import LeaseStore
from .metrics_queries import MetricsQueries
from .migrations import (
    MIGRATIONS,
    SCHEMA_VERSION_DDL,
    Migration,
    SchemaError,
    check,
    latest_version,
    next_pending,
    render,
)
from .queries import OrderQueries
from .quota import QuotaStore
from .stored import stored_json
from .submissions import PURGED_DIGEST, SubmissionStore
from .timestamps import from_text as _dt
from .timestamps import to_text as _ts
from .tokens import TokenStore
from .transparency import TransparencyStore
from .warehouse import WarehouseStore

# Orders that are over for the order loop: a package moving on does not move them -- except a
# shipped order, which follows its parcel (tracking) or its void. Only the unshipped ones are over
# for good: a shipped order can still be held (a void the carrier refused), its parcel followed.
_FINAL_ORDER_STATES = (OrderState.CANCELLED, OrderState.VOIDED, OrderState.ISSUED, *SHIPPED_ORDER_STATES)
_UNHOLDABLE = NOTHING_TO_SHIP_STATES  # ended: nothing left to hold
_FOLLOWS_PARCEL = frozenset(SHIPPED_ORDER_STATES) | {OrderState.VOIDING, OrderState.ISSUED}
# Packages the order loop no longer works on (open_package skips them).
_CLOSED_PACKAGE_STATES = tuple(s.value for s in (*TRACKED_PACKAGE_STATES, *TERMINAL_PACKAGE_STATES))
_CLOSED_MARKS = ", ".join("?" * len(_CLOSED_PACKAGE_STATES))
_PACKAGE_REF = re.compile(r"[1-9][0-9]{0,29}")
_KEY_CHECK = {"ledger": "mfn-connector"}  # what the key check seals: only the key matters
_KEY_CHECK_SCHEMA = 14  # the migration that adds it
_ANY_BUYER_DATA = "SELECT 1 FROM orders WHERE pii IS NOT NULL LIMIT 1"
_FORGOTTEN = "buyer address forgotten: sealed with a PII key no longer configured"
_ORDER_ID = re.compile(r"\d{3}-\d{7}-\d{7}")  # an alert about one order names it first
# A package's columns held as JSON, what each must be, and how a person calls that.
_PACKAGE_JSON = (("items", list, "a JSON array"), ("plan", dict, "a JSON object"),
                 ("refund", dict, "a JSON object"))

log = logging.getLogger("connector.ledger")
Read = TypeVar("Read")


def _reason(exc: BaseException) -> str:
    """The first line of a database error (PostgreSQL's next lines quote the statement)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _order_json(order: Order) -> str:
    """The order as the ``data`` column holds it (without its address: that is sealed apart)."""
    return json.dumps(order.to_dict(), sort_keys=True, ensure_ascii=False)


def _package_json(row: Any) -> list[Any]:
    """A package row's items, plan and refund out of their JSON; CorruptRecordError naming the
    package and its order (not what the row holds) when one is not JSON of its kind."""
    values = []
    for column, kind, what in _PACKAGE_JSON:
        value = stored_json(row[column], kind, "{}" if kind is dict else "")
        if value is None:
            raise CorruptRecordError(f"package {row['id']} of order {row['order_id']}: its stored {column} "
                                     f"is not {what}; restore the row from a backup",
                                     order_id=row["order_id"], package_id=row["id"])
        values.append(value)
    return values


def _read_before(order: Order, stored: str) -> bool:
    """Whether ``order`` is a copy Amazon sent before the ``stored`` one (an older
    ``lastUpdatedTime``): a worker whose poll stalled past its lease writes what it read after
    the account's new owner stored a newer copy, which may say the order was cancelled."""
    try:
        return order.last_updated < parse_iso(json.loads(stored)["last_updated"])
    except (ValueError, KeyError, TypeError):
        return False  # a stored copy without a readable time: the fresh one replaces it


# advance(**fields): what may change, and when.
_PACKAGE_TEXT_FIELDS = ("carrier_shipment_id", "tracking_number", "label_path", "error", "voided_from")
_PACKAGE_PLAN_FIELDS = ("carrier", "service", "items")  # only while the package is PLANNED
_PACKAGE_TIME_FIELDS = ("shipped_at", "confirmed_at", "first_scan_at", "last_scan_at", "delivered_at",
                        "next_track_at", "voided_at")
_PACKAGE_COUNT_FIELDS = ("confirm_attempts", "scans", "track_failures")
_PACKAGE_OTHER_FIELDS = (*_PACKAGE_COUNT_FIELDS, *_PACKAGE_TIME_FIELDS, "refund", "filed_as")
_PACKAGE_FIXED_FIELDS = ("id", "order_id", "package_ref", "idempotency_key", "state", "plan", "created_at",
                         "updated_at")
_SQL_CHUNK = 500  # bound parameters per IN (...) list
# Connections given back by threads gone waiting that are kept open for the next threads to take
# (release_connection); more are closed, so a burst of polls leaves no crowd of idle sessions.
IDLE_CONNECTIONS_KEPT = 8
# How many threads that share connections (the accounts' poll threads) work in the ledger at once.
SHARED_TURNS = 4

# Bookkeeping that changes at every tracking poll; a same-state change of only these writes no
# history row (advance() compares each field given with the package's value: an equal one is no change).
_QUIET_FIELDS = frozenset({"next_track_at", "track_failures"})


class WriteTransaction:
    """The connection of one write transaction (what :meth:`SqlLedger._write` yields). The audit
    rows it writes (``transitions``) are kept until the commit and inserted together: a step's
    package and order transitions cost one statement, not one each (on PostgreSQL, one round
    trip). Nothing reads them back inside the transaction that writes them."""

    __slots__ = ("conn", "transitions")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.transitions: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self.conn.executemany(sql, rows)

    def flush(self) -> None:
        if self.transitions:
            self.conn.executemany("INSERT INTO transitions (order_id, package_id, at, from_state,"
                                  " to_state, note) VALUES (?, ?, ?, ?, ?, ?)", self.transitions)
            self.transitions = []


class ConnectionHandle:
    """Holds one thread's connection (some connection classes cannot be weakly referenced)."""

    def __init__(self, conn: Any) -> None:
        self.conn: Any = conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class SqlLedger(TokenStore, ItemStore, SubmissionStore, OrderQueries, WarehouseStore, MetricsQueries,
                QuotaStore, LeaseStore, FeedStore, TransparencyStore, Ledger):
    """:class:`Ledger` on a SQL database. A store subclass supplies :meth:`_connect`,
    :meth:`_begin_write`, :attr:`dialect` and :attr:`db_errors`. Call :meth:`migrate` once before use.

    Each thread has its own connection (opened on first use, closed by :meth:`close`), used in
    autocommit mode outside the explicit write transactions. A thread about to wait (for Amazon's
    answer, for quota, until its next poll) gives it back with :meth:`release_connection`, and
    the next thread that needs one takes it: see there."""

    dialect = ""                                     # the migrations' dialect name
    shared = False                                   # whether several daemons may use it at once
    db_errors: tuple[type[BaseException], ...] = ()  # what a failed statement raises
    returning = False                                # whether UPDATE ... RETURNING is understood

    def __init__(self, location: str, cipher: PiiCipher, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.location = location  # for messages: a path, or a URL without its password
        self._cipher = cipher
        self._clock = clock
        self._local = threading.local()
        self._handles: weakref.WeakSet[ConnectionHandle] = weakref.WeakSet()
        self._idle: list[ConnectionHandle] = []  # given back by threads gone waiting (release_connection)
        self._turns = threading.BoundedSemaphore(SHARED_TURNS)  # see sharing_connections
        self._lock = threading.Lock()
        self._closed = False

    def lost_connection(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a lost connection to a database server, nothing to do with the
        statement (tried again, no attempt counted). Never, with a file of our own (SQLite)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    # -- the store's part ----------------------------------------------------------------------
    def _connect(self) -> Any:
        """A new connection for the calling thread (autocommit; rows readable by name and index)."""
        raise NotImplementedError

    def _begin_write(self, conn: Any, scope: str | None, lock_wait: float | None = None) -> None:
        """Start a write transaction holding the store's write lock: all of it, or with a
        ``scope`` (an order id, or another key of the rows it writes) at least as much as keeps
        that scope's compare-and-sets whole. ``lock_wait``: at most this many seconds of waiting
        for its locks, then a ``db_errors`` error (None: the store's own bound, if any)."""
        raise NotImplementedError

    @contextmanager
    def exclusive(self, key: str) -> Iterator[bool]:
        """Whether this process may work on ``key`` (an order, a feed) while the block runs: False
        when another holder (a thread, a process) has it. Each store locks in its own way; a
        store that cannot yields True."""
        yield True

    def _usable(self, conn: Any) -> bool:
        """Whether a thread's open connection can still be used (a server may have dropped it)."""
        return True

    # -- connections and transactions -----------------------------------------------------------
    def _conn(self) -> Any:
        handle: ConnectionHandle | None = getattr(self._local, "handle", None)
        if handle is not None and handle.conn is not None:
            if self._usable(handle.conn):
                return handle.conn
            handle.close()
        if self._closed:
            raise RuntimeError("the ledger is closed")
        if getattr(self._local, "sharing", False) and not getattr(self._local, "turn", False):
            self._turns.acquire()  # (a thread with a turn never waits for another: no deadlock)
            self._local.turn = True
        handle = self._idle_handle()
        if handle is None:
            conn = self._connect()
            handle = ConnectionHandle(conn)
            with self._lock:
                if self._closed:
                    conn.close()
                    raise RuntimeError("the ledger is closed")
                self._handles.add(handle)
        self._local.handle = handle
        return handle.conn

    def _idle_handle(self) -> ConnectionHandle | None:
        """A connection another thread gave back, still usable; None when there is none."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                handle = self._idle.pop()
            if handle.conn is not None and self._usable(handle.conn):
                return handle
            handle.close()

    def release_connection(self) -> None:
        """Give the calling thread's connection back, for the next thread that needs one, before
        the thread waits (for Amazon's answer, for quota, until its next poll). Each seller
        account polls on a thread of its own: without this, a worker acting for 300 accounts
        kept 300 connections, past PostgreSQL's default ``max_connections`` of 100. So a worker
        holds about as many connections as it has threads at work in the ledger at once.

        Nothing is given back inside a write transaction, nor while the thread holds a lock that
        lives on its session (:meth:`exclusive`): the thread keeps its connection until then.
        At most :data:`IDLE_CONNECTIONS_KEPT` are kept open for the next threads; more are closed."""
        if getattr(self._local, "pinned", 0):
            return
        handle: ConnectionHandle | None = getattr(self._local, "handle", None)
        self._local.handle = None
        if handle is not None:
            self._give_back(handle)
        if getattr(self._local, "turn", False):
            self._local.turn = False
            self._turns.release()

    def _give_back(self, handle: ConnectionHandle) -> None:
        if handle.conn is not None and self._usable(handle.conn):
            with self._lock:
                if not self._closed and len(self._idle) < IDLE_CONNECTIONS_KEPT:
                    self._idle.append(handle)
                    return
        handle.close()

    @contextmanager
    def sharing_connections(self) -> Iterator[None]:
        """The calling thread (an account's poll thread: one per account) works in the ledger in
        turns: it takes a connection only with one of :data:`SHARED_TURNS` turns, and gives both
        back at :meth:`release_connection`. So however many accounts, their polls hold at most
        that many connections, even when they all start at once."""
        self._local.sharing = True
        try:
            yield
        finally:
            self.release_connection()
            self._local.sharing = False

    @contextmanager
    def _pinned(self) -> Iterator[None]:
        """The calling thread keeps its connection while the block runs (release_connection waits)."""
        self._local.pinned = getattr(self._local, "pinned", 0) + 1
        try:
            yield
        finally:
            self._local.pinned -= 1

    @contextmanager
    def _write(self, scope: str | None = None, *, lock_wait: float | None = None) -> Iterator[Any]:
        """One short write transaction holding the store's write lock from its first statement
        (``scope``: the one order, or other key, it reads and writes; see the module's docstring;
        ``lock_wait``: see :meth:`_begin_write`)."""
        with self._pinned():
            conn = self._conn()
            self._begin_write(conn, scope, lock_wait)
            try:
                transaction = WriteTransaction(conn)
                yield transaction
                transaction.flush()
                conn.execute("COMMIT")
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except self.db_errors:
                    pass  # no transaction left to roll back (the connection dropped, or it had ended)
                raise

    def _now(self) -> str:
        return _ts(self._clock())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            handles = list(self._handles)
            self._idle.clear()
        for handle in handles:
            handle.close()

    # -- lifecycle ------------------------------------------------------------------------------
    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> int:
        """An up-to-date ledger is only read (no write lock, no right to create tables: a worker's
        role may be one that only reads and writes rows); one behind is migrated, or SchemaError
        saying which role must do it."""
        check(migrations)
        try:
            current = self.schema_version()
        except self.db_errors as exc:
            if not self._denied(exc):
                raise
            raise SchemaError(f"{self.location}: this role may not read the schema version "
                              f"({_reason(exc)}): grant it SELECT on schema_version") from None
        if next_pending(current, migrations) is None:
            self._check_rights()
            return current
        try:
            return self._apply(migrations)
        except self.db_errors as exc:
            if not self._denied(exc):
                raise
            raise SchemaError(
                f"{self.location}: schema version {current}, this release needs "
                f"{latest_version(migrations)}, and this role may not change the schema ({_reason(exc)}): "
                "run 'mfn-connector ledger migrate' with a ledger.url naming the role that owns the "
                "ledger's tables (CREATE rights on its schema), then start again") from None

    def _apply(self, migrations: Sequence[Migration]) -> int:
        """Every pending migration, each in a transaction holding the whole ledger's write lock."""
        self._bootstrap_schema_version()
        while True:
            with self._write() as conn:
                current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version"
                                       ).fetchone()[0]
                pending = next_pending(current, migrations)
                if pending is None:
                    return int(current)
                try:
                    for statement in pending.statements:
                        conn.execute(render(statement, self.dialect))
                except self.db_errors as exc:
                    if self._denied(exc):
                        raise  # (migrate names the role to run it)
                    raise SchemaError(f"{self.location}: migration {pending.version} "
                                      f"({pending.description}) failed: {exc}") from exc
                conn.execute("INSERT INTO schema_version (version, description, applied_at) "
                             "VALUES (?, ?, ?)", (pending.version, pending.description, self._now()))

    def _bootstrap_schema_version(self) -> None:
        with self._write() as conn:
            conn.execute(SCHEMA_VERSION_DDL)

    def schema_version(self) -> int:
        """0 for a database with no schema yet; a failed read (a dropped connection) raises: taken for
        'no schema', it skipped the key check."""
        conn = self._conn()
        try:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        except self.db_errors as exc:
            if not self._no_such_table(exc):
                raise
            return 0
        return int(row[0])

    @staticmethod
    def _no_such_table(exc: BaseException) -> bool:
        """Whether ``exc`` (one of ``db_errors``) says the table a statement reads does not exist."""
        return False

    @staticmethod
    def _denied(exc: BaseException) -> bool:
        """Whether ``exc`` (one of ``db_errors``) says the role lacks a right the statement needs."""
        return False

    @staticmethod
    def _bad_data(exc: BaseException) -> bool:
        """Whether ``exc`` (one of ``db_errors``) says a stored value could not be cast (text that
        is no JSON, no number): SQLite casts without failing."""
        return False

    def _check_rights(self) -> None:
        """SchemaError when this role may not read and write every table of the ledger (a table an
        upgrade added after the worker's role was granted its rights): said at the start, not in
        the middle of a step."""

    def why_not_migrate(self) -> str | None:
        """Why this role could not apply migrations (``config check`` says so before a start
        stops on it), or None when nothing is known to stop it."""
        return None

    # -- helpers ----------------------------------------------------------------------------------
    @classmethod
    def _transition(cls, conn: WriteTransaction, order_id: str, package_id: int | None, at: str,
                    from_state: str | None, to_state: str, note: str = "", row: Any = None) -> None:
        """Record a state change, and its event in the outbox, inside the caller's transaction.

        ``row``: the package's row as just written (a package change), or the order's columns the
        event carries (hold_reason and hold_message, or account and site), when the caller has
        them; otherwise they are read."""
        conn.transitions.append((order_id, package_id, at, from_state, to_state, note))  # at the commit
        change = {"order_id": order_id, "state": to_state, "previous_state": from_state}
        if package_id is None:
            kind = order_event(from_state, to_state)
            if kind == "order.held":
                row = row if row is not None else cls._order_row(conn, order_id, "hold_reason, hold_message")
                change.update(reason=row["hold_reason"], message=row["hold_message"])
            elif kind == "order.received":
                row = row if row is not None else cls._order_row(conn, order_id, "account, site")
                change.update(account=row["account"], site=row["site"])
            if kind is not None:
                cls._emit(conn, kind, order_id, at, change)
            return
        events = package_events(from_state, to_state)
        if not events:
            return
        row = row if row is not None else conn.execute(
            "SELECT package_ref, carrier, service, tracking_number, refund FROM packages WHERE id = ?",
            (package_id,)).fetchone()
        change.update(package_ref=row["package_ref"], carrier=row["carrier"], service=row["service"],
                      tracking_number=row["tracking_number"])
        for kind, previous, state in events:
            data = {**change, "previous_state": previous, "state": state}
            if kind == "package.voided" and row["refund"]:
                data["refund"] = json.loads(row["refund"])
            cls._emit(conn, kind, order_id, at, data)

    @staticmethod
    def _emit(conn: Any, kind: str, order_id: str | None, at: str,
              data: dict[str, Any]) -> None:
        conn.execute("INSERT INTO events (type, order_id, at, data) VALUES (?, ?, ?, ?)",
                     (kind, order_id, at, json.dumps(data, sort_keys=True, default=str)))

    @staticmethod
    def _order_row(conn: Any, order_id: str, columns: str = "*") -> Any:
        row = conn.execute(f"SELECT {columns} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown order {order_id}")
        return row

    @staticmethod
    def _order(order_id: str, data: str, ship_to: Address | None = None) -> Order:
        """The order its stored ``data`` holds; CorruptRecordError naming it when that cannot be read."""
        try:
            return Order.from_dict(json.loads(data), ship_to=ship_to)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptRecordError(f"order {order_id}: its stored data cannot be read "
                                     f"({type(exc).__name__}: {exc}); restore the row from a backup "
                                     "(or submit the order again) and release it",
                                     order_id=order_id) from None

    def _record(self, row: Any) -> OrderRecord:
        ship_to = open_address(self._cipher, row["order_id"], row["pii"]) if row["pii"] is not None \
            else None
        return OrderRecord(
            order=self._order(row["order_id"], row["data"], ship_to),
            state=OrderState(row["state"]),
            hold_reason=row["hold_reason"],
            hold_message=row["hold_message"],
            held_from=OrderState(row["held_from"]) if row["held_from"] else None,
            attempts=row["attempts"],
            next_attempt_at=_dt(row["next_attempt_at"]),
            pii_purged=row["pii_purged_at"] is not None,
            updated_at=_dt(row["updated_at"]),
            waived=frozenset(row["waived"].split()),
        )

    @staticmethod
    def _package(row: Any) -> Package:
        items, plan, refund = _package_json(row)
        return Package(
            id=row["id"], order_id=row["order_id"], package_ref=row["package_ref"],
            idempotency_key=row["idempotency_key"], carrier=row["carrier"], service=row["service"],
            state=PackageState(row["state"]), items=items,
            carrier_shipment_id=row["carrier_shipment_id"], tracking_number=row["tracking_number"],
            label_path=row["label_path"], error=row["error"], confirm_attempts=row["confirm_attempts"],
            created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]),
            shipped_at=_dt(row["shipped_at"]), plan=plan,
            confirmed_at=_dt(row["confirmed_at"]), first_scan_at=_dt(row["first_scan_at"]),
            last_scan_at=_dt(row["last_scan_at"]), delivered_at=_dt(row["delivered_at"]), scans=row["scans"],
            next_track_at=_dt(row["next_track_at"]), track_failures=row["track_failures"],
            voided_at=_dt(row["voided_at"]), voided_from=row["voided_from"],
            refund=refund, label_erased_at=_dt(row["label_erased_at"]),
            filed_as=row["filed_as"] or None,
        )

    @staticmethod
    def _read_rows(rows: Iterable[Any], read: Callable[[Any], Read]) -> list[Read]:
        """``read`` of each row, but of one whose stored JSON cannot be read (CorruptRecordError: a
        hand edit, a restore gone wrong), which is passed over with a warning naming its order (and
        package), never what it holds: one such row must not fail a listing, or a pass over every
        other. The daemon holds its order ledger_inconsistent when it drives it."""
        found = []
        for row in rows:
            try:
                found.append(read(row))
            except CorruptRecordError as exc:
                log.warning("%s; passed over", exc)
        return found

    def _page(self, fetch: Callable[[Any, int], list[Any]], read: Callable[[Any], Read],
              position: Callable[[Any], Any], after: Any, limit: int) -> list[Read]:
        """Up to ``limit`` rows read as :meth:`_read_rows` reads them, ``fetch(after, n)`` giving the
        next ``n`` rows past the keyset position ``after``: a page with a row passed over is filled
        from past it (``position`` of its last row), so a short page still means the last one."""
        found: list[Read] = []
        while len(found) < limit:
            wanted = limit - len(found)
            rows = fetch(after, wanted)
            found += self._read_rows(rows, read)
            if len(rows) < wanted:
                break
            after = position(rows[-1])
        return found

    def _set_state(self, conn: Any, order_id: str, old: str, new: OrderState, now: str,
                   note: str, due_at: str | None = None) -> None:
        """Move an order to a non-HELD state: a new step starts, so its retry budget resets; it is
        due at once, or at ``due_at``."""
        conn.execute("UPDATE orders SET state = ?, hold_reason = '', hold_message = '', held_from = NULL,"
                     " attempts = 0, next_attempt_at = ?, last_error = '', updated_at = ?"
                     " WHERE order_id = ?", (new.value, due_at, now, order_id))
        self._transition(conn, order_id, None, now, old, new.value, note)

    # -- orders -----------------------------------------------------------------------------------
    def upsert_order(self, order: Order) -> bool:
        data = _order_json(order)
        address = order.ship_to.to_dict() if order.ship_to is not None else {}
        ship_by = iso(order.ship_by) if order.ship_by else None  # the form the data's JSON holds
        with self._write(order.order_id) as conn:
            now = self._now()
            row = conn.execute("SELECT state, data, pii, pii_purged_at FROM orders WHERE order_id = ?",
                               (order.order_id,)).fetchone()
            if row is None:
                self._insert_order(conn, order, now, "ingested", data)
                return True
            changes: dict[str, Any] = {}
            if row["data"] != data and _read_before(order, row["data"]):
                return False  # another worker's poll of the same minutes stored a newer copy first
            if row["data"] != data:
                changes.update(data=data, account=order.account, marketplace_id=order.marketplace_id,
                               site=order.site, ship_by=ship_by)
            if (address and row["pii_purged_at"] is None
                    and row["state"] in (OrderState.NEW.value, OrderState.HELD.value)):
                if row["pii"] is None:
                    old: dict[str, str] = {}
                else:
                    try:
                        old = open_address(self._cipher, order.order_id, row["pii"]).to_dict()
                    except PiiDecryptError:
                        old = {}  # unreadable (key rotated out): the fresh copy replaces it
                if old != address:
                    changes["pii"] = seal_address(self._cipher, order.order_id, order.ship_to)
            if changes:
                changes["updated_at"] = now
                conn.execute(f"UPDATE orders SET {', '.join(f'{c} = ?' for c in changes)}"
                             " WHERE order_id = ?", (*changes.values(), order.order_id))
            return False

    def _insert_order(self, conn: Any, order: Order, now: str, note: str, data: str | None = None) -> None:
        """A new order, NEW, with its address sealed (inside the caller's transaction); ``data``:
        its JSON when the caller has it already."""
        values = {"order_id": order.order_id, "state": OrderState.NEW.value,
                  **self._order_values(order, data), "created_at": now, "updated_at": now}
        conn.execute(f"INSERT INTO orders ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                     tuple(values.values()))
        self._transition(conn, order.order_id, None, now, None, OrderState.NEW.value, note,
                         {"account": order.account, "site": order.site})

    def _rewrite_order(self, conn: Any, order: Order) -> None:
        """Replace an order's data and sealed address with ``order``'s (inside the caller's
        transaction; its state is the caller's business)."""
        values = self._order_values(order)
        conn.execute(f"UPDATE orders SET {', '.join(f'{c} = ?' for c in values)} WHERE order_id = ?",
                     (*values.values(), order.order_id))

    def _order_values(self, order: Order, data: str | None = None) -> dict[str, Any]:
        """The columns an order's own data fills (its address sealed): one list for insert and rewrite."""
        return {"account": order.account, "marketplace_id": order.marketplace_id, "site": order.site,
                "data": data if data is not None else _order_json(order),
                "pii": seal_address(self._cipher, order.order_id, order.ship_to),
                "ship_by": iso(order.ship_by) if order.ship_by else None}

    def get_order(self, order_id: str, *, with_pii: bool = True) -> OrderRecord | None:
        if not with_pii:
            found = self.order_detail(order_id)
            return found[0] if found is not None else None
        row = self._conn().execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return self._record(row) if row is not None else None

    def orders(self, states: Iterable[OrderState] | None = None, *, due_before: datetime | None = None,
               limit: int | None = None) -> list[OrderRecord]:
        where: list[str] = []
        params: list[Any] = []
        if states is not None:
            wanted = sorted({OrderState(s).value for s in states})
            if not wanted:
                return []
            where.append(f"state IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if due_before is not None:
            where.append("(next_attempt_at IS NULL OR next_attempt_at <= ?)")
            params.append(_ts(due_before))
        sql = "SELECT * FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at, order_id"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must not be negative, got {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        return self._read_rows(self._conn().execute(sql, params).fetchall(), self._record)

    def set_order_state(self, order_id: str, expect: Iterable[OrderState], new: OrderState, *,
                        note: str = "") -> None:
        expected = {OrderState(s).value for s in expect}
        new = OrderState(new)
        if new is OrderState.HELD:
            raise ValueError(f"order {order_id}: use hold() to hold an order (it needs a reason)")
        with self._write(order_id) as conn:
            now = self._now()
            state = self._order_row(conn, order_id, "state")["state"]
            if state not in expected:
                raise StaleStateError(f"order {order_id} is {state}, expected "
                                      f"{' or '.join(sorted(expected)) or 'nothing'}")
            self._set_state(conn, order_id, state, new, now, note)

    def hold(self, order_id: str, reason: str, message: str, *, keep_held: bool = False,
             change: PackageChange | None = None) -> bool:
        if not reason.strip():
            raise ValueError(f"order {order_id}: a hold needs a reason")
        reason = parse_hold_reason(reason).value  # one enumeration: an ERP can rely on the value
        if change is not None:
            if change.package.order_id != order_id:
                raise ValueError(f"order {order_id}: package {change.package.package_ref} is order "
                                 f"{change.package.order_id}'s")
            moving = self._advancing(change.package, change.expect, change.new, change.order_state,
                                     change.fields)
        with self._write(order_id) as conn:
            at = self._clock()
            now = _ts(at)
            if change is not None:
                self._advance_in(conn, change.package, *moving, at)
            try:
                return self._hold_order(conn, order_id, reason, message, now, keep_held)
            except OrderFinishedError as exc:
                if change is None:
                    raise
                finished = exc  # the package change stands (a label may have been paid for): committed
        raise finished

    def _hold_order(self, conn: WriteTransaction, order_id: str, reason: str, message: str, now: str,
                    keep_held: bool, *, release_to: OrderState | None = None) -> bool:
        """:meth:`hold`'s write, inside the caller's transaction (``reason`` checked already).
        ``release_to``: the state a release returns the order to, when not the one it is held from."""
        row = self._order_row(conn, order_id, "state, held_from, hold_reason, hold_message")
        state = OrderState(row["state"])
        if state in _UNHOLDABLE:
            raise OrderFinishedError(f"order {order_id} is {state.value}: a finished order cannot be held")
        if state is OrderState.HELD and (row["hold_reason"], row["hold_message"]) == (reason, message):
            return True  # held already, for this: nothing changes, nothing to tell an ERP again
        if keep_held and state is OrderState.HELD and row["hold_reason"] != reason:
            note = f"{reason}: {message}" if message else reason
            kept = f"{row['hold_message']}; {note}" if row["hold_message"] else note
            conn.execute("UPDATE orders SET hold_message = ?, updated_at = ? WHERE order_id = ?",
                         (kept, now, order_id))
            self._transition(conn, order_id, None, now, state.value, state.value, f"while held: {note}")
            return False
        held_from = row["held_from"] if state is OrderState.HELD else state.value
        if release_to is not None:
            held_from = release_to.value
        conn.execute("UPDATE orders SET state = ?, hold_reason = ?, hold_message = ?, held_from = ?,"
                     " attempts = 0, next_attempt_at = NULL, updated_at = ? WHERE order_id = ?",
                     (OrderState.HELD.value, reason, message, held_from, now, order_id))
        self._transition(conn, order_id, None, now, state.value, OrderState.HELD.value,
                         f"{reason}: {message}" if message else reason,
                         {"hold_reason": reason, "hold_message": message})
        if state is OrderState.HELD:  # held again for another reason: the ERP hears the new one
            self._emit(conn, "order.held", order_id, now, {
                "order_id": order_id, "state": "HELD", "previous_state": "HELD", "reason": reason,
                "message": message})
        return True

    def release(self, order_id: str) -> OrderState:
        with self._write(order_id) as conn:
            now = self._now()
            row = self._order_row(conn, order_id, "state, held_from, hold_reason, waived")
            if row["state"] != OrderState.HELD.value:
                raise StaleStateError(f"order {order_id} is {row['state']}, not HELD")
            note = "released"
            if row["hold_reason"] in WAIVED_BY_RELEASE:  # "go on anyway": the check holds it no more
                waived = " ".join(sorted({*row["waived"].split(), row["hold_reason"]}))
                conn.execute("UPDATE orders SET waived = ? WHERE order_id = ?", (waived, order_id))
                note = f"released: ships despite {row['hold_reason']}"
            return self._release_in(conn, order_id, row, now, note)

    def _release_in(self, conn: Any, order_id: str, row: Any, now: str, note: str) -> OrderState:
        """A HELD order (``row``: its ``held_from``) back to the state it was held from (NEW if
        unknown), inside the caller's transaction; returns that state."""
        target = OrderState(row["held_from"]) if row["held_from"] else OrderState.NEW
        self._set_state(conn, order_id, OrderState.HELD.value, target, now, note)
        return target

    def give_up_claims(self, order_id: str, note: str) -> tuple[OrderState, list[str]]:
        with self._write(order_id) as conn:
            now = self._now()
            row = self._order_row(conn, order_id, "state, hold_reason")
            if row["state"] != OrderState.HELD.value:
                raise StaleStateError(f"order {order_id} is {row['state']}, not HELD")
            reason = row["hold_reason"]
            if reason not in CLAIM_GIVEN_UP_BY_RELEASE:
                allowed = ", ".join(sorted(CLAIM_GIVEN_UP_BY_RELEASE))
                raise ValueError(f"order {order_id} is held {reason}: only a hold the label step set after "
                                 f"its call ({allowed}) may give its claim up")
            claims = conn.execute("SELECT id, package_ref, idempotency_key FROM packages"
                                  " WHERE order_id = ? AND state = ? ORDER BY id",
                                  (order_id, PackageState.LABEL_CLAIMED.value)).fetchall()
            if not claims:
                raise ValueError(f"order {order_id} has no label claim to give up (held {reason}): "
                                 "release it without replanning")
            for claim in claims:
                conn.execute("UPDATE packages SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                             (PackageState.FAILED.value, note[:500], now, claim["id"]))
                self._transition(conn, order_id, claim["id"], now, PackageState.LABEL_CLAIMED.value,
                                 PackageState.FAILED.value, f"package {claim['package_ref']}: {note}")
            self._set_state(conn, order_id, OrderState.HELD.value, OrderState.NEW, now,
                            "released: label claim given up")
            return OrderState.NEW, [c["idempotency_key"] for c in claims]

    def defer(self, order_id: str, until: datetime, error: str) -> int:
        with self._write(order_id) as conn:
            now = self._now()
            attempts = self._order_row(conn, order_id, "attempts")["attempts"] + 1
            conn.execute("UPDATE orders SET attempts = ?, next_attempt_at = ?, last_error = ?,"
                         " updated_at = ? WHERE order_id = ?",
                         (attempts, _ts(until), error, now, order_id))
            return int(attempts)

    def snooze(self, order_id: str, until: datetime, *, note: str | None = None) -> None:
        """Leave the order until ``until`` without counting a failure (a step that waits on purpose,
        e.g. a confirmation inside its verify grace period); ``note`` says what it waits for, in
        the order's last_error."""
        with self._write(order_id) as conn:
            now = self._now()
            self._order_row(conn, order_id, "order_id")
            conn.execute("UPDATE orders SET next_attempt_at = ?, last_error = COALESCE(?, last_error),"
                         " updated_at = ? WHERE order_id = ?", (_ts(until), note, now, order_id))

    def clear_deferral(self, order_id: str) -> None:
        with self._write(order_id) as conn:
            now = self._now()
            self._order_row(conn, order_id, "order_id")
            conn.execute("UPDATE orders SET attempts = 0, next_attempt_at = NULL, updated_at = ?"
                         " WHERE order_id = ?", (now, order_id))

    def last_error(self, order_id: str) -> str:
        """The error recorded by the latest :meth:`defer` ('' when none)."""
        return str(self._order_row(self._conn(), order_id, "last_error")["last_error"])

    # -- packages ---------------------------------------------------------------------------------
    def plan_package(self, order_id: str, package_ref: str, idempotency_key: str, carrier: str,
                     service: str, items: list[dict[str, Any]],
                     plan: dict[str, Any] | None = None) -> Package:
        if not isinstance(package_ref, str) or not _PACKAGE_REF.fullmatch(package_ref):
            raise ValueError(f"order {order_id}: package_ref must be a positive numeric string without "
                             f"leading zeros, got {package_ref!r}")
        for name, value in (("idempotency_key", idempotency_key), ("carrier", carrier),
                            ("service", service)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"order {order_id}: package {name} must be a non-empty string")
        items_json = self._items_json(order_id, items)
        try:
            plan_json = json.dumps(plan or {}, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"order {order_id}: the package plan is not JSON-serialisable: {exc}") from None
        with self._write(order_id) as conn:
            now = self._now()
            state = self._order_row(conn, order_id, "state")["state"]
            if state != OrderState.NEW.value:
                raise StaleStateError(f"order {order_id} is {state}, expected NEW")
            busy = conn.execute(
                "SELECT package_ref, state FROM packages WHERE order_id = ?"
                f" AND state NOT IN ({_CLOSED_MARKS}) ORDER BY id LIMIT 1",
                (order_id, *_CLOSED_PACKAGE_STATES)).fetchone()
            if busy is not None:
                raise StaleStateError(f"order {order_id} already has package {busy['package_ref']} in "
                                      f"state {busy['state']}")
            other = conn.execute("SELECT order_id FROM packages WHERE idempotency_key = ?",
                                 (idempotency_key,)).fetchone()
            if other is not None:
                raise ValueError(f"order {order_id}: idempotency key {idempotency_key!r} was already "
                                 f"used for order {other['order_id']}; keys are unique forever")
            if conn.execute("SELECT 1 FROM packages WHERE order_id = ? AND package_ref = ?",
                            (order_id, package_ref)).fetchone() is not None:
                raise ValueError(f"order {order_id} already has a package with reference {package_ref}")
            cur = conn.execute(
                "INSERT INTO packages (order_id, package_ref, idempotency_key, carrier, service, state,"
                " items, plan, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (order_id, package_ref, idempotency_key, carrier, service, PackageState.PLANNED.value,
                 items_json, plan_json, now, now))
            package_id = int(cur.fetchone()[0])
            row = conn.execute("SELECT * FROM packages WHERE id = ?", (package_id,)).fetchone()
            self._transition(conn, order_id, package_id, now, None, PackageState.PLANNED.value,
                             f"package {package_ref}: {carrier}/{service}", row)
            self._set_state(conn, order_id, state, OrderState.PLANNED, now, f"package {package_ref} planned")
        return self._package(row)

    @staticmethod
    def _items_json(order_id: str, items: Any) -> str:
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, dict) for i in items):
            raise ValueError(f"order {order_id}: package items must be a list of dicts")
        try:
            return json.dumps(list(items), sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"order {order_id}: package items are not JSON-serialisable: {exc}") from None

    def packages(self, order_id: str) -> list[Package]:
        rows = self._conn().execute("SELECT * FROM packages WHERE order_id = ? ORDER BY id",
                                    (order_id,)).fetchall()
        return [self._package(r) for r in rows]

    def open_package(self, order_id: str) -> Package | None:
        row = self._conn().execute(
            f"SELECT * FROM packages WHERE order_id = ? AND state NOT IN ({_CLOSED_MARKS})"
            " ORDER BY id LIMIT 1",
            (order_id, *_CLOSED_PACKAGE_STATES)).fetchone()
        return self._package(row) if row is not None else None

    def packages_to_track(self, *, due_before: datetime, shipped_after: datetime,
                          limit: int | None = None) -> list[Package]:
        states = [s.value for s in TRACKED_PACKAGE_STATES]
        marks = ", ".join("?" * len(states))
        sql = (f"SELECT * FROM packages WHERE state IN ({marks})"
               " AND (next_track_at IS NULL OR next_track_at <= ?) AND COALESCE(shipped_at, updated_at) > ?"
               " ORDER BY COALESCE(next_track_at, updated_at), id")
        params: list[Any] = [*states, _ts(due_before), _ts(shipped_after)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._read_rows(self._conn().execute(sql, params).fetchall(), self._package)

    def tracking_events(self, package_id: int) -> list[TrackingRecord]:
        rows = self._conn().execute("SELECT * FROM tracking_events WHERE package_id = ? ORDER BY at, id",
                                    (package_id,)).fetchall()
        return [TrackingRecord(package_id=r["package_id"], at=parse_iso(r["at"]), status=r["status"],
                               code=r["code"], location=r["location"], description=r["description"],
                               description_en=r["description_en"]) for r in rows]

    def get_package(self, package_id: int) -> Package | None:
        row = self._conn().execute("SELECT * FROM packages WHERE id = ?", (package_id,)).fetchone()
        return self._package(row) if row is not None else None

    def _package_changes(self, package: Package, expect: PackageState, fields: dict[str, Any]
                         ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        where = f"package {package.package_ref} of order {package.order_id}"
        for name, value in fields.items():
            if name in _PACKAGE_FIXED_FIELDS:
                raise ValueError(f"{where}: field {name!r} cannot be changed")
            if name in _PACKAGE_TEXT_FIELDS:
                value = "" if value is None else (os.fspath(value) if name == "label_path" else value)
                if not isinstance(value, str):
                    raise ValueError(f"{where}: field {name!r} must be a string")
                changes[name] = value
            elif name in _PACKAGE_COUNT_FIELDS:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{where}: {name} must be a non-negative integer")
                changes[name] = value
            elif name in _PACKAGE_TIME_FIELDS:
                if value is not None and not isinstance(value, datetime):
                    raise ValueError(f"{where}: {name} must be a datetime or None")
                changes[name] = _ts(value) if value is not None else None
            elif name == "refund":
                if not isinstance(value, dict):
                    raise ValueError(f"{where}: refund must be a mapping")
                changes[name] = json.dumps(value, sort_keys=True)
            elif name == "filed_as":  # Amazon's carrier name, or None ('' is None: nothing to note)
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{where}: filed_as must be a string or None")
                changes[name] = (value or "").strip() or None
            elif name in _PACKAGE_PLAN_FIELDS:
                if expect is not PackageState.PLANNED:
                    raise ValueError(f"{where}: {name} can only change while the package is PLANNED "
                                     "(a claimed label is reconciled with the carrier it was bought from)")
                if name == "items":
                    changes[name] = self._items_json(package.order_id, value)
                elif not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{where}: {name} must be a non-empty string")
                else:
                    changes[name] = value
            else:
                known = _PACKAGE_TEXT_FIELDS + _PACKAGE_OTHER_FIELDS + _PACKAGE_PLAN_FIELDS
                raise ValueError(f"{where}: unknown package field {name!r}; known: {', '.join(known)}")
        return changes

    def _changed(self, package: Package, expect: PackageState, changes: dict[str, Any]) -> set[str]:
        """The fields of ``changes`` (as stored) whose value differs from ``package``'s: what the
        history notes. A field given its current value again is written but is no change."""
        changed = set()
        for name, value in changes.items():
            try:
                current = self._package_changes(package, expect, {name: getattr(package, name)})[name]
            except (AttributeError, ValueError):
                current = object()  # not comparable: counted as a change
            if current != value:
                changed.add(name)
        return changed

    def advance(self, package: Package, expect: PackageState, new: PackageState,
                order_state: OrderState | None = None, *, events: Iterable[TrackingRecord] = (),
                order_rests_for: timedelta | None = None, **fields: Any) -> Package:
        """See :meth:`Ledger.advance`.

        The package change is never refused because of its order's state (a label may already
        have been paid for). If the order is HELD meanwhile, it stays HELD and ``order_state``
        becomes the state release() returns it to -- except VOIDED: a voided label ends the order,
        held or not; a CANCELLED or VERIFIED order keeps its state.
        """
        moving = self._advancing(package, expect, new, order_state, fields)
        with self._write(package.order_id) as conn:
            fresh = self._advance_in(conn, package, *moving, self._clock(), events, order_rests_for)
        return self._package(fresh)

    def _advancing(self, package: Package, expect: PackageState, new: PackageState,
                   order_state: OrderState | None, fields: dict[str, Any]
                   ) -> tuple[PackageState, PackageState, OrderState | None, dict[str, Any], set[str]]:
        """:meth:`advance`'s arguments checked, before its transaction: (expect, new, the order's
        target state, the fields as stored, the names of those that change)."""
        expect, new = PackageState(expect), PackageState(new)
        target = OrderState(order_state) if order_state is not None else None
        if target is OrderState.HELD:
            raise ValueError(f"order {package.order_id}: use hold() to hold an order (it needs a reason)")
        changes = self._package_changes(package, expect, fields)
        return expect, new, target, changes, self._changed(package, expect, changes)

    def _advance_in(self, conn: WriteTransaction, package: Package, expect: PackageState, new: PackageState,
                    target: OrderState | None, changes: dict[str, Any], changed: set[str], at: datetime,
                    events: Iterable[TrackingRecord] = (), order_rests_for: timedelta | None = None) -> Any:
        """:meth:`advance`'s writes, inside the caller's transaction; the package's row as written."""
        now = _ts(at)
        columns = {**changes, "state": new.value, "updated_at": now}
        # A count set from the one read (a confirmation's claim) is compared with it too: a feed
        # that claimed and gave the package back meanwhile leaves its state as read, not its count.
        counted = "confirm_attempts" in changes
        update = (f"UPDATE packages SET {', '.join(f'{c} = ?' for c in columns)}"
                  " WHERE id = ? AND state = ?" + (" AND confirm_attempts = ?" if counted else "")
                  + (" RETURNING *" if self.returning else ""))
        moved = conn.execute(update, (*columns.values(), package.id, expect.value,
                                      *((package.confirm_attempts,) if counted else ())))
        if self.returning:  # the row as written, in the same round trip
            fresh = next(iter(moved.fetchall()), None)
        elif moved.rowcount == 1:
            fresh = conn.execute("SELECT * FROM packages WHERE id = ?", (package.id,)).fetchone()
        else:
            fresh = None
        if fresh is None:  # the compare-and-set failed: say why (nothing was written)
            row = conn.execute("SELECT order_id, package_ref, state, confirm_attempts FROM packages"
                               " WHERE id = ?", (package.id,)).fetchone()
            if row is None:
                raise KeyError(f"unknown package {package.id}")
            if row["state"] == expect.value:  # the count moved (see above)
                raise StaleStateError(f"package {row['package_ref']} of order {row['order_id']} was "
                                      f"claimed {row['confirm_attempts']} time(s), not "
                                      f"{package.confirm_attempts} as read")
            raise StaleStateError(f"package {row['package_ref']} of order {row['order_id']} is "
                                  f"{row['state']}, expected {expect.value}")
        order_id, ref = fresh["order_id"], fresh["package_ref"]
        if new is not expect or (changed - _QUIET_FIELDS):
            note = f"package {ref}" + (f"; set {', '.join(sorted(changed))}" if changed else "")
            self._transition(conn, order_id, package.id, now, expect.value, new.value, note, fresh)
        for event in events:
            conn.execute(
                "INSERT INTO tracking_events (package_id, at, status, code, location, description,"
                " description_en) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (package.id, _ts(event.at), event.status, event.code, event.location, event.description,
                 event.description_en))
        if target is not None:
            due_at = _ts(at + order_rests_for) if order_rests_for else None
            self._move_order_with_package(conn, order_id, ref, target, now, due_at)
        return fresh

    def _move_order_with_package(self, conn: Any, order_id: str, ref: str,
                                 target: OrderState, now: str, due_at: str | None = None) -> None:
        order = self._order_row(conn, order_id, "state, held_from")
        state = OrderState(order["state"])
        if state is target:
            return
        if state is OrderState.HELD and target is not OrderState.VOIDED:
            conn.execute("UPDATE orders SET held_from = ?, updated_at = ? WHERE order_id = ?",
                         (target.value, now, order_id))
            self._transition(conn, order_id, None, now, state.value, state.value,
                             f"package {ref} moved on while held; release resumes at {target.value}")
        elif state in _FINAL_ORDER_STATES and not (state in _FOLLOWS_PARCEL and target in _FOLLOWS_PARCEL):
            self._transition(conn, order_id, None, now, state.value, state.value,
                             f"package {ref} moved on; order stays {state.value} (not {target.value})")
        else:
            self._set_state(conn, order_id, state.value, target, now, f"package {ref}", due_at)

    # -- polling ----------------------------------------------------------------------------------
    def get_watermark(self, account: str) -> datetime | None:
        row = self._conn().execute("SELECT value FROM watermarks WHERE account = ?", (account,)).fetchone()
        return _dt(row["value"]) if row is not None else None

    def set_watermark(self, account: str, value: datetime) -> None:
        with self._write() as conn:
            now = self._now()
            conn.execute("INSERT INTO watermarks (account, value, updated_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (account) DO UPDATE SET value = excluded.value,"
                         " updated_at = excluded.updated_at", (account, _ts(value), now))

    # -- reporting and data protection ------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT state, COUNT(*) AS n FROM orders GROUP BY state").fetchall()
        return {r["state"]: int(r["n"]) for r in rows}

    def held_reasons(self) -> dict[str, int]:
        """Number of HELD orders per hold reason."""
        rows = self._conn().execute("SELECT hold_reason, COUNT(*) AS n FROM orders WHERE state = ?"
                                    " GROUP BY hold_reason", (OrderState.HELD.value,)).fetchall()
        return {r["hold_reason"]: int(r["n"]) for r in rows}

    def history(self, order_id: str) -> list[dict[str, Any]]:
        """See :meth:`Ledger.history`; each entry also has ``package_id`` (None for the order's own
        transitions, else the package whose state moved)."""
        rows = self._conn().execute(
            "SELECT at, from_state, to_state, note, package_id FROM transitions WHERE order_id = ?"
            " ORDER BY id", (order_id,)).fetchall()
        return [{"at": _dt(r["at"]), "from": r["from_state"], "to": r["to_state"], "note": r["note"],
                 "package_id": r["package_id"]} for r in rows]

    # -- alerts -----------------------------------------------------------------------------------
    def raise_alert(self, kind: str, subject: str, message: str, details: dict[str, Any]) -> bool:
        with self._write() as conn:
            now = self._now()
            row = conn.execute("SELECT id FROM alerts WHERE kind = ? AND subject = ? AND resolved_at IS NULL",
                               (kind, subject)).fetchone()
            if row is not None:
                conn.execute("UPDATE alerts SET message = ?, details = ?, last_seen_at = ? WHERE id = ?",
                             (message, json.dumps(details, sort_keys=True, default=str), now, row["id"]))
                return False
            conn.execute("INSERT INTO alerts (kind, subject, message, details, raised_at, last_seen_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         (kind, subject, message, json.dumps(details, sort_keys=True, default=str), now, now))
            found = _ORDER_ID.match(subject)
            # Another channel's order (provider mode: shopify-1001) has no Amazon-shaped id: an alert
            # naming one is still that order's event (its webhook queued behind the order's own).
            order_id = found.group(0) if found else self._order_named(conn, subject)
            self._emit(conn, f"alert.{kind}", order_id, now,
                       {"kind": kind, "subject": subject, "message": message, "details": details})
            return True

    @staticmethod
    def _order_named(conn: Any, subject: str) -> str | None:
        row = conn.execute("SELECT order_id FROM orders WHERE order_id = ?", (subject,)).fetchone()
        return row["order_id"] if row is not None else None

    # -- the outbox ---------------------------------------------------------------------------------
    @staticmethod
    def _event(row: Any) -> Event:
        return Event(int(row["id"]), row["type"], row["order_id"], _dt(row["at"]), json.loads(row["data"]))

    def events(self, *, after: int = 0, limit: int = 100, order_id: str | None = None) -> list[Event]:
        """Events after id ``after``, oldest first, none newer than an id that may still be
        followed by an older one committing (so a consumer's cursor never skips one)."""
        sql, args = "SELECT * FROM events WHERE id > ? AND id <= ?", [after, self._settled_event_id()]
        if order_id is not None:
            sql += " AND order_id = ?"
            args.append(order_id)
        rows = self._conn().execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [self._event(r) for r in rows]

    def _settled_event_id(self) -> int:
        """The newest event id no smaller one can follow: with one writer at a time (SQLite) ids
        commit in order, so the newest committed."""
        return int(self._conn().execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    def enqueue_webhooks(self, endpoint: str, patterns: Sequence[str]) -> int:
        with self._write() as conn:
            now = self._now()
            row = conn.execute("SELECT last_event_id FROM event_cursors WHERE consumer = ?",
                               (f"webhook:{endpoint}",)).fetchone()
            newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            if row is None:  # a new endpoint hears what happens from now on
                conn.execute("INSERT INTO event_cursors (consumer, last_event_id) VALUES (?, ?)",
                             (f"webhook:{endpoint}", newest))
                return 0
            queued = 0
            fresh = conn.execute("SELECT id, type, order_id FROM events WHERE id > ? AND id <= ? ORDER BY id",
                                 (row["last_event_id"], newest)).fetchall()
            for r in fresh:
                if matches(r["type"], patterns):
                    conn.execute("INSERT INTO webhook_deliveries (endpoint, event_id, order_key, state,"
                                 " next_attempt_at) VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                                 (endpoint, r["id"], r["order_id"] or f"event:{r['id']}", now))
                    queued += 1
            conn.execute("UPDATE event_cursors SET last_event_id = ? WHERE consumer = ?",
                         (newest, f"webhook:{endpoint}"))
            return queued

    def event_cursor(self, consumer: str) -> int | None:
        row = self._conn().execute("SELECT last_event_id FROM event_cursors WHERE consumer = ?",
                                   (consumer,)).fetchone()
        return int(row[0]) if row is not None else None

    def set_event_cursor(self, consumer: str, last_event_id: int) -> None:
        with self._write() as conn:
            self._move_cursor(conn, consumer, last_event_id)

    def skip_events(self, consumer: str) -> None:
        cursor = self.event_cursor(consumer)
        newest = self._conn().execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        if cursor is not None and int(newest) <= cursor:
            return  # nothing new (one still in flight is seen next time): no write, no lock
        with self._write() as conn:  # exclusive: the newest id is settled (see _settled_event_id)
            newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            self._move_cursor(conn, consumer, int(newest))

    @staticmethod
    def _move_cursor(conn: Any, consumer: str, last_event_id: int) -> None:
        # Never backwards: a slower dispatcher finishing after a faster one must not hand the
        # same events to the hooks again.
        conn.execute("INSERT INTO event_cursors (consumer, last_event_id) VALUES (?, ?)"
                     " ON CONFLICT (consumer) DO UPDATE SET last_event_id = CASE"
                     " WHEN excluded.last_event_id > event_cursors.last_event_id"
                     " THEN excluded.last_event_id ELSE event_cursors.last_event_id END",
                     (consumer, last_event_id))

    def due_webhooks(self, endpoint: str, now: datetime, limit: int = 50
                     ) -> list[tuple[Event, int, datetime]]:
        rows = self._conn().execute(
            "SELECT e.*, d.attempts, d.replayed_at"
            " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
            " WHERE d.endpoint = ? AND d.state = 'pending' AND d.next_attempt_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint = d.endpoint"
            "  AND p.order_key = d.order_key AND p.state = 'pending' AND p.event_id < d.event_id)"
            " ORDER BY d.event_id LIMIT ?", (endpoint, _ts(now), limit)).fetchall()
        return [(event, int(r["attempts"]), max(event.at, _dt(r["replayed_at"]) or event.at))
                for event, r in ((self._event(r), r) for r in rows)]

    def webhook_result(self, endpoint: str, event_id: int, *, status: str, delivered: bool,
                       next_attempt_at: datetime | None) -> None:
        state = "delivered" if delivered else "pending" if next_attempt_at is not None else "dead"
        with self._write() as conn:
            # Two passes may post one event at once (`webhooks deliver` beside the daemon, a leader
            # that lost its lease mid-pass): a failure never undoes the other's delivery, and a
            # delivery stands over the other's giving up.
            conn.execute("UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?,"
                         " next_attempt_at = COALESCE(?, next_attempt_at), delivered_at = ?"
                         " WHERE endpoint = ? AND event_id = ? AND state IN ('pending', ?)",
                         (state, status, _ts(next_attempt_at) if next_attempt_at else None,
                          self._now() if delivered else None, endpoint, event_id,
                          "dead" if delivered else "pending"))

    def replay_webhooks(self, endpoint: str, *, from_event: int = 0, dead_only: bool = False) -> int:
        states = ("dead",) if dead_only else ("dead", "delivered")
        now = self._now()
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,"
                f" replayed_at = ? WHERE endpoint = ? AND event_id >= ? AND state IN"
                f" ({', '.join('?' * len(states))})", (now, now, endpoint, from_event, *states))
            return cur.rowcount

    def webhook_counts(self, endpoint: str) -> dict[str, int]:
        rows = self._conn().execute("SELECT state, COUNT(*) FROM webhook_deliveries WHERE endpoint = ?"
                                    " GROUP BY state", (endpoint,)).fetchall()
        return {state: int(n) for state, n in rows}

    def resolve_alert(self, kind: str, subject: str) -> bool:
        # Most calls find nothing open (tracking clears a parcel's alerts at every update): an
        # indexed read answers those without the write lock, which on PostgreSQL holds every
        # other writer of every worker while it runs.
        if self._conn().execute("SELECT 1 FROM alerts WHERE kind = ? AND subject = ? AND resolved_at IS NULL",
                                (kind, subject)).fetchone() is None:
            return False
        with self._write() as conn:
            cur = conn.execute("UPDATE alerts SET resolved_at = ? WHERE kind = ? AND subject = ?"
                               " AND resolved_at IS NULL", (self._now(), kind, subject))
            return cur.rowcount > 0

    def alerts(self, *, open_only: bool = True, kind: str | None = None) -> list[Alert]:
        where = [w for w, on in (("resolved_at IS NULL", open_only), ("kind = ?", kind is not None)) if on]
        sql = "SELECT * FROM alerts" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return [Alert(kind=r["kind"], subject=r["subject"], message=r["message"],
                      details=json.loads(r["details"]), raised_at=parse_iso(r["raised_at"]),
                      last_seen_at=parse_iso(r["last_seen_at"]), resolved_at=_dt(r["resolved_at"]))
                for r in self._conn().execute(sql, () if kind is None else (kind,)).fetchall()]

    def purge_pii(self, order_ids: Iterable[str], *, states: Iterable[OrderState] | None = None) -> int:
        """Erase the encrypted address of these orders (final: a later upsert does not store a new
        one), mark their labels erased (``label_erased_at``: never served or printed again; the
        purge's file sweep deletes the files) and erase the digest of an ERP's request for them.
        Returns how many orders were newly purged; each gets an audit row.

        ``states``: the states the orders were selected in (:meth:`pii_expired`); an order no longer
        in one of them, asked under the write's lock, is left as it is. A held order released
        between the selection and this write (back to LABELED, say: its label to be shipped now)
        keeps its address; the next sweep asks the rule again."""
        ids = list(dict.fromkeys(order_ids))
        wanted = None if states is None else [OrderState(s).value for s in states]
        if wanted == []:
            return 0
        purged = 0
        for start in range(0, len(ids), _SQL_CHUNK):
            chunk = ids[start:start + _SQL_CHUNK]
            marks = ", ".join("?" * len(chunk))
            still = f" AND state IN ({', '.join('?' * len(wanted))})" if wanted else ""
            params = (*chunk, *(wanted or ()))
            with self._write() as conn:
                now = self._now()
                rows = conn.execute(f"SELECT order_id, state FROM orders WHERE order_id IN ({marks})"
                                    f" AND pii_purged_at IS NULL{still}", params).fetchall()
                for r in rows:
                    self._erase_buyer_data(conn, r["order_id"], r["state"], now)
                purged += len(rows)
        return purged

    def _erase_buyer_data(self, conn: Any, order_id: str, state: str, now: str) -> None:
        """Erase one order's address, its labels (``label_erased_at``) and the digest of an ERP's
        request for it, and note it in its history (inside the caller's transaction)."""
        conn.execute("UPDATE orders SET pii = NULL, pii_purged_at = ?, updated_at = ?"
                     " WHERE order_id = ?", (now, now, order_id))
        conn.execute("UPDATE packages SET label_erased_at = ? WHERE order_id = ?"
                     " AND label_path <> '' AND label_erased_at IS NULL", (now, order_id))
        # the digest of an ERP's request hashes its address too
        conn.execute("UPDATE submissions SET request_digest = ? WHERE order_id = ?",
                     (PURGED_DIGEST, order_id))
        self._transition(conn, order_id, None, now, state, state, "pii purged")

    def purge_unshipped_pii(self, order_ids: Iterable[str], *, unshipped: Iterable[OrderState],
                            unbought: Iterable[PackageState], due_before: datetime, reason: str,
                            message: str) -> list[str]:
        """Hold and erase the address of those of ``order_ids`` that :meth:`pii_unshipped_expired`
        selects (orders still waiting for a plan or a label, past the retention) with the same
        arguments; returns the ids held and purged.

        Each chunk is one transaction, which asks the rule again under its lock: an order that
        moved on since it was selected (a label claimed, a plan bought, purged already) is left as
        it is. Each other is held for ``reason`` (``order <id>: <message>``; a release returns it
        to NEW, and planning holds it again, with no address), its unclaimed planned package given
        up (FAILED: a label claim racing the purge fails its compare-and-set, so nothing is bought
        for it), and its buyer data erased as :meth:`purge_pii` erases it. A crash leaves each
        order either as it was or all of this; run again, it does what is left."""
        reason = parse_hold_reason(reason).value
        ids = list(dict.fromkeys(order_ids))
        done: list[str] = []
        for start in range(0, len(ids), _SQL_CHUNK):
            with self._write() as conn:
                now = self._now()
                chunk = ids[start:start + _SQL_CHUNK]
                due = self._unshipped_due(conn, unshipped, unbought, due_before, chunk)
                for order_id in due:
                    self._hold_unshipped(conn, order_id, reason, f"order {order_id}: {message}", now)
                done.extend(due)
        return done

    def _hold_unshipped(self, conn: Any, order_id: str, reason: str, message: str, now: str) -> None:
        """Hold an order no label was claimed or bought for, give its planned package up and erase
        its buyer data (inside the caller's transaction): release returns it to NEW."""
        planned = PackageState.PLANNED.value
        note = "the buyer's address was purged before a label was bought"
        for row in conn.execute("SELECT id, package_ref FROM packages WHERE order_id = ? AND state = ?"
                                " ORDER BY id", (order_id, planned)).fetchall():
            conn.execute("UPDATE packages SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                         (PackageState.FAILED.value, note, now, row["id"]))
            self._transition(conn, order_id, row["id"], now, planned, PackageState.FAILED.value,
                             f"package {row['package_ref']}: {note}")
        # released, it is planned afresh (its planned package is given up above): NEW
        self._hold_order(conn, order_id, reason, message, now, False, release_to=OrderState.NEW)
        self._erase_buyer_data(conn, order_id, OrderState.HELD.value, now)

    def rotate_pii(self, unreadable: list[str] | None = None) -> int:
        """Re-encrypt every stored address with the primary key (key rotation); returns the count.
        An address no configured key reads raises PiiDecryptError, or, given ``unreadable``, is
        left as it is and its order id appended there (its key may be lost for good: the others
        are re-sealed all the same)."""
        done = 0
        last = ""
        while True:
            with self._write() as conn:
                rows = conn.execute("SELECT order_id, pii FROM orders WHERE pii IS NOT NULL AND"
                                    " order_id > ? ORDER BY order_id LIMIT ?", (last, _SQL_CHUNK)).fetchall()
                for r in rows:
                    try:
                        blob = self._cipher.rotate(r["pii"])
                    except PiiDecryptError as exc:
                        if unreadable is None:
                            raise PiiDecryptError(f"order {r['order_id']}: {exc}") from None
                        unreadable.append(r["order_id"])
                        continue
                    conn.execute("UPDATE orders SET pii = ? WHERE order_id = ?", (blob, r["order_id"]))
                    done += 1
            if not rows:
                self._rotate_key_check()
                return done
            last = rows[-1]["order_id"]

    def unreadable_addresses(self) -> list[str]:
        """Ids of the orders whose stored address no configured key reads (its key lost), in id
        order; every address is decrypted, nothing is written."""
        found: list[str] = []
        rows = self._addresses_after(self._conn(), "")
        while rows:
            found.extend(r["order_id"] for r in rows if not self._readable(r["pii"]))
            rows = self._addresses_after(self._conn(), rows[-1]["order_id"])
        return found

    def forget_addresses(self) -> list[str]:
        """Erase every stored address no configured key reads (sealed with a key lost for good), then
        seal the key check with the configured key, which is now the ledger's; returns the ids.

        Not a purge: the order is not marked purged, so its packages and labels stay as they are
        (a label bought still prints; the retention erases it when due), and an order still NEW or
        held takes its address again from Amazon's next copy of it, as one Amazon sent without
        one does. Each chunk is a transaction; run again after an interruption, it does what is
        left."""
        forgotten: list[str] = []
        last = ""
        while True:
            with self._write() as conn:
                rows = self._addresses_after(conn, last)
                now = self._now()
                for r in rows:
                    if self._readable(r["pii"]):
                        continue
                    conn.execute("UPDATE orders SET pii = NULL, updated_at = ? WHERE order_id = ?",
                                 (now, r["order_id"]))
                    self._transition(conn, r["order_id"], None, now, r["state"], r["state"], _FORGOTTEN)
                    forgotten.append(r["order_id"])
                if not rows:
                    self._seal_key_check(conn, replace=True)
                    return forgotten
            last = rows[-1]["order_id"]

    @staticmethod
    def _addresses_after(conn: Any, after: str) -> list[Any]:
        """The next chunk, by id, of the orders with an address stored (id, state, sealed address)."""
        return conn.execute("SELECT order_id, state, pii FROM orders WHERE pii IS NOT NULL AND"
                            " order_id > ? ORDER BY order_id LIMIT ?", (after, _SQL_CHUNK)).fetchall()

    def _readable(self, blob: bytes) -> bool:
        """Whether a configured key opens ``blob`` (the key alone: whose order it names is not asked)."""
        try:
            self._cipher.decrypt(blob)
        except PiiDecryptError:
            return False
        return True

    def check_key(self, *, seal: bool = True) -> None:
        """Raise PiiDecryptError if the configured key is not the ledger's: the one its key check
        (a constant sealed at its first start) and its newest stored address are sealed with. A
        replaced or regenerated key file, or a second worker started with a key of its own, is
        caught at start-up, not at label time. ``seal``: write the key check if there is none yet
        (``config check`` writes nothing).

        "Newest" is the newest order's: the index on (created_at, order_id) is walked backwards
        past the few newest orders whose address is gone, never the whole table."""
        conn = self._conn()
        row = conn.execute("SELECT order_id, pii FROM orders WHERE pii IS NOT NULL"
                           " ORDER BY created_at DESC, order_id DESC LIMIT 1").fetchone()
        if row is not None:
            try:  # the key alone is judged: a token it opens that names another order is that row's fault
                self._cipher.decrypt(row["pii"])
            except PiiDecryptError as exc:
                raise PiiDecryptError(f"{self.location}: the configured PII key cannot read buyer data "
                                      f"already stored (order {row['order_id']}: {exc}); restore the "
                                      "original key, or list it after the new one to rotate; if it is "
                                      "lost for good, 'mfn-connector pii forget-addresses' erases what "
                                      "it sealed") from None
        if self.schema_version() < _KEY_CHECK_SCHEMA:
            return  # (config check before the migration that adds it)
        sealed = self._key_check(conn)
        if sealed is None and seal:
            with self._write() as writing:  # the first to start seals it; a second one reads it
                self._seal_key_check(writing)
            sealed = self._key_check(self._conn())
        if sealed is not None:
            try:
                self._cipher.decrypt(sealed)
            except PiiDecryptError:
                raise PiiDecryptError(
                    f"{self.location}: the configured PII key is not the key this ledger seals buyer data "
                    "with (a key file replaced, or a worker started with a key of its own): give every "
                    "worker the same key; if that key is lost and the ledger holds no buyer data, "
                    "'mfn-connector pii adopt-key' makes the configured one the ledger's (with buyer "
                    "data, 'mfn-connector pii forget-addresses')") from None

    @staticmethod
    def _key_check(conn: Any) -> bytes | None:
        row = conn.execute("SELECT sealed FROM pii_key_check WHERE id = 1").fetchone()
        return bytes(row["sealed"]) if row is not None else None

    def _seal_key_check(self, conn: Any, *, replace: bool = False) -> None:
        """Seal the key check with the configured key: if there is none yet, or ``replace``d."""
        if replace:
            conn.execute("DELETE FROM pii_key_check")
        conn.execute("INSERT INTO pii_key_check (id, sealed, sealed_at) VALUES (1, ?, ?)"
                     " ON CONFLICT (id) DO NOTHING", (self._cipher.encrypt(_KEY_CHECK), self._now()))

    def _rotate_key_check(self) -> None:
        """The key check sealed with the newest key too, so the old key can go."""
        if not self.has_key_check():
            return
        with self._write() as conn:
            conn.execute("UPDATE pii_key_check SET sealed = ?, sealed_at = ? WHERE id = 1",
                         (self._cipher.rotate(self._key_check(conn)), self._now()))

    def has_key_check(self) -> bool:
        """Whether the ledger knows its key (it was started with one)."""
        return self.schema_version() >= _KEY_CHECK_SCHEMA and self._key_check(self._conn()) is not None

    def holds_buyer_data(self) -> bool:
        """Whether any buyer address is stored (sealed with the ledger's key)."""
        return self._conn().execute(_ANY_BUYER_DATA).fetchone() is not None

    def adopt_key(self) -> bool:
        """The configured key becomes the ledger's, when the ledger holds no buyer data (its key
        lost, say); False when it holds some (nothing changed: that data needs its own key)."""
        with self._write() as conn:
            if conn.execute(_ANY_BUYER_DATA).fetchone() is not None:
                return False
            self._seal_key_check(conn, replace=True)
        return True
