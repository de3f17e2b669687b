"""The PostgreSQL ledger's transactions run READ COMMITTED, whatever default the server, the
database or the ledger URL sets (connector/ledger/postgres.py, _server_options)."""
from __future__ import annotations

import urllib.parse

import pytest
from cryptography.fernet import Fernet

from connector.ledger.crypto import PiiCipher
from connector.ledger.postgres import PostgresLedger


@pytest.mark.parametrize("default", ["serializable", "repeatable\\ read"])
def test_write_transactions_read_committed_whatever_the_default(postgres_server, default):
    """A DBA's (or the URL's) default isolation must not reach the ledger: under REPEATABLE READ
    a claim's snapshot would date from before its lock's wait and miss the commit it waited for."""
    postgres_server.require()
    url = postgres_server.fresh_url()
    base, _, options = url.partition("?options=")
    url = f"{base}?options=" + urllib.parse.quote(
        urllib.parse.unquote(options) + f" -c default_transaction_isolation={default}")
    ledger = PostgresLedger(url, PiiCipher([Fernet.generate_key()]))
    try:
        ledger.migrate()
        with ledger._write() as conn:
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "read committed"
    finally:
        ledger.close()
