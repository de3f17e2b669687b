"""The ledger: durable order and package state, driven by compare-and-set transitions.

``open_ledger(url, ...)`` is the entry point; the contract lives in :mod:`connector.ledger.base`.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import (
    ACTIVE_ORDER_STATES,
    NOTHING_TO_SHIP_STATES,
    SHIPPED_ORDER_STATES,
    TERMINAL_PACKAGE_STATES,
    TRACKED_PACKAGE_STATES,
    Alert,
    CorruptRecordError,
    Ledger,
    LedgerInUse,
    OrderFinishedError,
    OrderRecord,
    OrderState,
    Package,
    PackageState,
    StaleStateError,
    TrackingRecord,
)

__all__ = [
    "ACTIVE_ORDER_STATES", "NOTHING_TO_SHIP_STATES", "SHIPPED_ORDER_STATES", "TERMINAL_PACKAGE_STATES",
    "TRACKED_PACKAGE_STATES",
    "Alert", "CorruptRecordError", "Ledger", "LedgerInUse", "OrderFinishedError", "OrderRecord",
    "OrderState", "Package", "PackageState", "StaleStateError", "TrackingRecord", "open_ledger",
    "probe_ledger", "refuse_a_new_key_over_sealed_data", "sqlite_path",
]

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str:
    """The file path in ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
    if not url.startswith(_SQLITE_PREFIX):
        raise ValueError(f"not a SQLite ledger URL: {url!r} (expected sqlite:///path/to/ledger.db)")
    path = url[len(_SQLITE_PREFIX):]
    if "?" in path or "#" in path:
        raise ValueError(f"ledger URL {url!r}: query strings and fragments are not supported")
    if not path or path == ":memory:":
        raise ValueError(f"ledger URL {url!r} must name a database file "
                         "(an in-memory database would lose every label claim)")
    return str(Path(path).expanduser())


def open_ledger(url: str, *, key_file: str | os.PathLike[str] | None, create_key: bool = False) -> Ledger:
    """Open (and migrate) the ledger at ``url`` with the buyer-PII key from the environment
    (``MFN_CONNECTOR_PII_KEY``) or ``key_file``.

    ``sqlite:///path.db`` (relative to the working directory) or ``sqlite:////abs/path.db``, the
    parent directory created (mode 0700); or ``postgresql://user@host:port/database`` (libpq's URL,
    query options such as ``sslmode`` included), shared by several daemons. ``create_key`` creates
    a missing key file (sandbox), for a ledger that holds no buyer data yet. Raises ValueError for
    an unsupported URL, ConnectionError for an unreachable PostgreSQL server, PiiKeyError for a
    missing/unsafe key and PiiDecryptError when the key cannot read the buyer data already stored.
    """
    from .crypto import PiiCipher, load_keys

    if create_key:
        refuse_a_new_key_over_sealed_data(url, key_file)
    if _store_kind(url) == "postgresql":
        from .postgres import PostgresLedger

        cipher = PiiCipher(load_keys(key_file=key_file, create=create_key))
        return _migrated(PostgresLedger(url, cipher))
    path = sqlite_path(url)

    from .sqlite import SqliteLedger

    cipher = PiiCipher(load_keys(key_file=key_file, create=create_key))
    parent = Path(path).parent
    if not parent.exists():
        os.makedirs(parent, mode=0o700, exist_ok=True)
    return _migrated(SqliteLedger(path, cipher))


def _key_file_missing(key_file: str | os.PathLike[str] | None) -> bool:
    from .crypto import DEFAULT_KEY_ENV

    return (key_file is not None and not os.environ.get(DEFAULT_KEY_ENV, "").strip()
            and not Path(key_file).expanduser().exists())


def refuse_a_new_key_over_sealed_data(url: str, key_file: str | os.PathLike[str] | None) -> None:
    """PiiKeyError when ``key_file`` is missing (and no key is in the environment) and the ledger
    already holds buyer data: sealed with a key now gone, which a new one would read none of.
    Refused before anything is written (the key file included), with what to do; a new ledger, or
    one without buyer data, may have a key made for it (``ledger.create_pii_key``)."""
    from cryptography.fernet import Fernet

    from .crypto import PiiCipher, PiiDecryptError, PiiKeyError

    if not _key_file_missing(key_file):
        return
    cipher = PiiCipher([Fernet.generate_key()])  # reads nothing stored: any address fails it
    if _store_kind(url) == "postgresql":
        from .postgres import PostgresLedger

        ledger: Ledger = PostgresLedger(url, cipher)
    else:
        path = sqlite_path(url)
        if not Path(path).exists():
            return
        from .sqlite import SqliteLedger

        ledger = SqliteLedger(path, cipher)
    try:
        if ledger.schema_version():
            ledger.check_key()
    except PiiDecryptError:
        raise PiiKeyError(f"PII key file {Path(str(key_file)).expanduser()} does not exist, but the ledger "
                          f"{ledger.location} holds buyer data sealed with a key: put that key file "
                          "back (ledger.create_pii_key makes a key only for a ledger without buyer "
                          "data)") from None
    finally:
        ledger.close()


def probe_ledger(url: str, *, key_file: str | os.PathLike[str] | None) -> str:
    """What :func:`open_ledger` would find at ``url``, creating, migrating and writing nothing
    (``config check``): a line saying what is there. Raises what ``open_ledger`` would: ValueError
    (the URL), ConnectionError (no PostgreSQL server), SchemaError (a schema newer than this code),
    PiiKeyError and PiiDecryptError (a key that cannot read the buyer data stored). ``key_file``
    None: no key to try (one the daemon will create), so the stored data is not read."""
    from cryptography.fernet import Fernet

    from .crypto import PiiCipher, load_keys
    from .migrations import latest_version, next_pending

    kind = _store_kind(url)
    keys = load_keys(key_file=key_file) if key_file is not None else None
    cipher = PiiCipher(keys or [Fernet.generate_key()])  # no key yet: one that is never used
    if kind == "postgresql":
        from .postgres import PostgresLedger

        ledger: Ledger = PostgresLedger(url, cipher)
    else:
        path = sqlite_path(url)
        if not Path(path).exists():
            return f"{path}: not created yet (the daemon creates it at its first start)"
        from .sqlite import SqliteLedger

        ledger = SqliteLedger(path, cipher)
    try:
        current = ledger.schema_version()
        next_pending(current)  # SchemaError when the database is newer than this code
        if current and keys is not None:
            ledger.check_key()
        behind = latest_version() - current
        return f"{ledger.location}: schema {current}" + (
            f" ({behind} migration(s) to apply at the next start)" if behind else ", up to date")
    finally:
        ledger.close()


def _store_kind(url: str) -> str:
    """``postgresql`` or ``sqlite``, by the URL's scheme; ValueError for any other."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return "postgresql"
    if scheme == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported ledger URL {url!r}: expected sqlite:///path/to/ledger.db or "
                     "postgresql://user@host:5432/database")


def _migrated(ledger: Ledger) -> Ledger:
    try:
        ledger.migrate()
        ledger.check_key()
    except BaseException:
        ledger.close()
        raise
    return ledger
