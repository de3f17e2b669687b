"""The ledger: durable order and package state, driven by compare-and-set transitions.

``open_ledger(url, ...)`` is the entry point; the contract lives in :mod:`connector.ledger.base`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .base import (
    ACTIVE_ORDER_STATES,
    BOUGHT_PACKAGE_STATES,
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    TERMINAL_PACKAGE_STATES,
    TRACKED_PACKAGE_STATES,
    Alert,
    CorruptRecordError,
    Ledger,
    LedgerInUse,
    LedgerUnreachable,
    LedgerUrlError,
    OrderFinishedError,
    OrderRecord,
    OrderState,
    Package,
    PackageChange,
    PackageState,
    StaleStateError,
    TrackingRecord,
)

__all__ = [
    "ACTIVE_ORDER_STATES", "BOUGHT_PACKAGE_STATES", "NOTHING_TO_SHIP_STATES", "SHIPPED_ORDER_STATES",
    "TERMINAL_PACKAGE_STATES", "TRACKED_PACKAGE_STATES",
    "Alert", "CorruptRecordError", "Ledger", "LedgerInUse", "LedgerUnreachable", "LedgerUrlError",
    "OrderFinishedError",
    "OrderRecord",
    "OrderState", "Package", "PackageChange", "PackageState", "StaleStateError", "TrackingRecord",
    "open_ledger", "probe_ledger", "sqlite_path", "stored_schema_version",
]

if TYPE_CHECKING:
    from .crypto import PiiCipher

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str:
    """The file path in ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
    if not url.startswith(_SQLITE_PREFIX):
        raise LedgerUrlError(f"not a SQLite ledger URL: {url!r} (expected sqlite:///path/to/ledger.db)")
    path = url[len(_SQLITE_PREFIX):]
    if "?" in path or "#" in path:
        raise LedgerUrlError(f"ledger URL {url!r}: query strings and fragments are not supported")
    if not path or path == ":memory:":
        raise LedgerUrlError(f"ledger URL {url!r} must name a database file "
                             "(an in-memory database would lose every label claim)")
    return str(Path(path).expanduser())


def open_ledger(url: str, *, key_file: str | os.PathLike[str] | None, create_key: bool = False,
                key_check: bool = True) -> Ledger:
    """Open (and migrate) the ledger at ``url`` with the buyer-PII key from the environment
    (``MFN_CONNECTOR_PII_KEY``) or ``key_file``.

    ``sqlite:///path.db`` (relative to the working directory) or ``sqlite:////abs/path.db``, the
    parent directory created (mode 0700); or ``postgresql://user@host:port/database`` (libpq's URL,
    query options such as ``sslmode`` included), shared by several daemons. ``create_key`` creates
    a missing key file (sandbox), for a ledger that holds no buyer data yet. Raises ValueError for
    an unsupported URL, ConnectionError for an unreachable PostgreSQL server, PiiKeyError for a
    missing/unsafe key and PiiDecryptError when the key is not the ledger's (it cannot read the
    buyer data stored, or the key check sealed at its first start); ``key_check=False`` skips that
    last check (``pii adopt-key``).
    """
    from .crypto import PiiCipher, load_keys

    if create_key and _key_file_missing(key_file):  # a key is made only for a ledger without one
        store = _existing_store(url, _no_key())
        if store is not None:
            try:
                _refuse_a_new_key(store, key_file, replacing=not key_check)
            finally:
                store.close()
    if _store_kind(url) == "postgresql":
        cipher = PiiCipher(load_keys(key_file=key_file, create=create_key))
        return _migrated(_postgres_ledger()(url, cipher), key_check=key_check)
    path = sqlite_path(url)

    from .sqlite import SqliteLedger

    cipher = PiiCipher(load_keys(key_file=key_file, create=create_key))
    parent = Path(path).parent
    if not parent.exists():
        os.makedirs(parent, mode=0o700, exist_ok=True)
    return _migrated(SqliteLedger(path, cipher), key_check=key_check)


def _key_file_missing(key_file: str | os.PathLike[str] | None) -> bool:
    """No key in the environment and no key file: one ``create_key`` would make."""
    from .crypto import DEFAULT_KEY_ENV

    return (key_file is not None and not os.environ.get(DEFAULT_KEY_ENV, "").strip()
            and not Path(key_file).expanduser().exists())


def _no_key() -> PiiCipher:
    """A cipher with a key of its own: it reads nothing stored (any sealed address fails it)."""
    from cryptography.fernet import Fernet

    from .crypto import PiiCipher

    return PiiCipher([Fernet.generate_key()])


