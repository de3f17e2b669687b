"""A PostgreSQL server for the tests that run against both ledger stores.

The server is the one at ``MFN_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/
postgres``, trust auth). Each test session creates a database of its own and drops it at the end;
each test gets a fresh schema in it (search_path in the URL), so tests never see each other's rows.
Without a server the PostgreSQL cases skip, naming the server they looked for -- except in CI
(``CI=true``), where a missing server is a failure: those cases must run there.
"""
from __future__ import annotations

import itertools
import os
import urllib.parse
import uuid

import pytest

ADMIN_URL = os.environ.get("MFN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresServer:
    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.database = ""
        self._schemas = itertools.count(1)
        self.error = ""

    def start(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
                self.database = f"mfn_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                conn.execute(f'CREATE DATABASE "{self.database}"')
        except psycopg.OperationalError as exc:
            self.error = str(exc).strip().splitlines()[0]

    def database_url(self, database: str | None = None) -> str:
        parts = urllib.parse.urlsplit(self.admin_url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + (database or self.database), query=""))

    def fresh_url(self) -> str:
        """A URL of the session database whose search_path is a new, empty schema."""
        import psycopg

        schema = f"t{next(self._schemas)}"
        with psycopg.connect(self.database_url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return self.database_url() + "?options=" + urllib.parse.quote(f"-csearch_path={schema}")

    def stop(self) -> None:
        if not self.database:
            return
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def require(self) -> None:
        """Skip (fail in CI) when the server is not there."""
        if self.database:
            return
        where = urllib.parse.urlsplit(self.admin_url)._replace(netloc=urllib.parse.urlsplit(
            self.admin_url).hostname + ":" + str(urllib.parse.urlsplit(self.admin_url).port or 5432))
        message = (f"no PostgreSQL server at {where.netloc} ({self.error}); set MFN_TEST_POSTGRES_URL "
                   "to run the PostgreSQL ledger tests")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
