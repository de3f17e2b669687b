"""The shared ledger store: PostgreSQL through psycopg 3 (the queries are in :mod:`connector.ledger.sql`).

Several daemons, on one host or many, share one PostgreSQL ledger (``ledger.url:
postgresql://...``). The statements are the SQLite store's, written with ``?`` placeholders;
:func:`to_pyformat` turns them into psycopg's ``%s`` once per statement.

Write transactions. Every read-then-write of the ledger (a compare-and-set on an order, a label
claim) runs in one short transaction that first takes transaction-scoped advisory locks
(``pg_advisory_xact_lock``), which give what SQLite's ``BEGIN IMMEDIATE`` gives without making
every writer wait for every other. A transaction scoped to one order (or to one account's quota
state) takes the ledger's write lock *shared* and that scope's lock exclusive, so steps of
different orders commit side by side while two of one order's never interleave; any other write
transaction (a feed claiming many orders, a heartbeat, the purge) takes the write lock exclusive
and runs alone. The locks are always taken in that order, and unscoped transactions take no
scope's lock, so none can deadlock. Readers never wait
(MVCC). The transactions hold no external call (a claim is committed before the carrier or Amazon
is called). Durability is the server's (``synchronous_commit`` on by default).

The event outbox. Its ids come from a sequence, so side by side transactions can commit them out
of order: id 41 may become visible after id 42. A consumer reading on from a cursor would skip
41, so :meth:`PostgresLedger.events` reads only up to a settled id: the newest id seen while
holding the write lock exclusive, when no transaction that could still commit a smaller one is in
flight.
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .. import clock as daemon_clock
from ..model import utcnow
from .base import LedgerUnreachable, LedgerUrlError
from .crypto import PiiCipher
from .migrations import SchemaError
from .sql import ConnectionHandle, SqlLedger

# The ledger's one write lock: a fixed 64-bit advisory lock key (advisory locks are per database).
WRITE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"mfn-connector ledger write").digest()[:8], "big",
                                signed=True)
CONNECT_TIMEOUT_S = 10
# On every connection: TCP keepalives notice a peer gone (about a minute) on an idle one (the
# liveness lock's is idle for the worker's whole life), and tcp_user_timeout (ms) ends a statement
# sent on a half-open one in 10 s instead of the system's ~15 minutes of retransmissions.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
             "tcp_user_timeout": 10_000}
# A write transaction sends its statements back to back (it never holds a network call), so a
# session idle inside one this long is a worker frozen or cut off mid-step (SIGSTOP, a suspended
# VM, a partition): the server ends it, and with it the write lock every heartbeat waits for.
IDLE_IN_TRANSACTION_S = 5


# admin_shutdown, crash_shutdown, cannot_connect_now, idle_in_transaction_session_timeout
_ROW_RIGHTS = ("SELECT", "INSERT", "UPDATE", "DELETE")  # what a worker's role needs on each table
_SERVER_ENDED_SESSION = frozenset({"57P01", "57P02", "57P03", "25P03"})


def _lock_key(key: str) -> int:
    """A 64-bit advisory lock key for ``key`` (never the write lock's)."""
    value = int.from_bytes(hashlib.sha256(b"mfn-connector:" + key.encode()).digest()[:8], "big", signed=True)
    return value if value != WRITE_LOCK_KEY else value + 1


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders to ``%s`` and a literal ``%`` to ``%%``, outside quoted strings."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class Row:
    """A result row readable by column name and by position, like ``sqlite3.Row``."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    # The names straight from the result, and their index built once per query shape: going through
    # cursor.description made a Column object per column on every statement (a fifth of its cost).
    result = cursor.pgresult
    names = tuple(result.fname(i) or b"" for i in range(result.nfields)) if result is not None else ()
    index = _column_index(names)
    return lambda values: Row(values, index)


@functools.lru_cache(maxsize=512)
def _column_index(names: tuple[bytes, ...]) -> dict[str, int]:
    return {name.decode(): i for i, name in enumerate(names)}


class _Connection:
    """A psycopg connection that speaks the ledger's ``?`` SQL (``execute``/``executemany``)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(to_pyformat(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        cursor.executemany(to_pyformat(sql), [tuple(r) for r in rows])
        return cursor

    def close(self) -> None:
        self.raw.close()


def display_url(url: str) -> str:
    """The URL's host, port and database, never its password (for messages and logs)."""
    try:
        parts = conninfo_to_dict(_plain_url(url))
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable URL)"
    if _user_info_misread(parts):
        return "postgresql://(unparseable URL)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"postgresql://{host}:{port}/{parts.get('dbname') or ''}"