def _existing_store(url: str, cipher: PiiCipher) -> Ledger | None:
    """The store at ``url``, neither created nor migrated; None for a SQLite file not made yet."""
    if _store_kind(url) == "postgresql":
        return _postgres_ledger()(url, cipher)
    path = sqlite_path(url)
    if not Path(path).exists():
        return None
    from .sqlite import SqliteLedger

    return SqliteLedger(path, cipher)


def _postgres_ledger() -> type[Ledger]:
    """The PostgreSQL store; a ConnectionError naming the extra to install when psycopg is missing
    (`pip install mfn-connector` alone does not bring it), as the CLI reports an unreachable server."""
    try:
        from .postgres import PostgresLedger
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "psycopg":
            raise
        raise ConnectionError("a postgresql:// ledger needs psycopg, which is not installed: "
                              "pip install 'mfn-connector[postgres]'") from None
    return PostgresLedger


def _refuse_a_new_key(store: Ledger, key_file: str | os.PathLike[str] | None, *,
                      replacing: bool = False) -> None:
    """PiiKeyError when ``store`` (opened with :func:`_no_key`) holds buyer data (sealed with a key
    now gone: a new key would read none of it), or has a key already (its key check: another
    worker may be sealing with it right now). ``replacing``: ``pii adopt-key`` is making the new
    key the ledger's on purpose, which only buyer data stops."""
    from .crypto import PiiKeyError

    if not store.schema_version():
        return
    missing = (f"PII key file {Path(str(key_file)).expanduser()} does not exist, but the ledger "
               f"{store.location}")
    if store.holds_buyer_data():
        raise PiiKeyError(f"{missing} holds buyer data sealed with a key: put that key file back "
                          "(ledger.create_pii_key makes a key only for a ledger without one)")
    if not replacing and store.has_key_check():
        raise PiiKeyError(f"{missing} was started with a key: put that key file back (every worker needs "
                          "the same one); if it is lost, 'mfn-connector pii adopt-key' makes a new one "
                          "the ledger's (it holds no buyer data)")


def probe_ledger(url: str, *, key_file: str | os.PathLike[str] | None, create_key: bool = False) -> str:
    """What :func:`open_ledger` (given the same arguments) would find at ``url``, creating,
    migrating and writing nothing (``config check``): a line saying what is there. Raises what
    ``open_ledger`` would: ValueError (the URL), ConnectionError (no PostgreSQL server),
    SchemaError (a schema newer than this code), PiiKeyError (a key missing, or one to make for a
    ledger that holds buyer data) and PiiDecryptError (a key that cannot read the buyer data)."""
    from .crypto import PiiCipher, load_keys
    from .migrations import latest_version, next_pending

    _store_kind(url)  # ValueError for a URL no store takes, before anything else
    to_make = create_key and _key_file_missing(key_file)
    store = _existing_store(url, _no_key() if to_make else PiiCipher(load_keys(key_file=key_file)))
    if store is None:
        return f"{sqlite_path(url)}: not created yet (the daemon creates it at its first start)"
    try:
        current = store.schema_version()
        next_pending(current)  # SchemaError when the database is newer than this code
        if to_make:
            _refuse_a_new_key(store, key_file)
        elif current:
            store.check_key(seal=False)
        behind = latest_version() - current
        if not behind:
            return f"{store.location}: schema {current}, up to date"
        refused = store.why_not_migrate()
        return f"{store.location}: schema {current} ({behind} migration(s) " + (
            f"to apply: {refused}, so it may not apply them and a start stops; run 'mfn-connector ledger "
            "migrate' with a ledger.url naming the role that owns them)" if refused
            else "to apply at the next start)")
    finally:
        store.close()


def stored_schema_version(url: str) -> int:
    """The schema version of the ledger at ``url`` as it is, neither created nor migrated (0: none
    yet); read before ``open_ledger`` migrates it, it tells how many migrations that applied."""
    store = _existing_store(url, _no_key())  # reads no buyer data
    if store is None:
        return 0
    try:
        return store.schema_version()
    finally:
        store.close()


def _store_kind(url: str) -> str:
    """``postgresql`` or ``sqlite``, by the URL's scheme; ValueError for any other."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return "postgresql"
    if scheme == "sqlite":
        return "sqlite"
    raise LedgerUrlError(f"unsupported ledger URL {url!r}: expected sqlite:///path/to/ledger.db or "
                         "postgresql://user@host:5432/database")


def _migrated(ledger: Ledger, *, key_check: bool = True) -> Ledger:
    try:
        ledger.migrate()
        if key_check:
            ledger.check_key()
    except BaseException:
        ledger.close()
        raise
    return ledger
