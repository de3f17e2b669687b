"""The embedded ledger store: SQLite in WAL mode (the queries are in :mod:`connector.ledger.sql`).

Durability: ``synchronous=FULL`` -- a committed transition (a claim on a label that costs money)
survives power loss, not only a killed process. Concurrency: one connection per thread, short
explicit transactions, ``BEGIN IMMEDIATE`` (the database write lock taken up front) for every
read-then-write; other writers wait up to ``busy_timeout`` (10 s).
"""
from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from ..model import utcnow
from .base import LedgerInUse, LedgerUnreachable
from .crypto import PiiCipher
from .migrations import MIGRATIONS, Migration
from .sql import SqlLedger

BUSY_TIMEOUT_S = 10.0

try:  # Linux's open file description locks: owned by a descriptor, not by the process
    from fcntl import F_OFD_SETLK, F_WRLCK
    from fcntl import fcntl as _fcntl
except ImportError:  # elsewhere the store promises one daemon per file, and no more
    F_OFD_SETLK = None
KEY_LOCKS = F_OFD_SETLK is not None and sys.maxsize > 2**32  # _try_lock packs a 64-bit struct flock


def _ensure_private_file(path: str) -> None:
    """Create the database file owner-only (0600) before SQLite does; WAL/SHM files inherit it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteLedger(SqlLedger):
    """:class:`~connector.ledger.base.Ledger` on a SQLite file. Call :meth:`migrate` once before use."""

    dialect = "sqlite"
    db_errors = (sqlite3.Error,)
    returning = sqlite3.sqlite_version_info >= (3, 35, 0)  # older builds re-read the row instead

    def __init__(self, path: str | os.PathLike[str], cipher: PiiCipher, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        path = os.fspath(path)
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError("SqliteLedger needs a file path (each thread opens its own connection, "
                             "so ':memory:' and URIs are not supported)")
        super().__init__(path, cipher, clock=clock)
        self.path = path
        self._daemon_lock: int | None = None
        try:
            _ensure_private_file(path)
            self._conn()  # fail fast on a bad path or a file system without WAL support
            with self.exclusive("ledger:open"):  # and on a key lock file this process cannot use
                pass
        except (OSError, sqlite3.Error) as exc:  # a read-only or missing directory, say
            raise LedgerUnreachable(f"ledger {path}: cannot open: {exc}") from None

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> int:
        """A statement of a migration failing is a SchemaError; the file refusing the transaction
        itself (locked past the busy timeout by a daemon migrating a large ledger, a full disk, a
        read-only file) is the ledger's to report, as a file that does not open is."""
        try:
            return super().migrate(migrations)
        except sqlite3.OperationalError as exc:
            raise LedgerUnreachable(f"ledger {self.path}: cannot migrate: {exc}") from None

    def hold_daemon_lock(self) -> None:
        """Two daemons on one SQLite file would both poll, buy and confirm the same orders (each
        claim is single, but a label one bought can be lost to the other's recovery): the second
        is refused. An OS lock on ``<ledger>.daemon.lock``, released when this process closes the
        ledger or dies."""
        if self._daemon_lock is not None or sys.platform == "win32":
            return
        import fcntl

        fd = os.open(self.path + ".daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 20, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise LedgerInUse(f"ledger {self.path}: another daemon (pid {holder}) is working on it; stop "
                              "it first (several daemons need a PostgreSQL ledger: ledger.url: "
                              "postgresql://...)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._daemon_lock = fd

    @contextmanager
    def exclusive(self, key: str) -> Iterator[bool]:
        """Whether this process may work on ``key`` (an order, a feed) while the block runs: False
        when another holder on this file has it -- a thread of the daemon, or a command run beside
        it (``orders void``). A lock on one byte of ``<ledger>.keys.lock``, at an offset drawn from
        the key (a 62-bit hash: two keys practically never share one), held by a descriptor of its
        own: it goes with the block, or with the process if that dies. ConnectionError when the
        file cannot be opened or locked (made by another user, say)."""
        if not KEY_LOCKS:
            yield True
            return
        path = self.path + ".keys.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerUnreachable(f"cannot open {path}: {exc.strerror or exc}") from None
        try:
            try:
                got = _try_lock(fd, key)
            except OSError as exc:  # a file system without these locks
                raise LedgerUnreachable(f"cannot lock {path}: {exc.strerror or exc}") from None
            yield got
        finally:
            os.close(fd)  # the lock goes with the descriptor

    def close(self) -> None:
        super().close()
        if self._daemon_lock is not None:
            os.close(self._daemon_lock)  # the lock goes with the descriptor
            self._daemon_lock = None

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so close() can close every thread's connection.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); put "
                                   "the ledger on a local file system")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")  # purged bytes are zeroed, not just freed
            # Sorts in memory: with a file as its temporary store, SQLite 3.40 spent ~35 us on each
            # sort past the third open in one statement, even an empty one (the dispatcher's read).
            conn.execute("PRAGMA temp_store = MEMORY")
        except BaseException:
            conn.close()
            raise
        return conn

    def _begin_write(self, conn: sqlite3.Connection, scope: str | None,
                     lock_wait: float | None = None) -> None:
        # one writer at a time, whatever the scope; busy_timeout bounds every wait (one daemon per file)
        conn.execute("BEGIN IMMEDIATE")

    @staticmethod
    def _no_such_table(exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such table")


def _try_lock(fd: int, key: str) -> bool:
    """Take the byte of ``key`` in the file open at ``fd``, without waiting (``struct flock``:
    type, whence, start, length, pid -- 0 for an open file description lock)."""
    offset = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") >> 2
    try:
        _fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", F_WRLCK, os.SEEK_SET, offset, 1, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):  # another descriptor holds it
            return False
        raise
    return True