def _plain_url(url: str) -> str:
    """``postgresql+psycopg://`` (SQLAlchemy's spelling) and ``postgres://`` as libpq reads them."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{_escaped_user_info(rest)}" if sep and scheme.lower().startswith("postgres") \
        else url


def _escaped_user_info(rest: str) -> str:
    """``rest`` (the URL after ``://``) with an ``@`` of the user name or password written ``%40``:
    libpq ends the user info at the first ``@`` and took the password's tail for the host (named in
    every message); the host comes after the last one, as most URL readers take it."""
    end = rest.find("/") if "/" in rest else len(rest)  # where libpq stops looking for the '@'
    user_info, at, hosts = rest[:end].rpartition("@")
    if not at or "@" not in user_info:
        return rest
    return f"{user_info.replace('@', '%40')}@{hosts}{rest[end:]}"


def _check_url(url: str) -> None:
    """LedgerUrlError for a URL libpq cannot read: its own message quotes the part it stopped at
    (the password, or the whole URL), so only the words around the quotes are kept."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        # from its first quote to its last: a password may hold a '"' itself
        reason = re.sub(r'".*"', '"..."', str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise LedgerUrlError(f"ledger URL {display_url(url)}: libpq cannot read it ({reason}); "
                             "percent-encode any '@', ':', '/', '%' in the user name and password") from None
    if _user_info_misread(parts):
        raise LedgerUrlError("ledger URL postgresql://(unparseable URL): its database name holds an '@', "
                             "so a '/' in the user name or password ended them early; percent-encode it "
                             "there as %2F")


def _user_info_misread(parts: dict[str, Any]) -> bool:
    """libpq ends a URL's user info at its first '/': a password holding one is read as host, port
    and database name -- a database name holding the '@' meant to end it."""
    return "@" in (parts.get("dbname") or "")


def _server_options(url: str) -> str:
    """The server settings of every connection, after (so over) those of the URL's own ``options``.

    READ COMMITTED whatever the server's or the URL's default: a write transaction reads after
    taking its advisory lock, and must see what the transaction before it committed. Under
    REPEATABLE READ or SERIALIZABLE its snapshot would date from before the lock's wait, so a
    claim would read a state already moved on (and fail as a serialization error, not a stale
    state), and paging events could skip one committed meanwhile."""
    own = conninfo_to_dict(url).get("options") or ""
    return (f"{own} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_S * 1000}"
            r" -c default_transaction_isolation=read\ committed").strip()


class PostgresLedger(SqlLedger):
    """:class:`~connector.ledger.base.Ledger` on a PostgreSQL database. Call :meth:`migrate` once."""

    dialect = "postgresql"
    db_errors = (psycopg.Error,)
    shared = True
    returning = True

    def __init__(self, url: str, cipher: PiiCipher, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(display_url(url), cipher, clock=clock or utcnow)
        self.url = _plain_url(url)
        _check_url(self.url)
        self._server_clock = clock is None  # leases on the server's clock unless a test sets one
        self._conn()  # fail fast: an unreachable server or a refused login is reported at start

    def _connect(self) -> _Connection:
        try:
            raw = psycopg.connect(self.url, autocommit=True, row_factory=_row_factory,
                                  connect_timeout=CONNECT_TIMEOUT_S, application_name="mfn-connector",
                                  options=_server_options(self.url), **KEEPALIVE)
        except psycopg.OperationalError as exc:
            # libpq's message names host and port but never the password
            raise LedgerUnreachable(f"ledger {self.location}: cannot connect: "
                                  f"{str(exc).strip().splitlines()[0]}") from None
        return _Connection(raw)

    def _usable(self, conn: _Connection) -> bool:
        return not (conn.raw.closed or conn.raw.broken)

    @contextmanager
    def exclusive(self, key: str) -> Iterator[bool]:
        """A session advisory lock on ``key`` for the block (try, never wait). It is released with
        the block, or by the server when this process dies and its connection closes -- so a
        killed worker's orders are free at once, and a live one's never taken."""
        lock = _lock_key(key)
        with self._pinned():  # the lock lives on this connection: no other thread may take it meanwhile
            try:
                conn = self._conn()
                got = bool(conn.execute("SELECT pg_try_advisory_lock(?)", (lock,)).fetchone()[0])
            except (psycopg.Error, ConnectionError):
                # The server dropped this thread's connection (a restart, a failover) or cannot be
                # reached: the key waits, and the thread's next statement opens a new connection.
                got = False
            try:
                yield got
            finally:
                if got and self._usable(conn):
                    try:
                        conn.execute("SELECT pg_advisory_unlock(?)", (lock,))
                    except psycopg.Error:
                        if self._usable(conn):
                            raise
                        # the connection dropped: the server ended its session, and the lock with it

    def lost_connection(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the server is gone or ended this session (a restart, a failover, an
        administrator), not that the statement failed (a lock timeout, a full disk)."""
        if isinstance(exc, LedgerUnreachable):  # a new connection refused (postgres._connect)
            return True
        if not isinstance(exc, psycopg.OperationalError):
            return False
        state = getattr(exc, "sqlstate", None)  # none: the client found the connection closed
        return state is None or state.startswith("08") or state in _SERVER_ENDED_SESSION

    def hold_worker_lock(self, worker_id: str) -> Callable[[], bool]:
        """Hold ``worker_id``'s liveness lock on a connection of its own for as long as the worker
        runs; returns a check that re-takes it if the connection was lost (True while held).
        Closing the connection (or the process dying) releases it."""
        key = _lock_key(f"worker:{worker_id}")
        held: list[ConnectionHandle] = []

        def check() -> bool:
            if self._closed:
                return False  # close() closed its connection too
            if held and held[0].conn is not None and self._still_connected(held[0].conn):
                return True  # a session's advisory lock lasts as long as the session
            if held:
                held.pop().close()
            conn = self._connect()
            if not conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]:
                conn.close()  # the dropped session lingers on the server: again at the next heartbeat
                return False
            handle = ConnectionHandle(conn)
            with self._lock:
                self._handles.add(handle)
            held.append(handle)  # a strong reference: the weak set alone would drop it
            return True

        try:
            check()
        except (psycopg.Error, ConnectionError):  # the server is away (a restart): the heartbeat retries
            pass
        return check

    def _still_connected(self, conn: _Connection) -> bool:
        """Ask the server: a connection nothing is sent on does not notice it was dropped (a
        server restart, a failover, an idle-connection timeout) and says it is fine, while its
        session's locks are gone."""
        if not self._usable(conn):
            return False
        try:
            conn.execute("SELECT 1").fetchone()
        except psycopg.Error:
            return False
        return True

    def lease_now(self, conn: _Connection | None = None) -> datetime:
        """The server's clock (shifted as the daemon's clock is by a simulation): every worker
        writes and judges leases by this one clock, whatever its own host's says."""
        if not self._server_clock:
            return self._clock()
        moment = (conn or self._conn()).execute("SELECT clock_timestamp()").fetchone()[0]
        return moment.astimezone(timezone.utc) + daemon_clock.offset()

    def _locks_held_since(self, conn: _Connection) -> datetime | None:
        """The server's start: a restart drops every session's locks, a live worker's too. (A
        failover to a standby started earlier is not seen here: a worker whose heartbeats failed
        meanwhile looks dead once they are half a lease old, and takes its lock again at its next.)"""
        if not self._server_clock:
            return None  # a test's clock: the server's start is on another
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        return started.astimezone(timezone.utc) + daemon_clock.offset()

    def _worker_alive(self, conn: _Connection, worker_id: str) -> bool | None:
        key = _lock_key(f"worker:{worker_id}")
        if conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]:
            conn.execute("SELECT pg_advisory_unlock(?)", (key,))
            return False  # nobody holds it: the worker's connection (and process) is gone
        return True

    @staticmethod
    def _no_such_table(exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.UndefinedTable)

    @staticmethod
    def _denied(exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.InsufficientPrivilege)

    @staticmethod
    def _bad_data(exc: BaseException) -> bool:
        return isinstance(exc, psycopg.DataError)

    def _check_rights(self) -> None:
        # (has_table_privilege with several privileges is true when any is held: one call each)
        lacking = [r[0] for r in self._conn().execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT ("
            + " AND ".join(f"has_table_privilege(c.oid, '{right}')" for right in _ROW_RIGHTS)
            + ") ORDER BY c.relname").fetchall()]
        if lacking:
            schema, role = self._conn().execute("SELECT current_schema(), current_user").fetchone()
            raise SchemaError(
                f"{self.location}: this role ({role}) may not read and write the ledger's table(s) "
                f"{', '.join(lacking)} (added by an upgrade after its rights were granted?): as the "
                f"schema's owner, GRANT {', '.join(_ROW_RIGHTS)} ON ALL TABLES IN SCHEMA {schema} TO "
                f"{role}, and ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {', '.join(_ROW_RIGHTS)} "
                f"ON TABLES TO {role} so the next upgrade's tables come with them")

    def why_not_migrate(self) -> str | None:
        # A migration creates tables (CREATE on the schema) and alters the existing ones (their owner)
        row = self._conn().execute(
            "SELECT current_user, has_schema_privilege(current_schema(), 'CREATE'),"
            " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            "   WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            "   AND NOT pg_has_role(c.relowner, 'USAGE'))").fetchone()
        role, may_create, not_owned = row
        if may_create and not not_owned:
            return None
        return (f"this role ({role}) " + ("does not own the ledger's tables" if may_create
                                          else "may not create tables in the ledger's schema"))

    _SKU = 'sku COLLATE "C"'  # by code point (UTF-8 bytes), not the database's locale

    def _begin_write(self, conn: _Connection, scope: str | None, lock_wait: float | None = None) -> None:
        if scope is None:
            lock = f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
        else:
            lock = (f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK_KEY}),"
                    f" pg_advisory_xact_lock({_lock_key(f'write:{scope}')})")
        if lock_wait is not None:  # a wait longer than this fails (LockNotAvailable) instead
            lock = f"SET LOCAL lock_timeout = {max(1, round(lock_wait * 1000))}; {lock}"
        try:
            # One round trip for both: with no parameters psycopg sends the text as a simple query,
            # which may hold several statements (the keys are integers we computed, not input), and
            # it never prepares a text that gave several results.
            conn.raw.execute(f"BEGIN; {lock}")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:  # the connection is gone: the server ended the transaction with it
                pass
            raise  # what went wrong, not the ROLLBACK's "the connection is closed"

    def _settled_event_id(self) -> int:
        with self._write() as conn:  # exclusive: no transaction is in flight with an older id
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
