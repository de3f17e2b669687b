"""Ledger stores for the tests here: each test using ``make_store`` runs on SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connector.ledger.crypto import PiiCipher
from connector.ledger.postgres import PostgresLedger
from connector.ledger.sql import SqlLedger
from connector.ledger.sqlite import SqliteLedger


def store(url: str, cipher: PiiCipher, **kw) -> SqlLedger:
    """A ledger store for ``url`` (a SQLite file or a PostgreSQL database), not migrated."""
    if url.startswith("sqlite:///"):
        return SqliteLedger(url[len("sqlite:///"):], cipher, **kw)
    return PostgresLedger(url, cipher, **kw)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The SQLite file of this test's ledger; a test asking for it runs on SQLite alone."""
    return tmp_path / "ledger.db"


@pytest.fixture
def make_store(ledger_url: str) -> Callable[..., SqlLedger]:
    """Open (and migrate) this test's ledger; every call opens the same database."""
    opened: list[SqlLedger] = []

    def make(cipher: PiiCipher, **kw) -> SqlLedger:
        led = store(ledger_url, cipher, **kw)
        led.migrate()
        opened.append(led)
        return led

    yield make
    for led in opened:
        led.close()
