"""A postgresql:// ledger without psycopg installed (the `postgres` extra left out of the install):
a message naming what to install, never an ImportError's traceback."""
from __future__ import annotations

import sys

import pytest
from cryptography.fernet import Fernet

from connector.ledger import open_ledger, probe_ledger

URL = "postgresql://mfn@127.0.0.1:5432/test"


@pytest.fixture
def no_psycopg(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails as if not installed
    monkeypatch.delitem(sys.modules, "connector.ledger.postgres", raising=False)
    monkeypatch.setenv("MFN_CONNECTOR_PII_KEY", Fernet.generate_key().decode())


@pytest.mark.parametrize("opening", [open_ledger, probe_ledger])
def test_a_postgresql_ledger_without_psycopg_names_the_extra(no_psycopg, opening):
    with pytest.raises(ConnectionError, match=r"mfn-connector\[postgres\]"):
        opening(URL, key_file=None)
