"""A PostgreSQL ledger whose workers log in as a role that may only read and write the tables (the
schema's owner runs the migrations): an up-to-date ledger starts, one behind stops with a message."""
from __future__ import annotations

import urllib.parse
import uuid

import psycopg
import pytest
from cryptography.fernet import Fernet

from connector.ledger import open_ledger, probe_ledger
from connector.ledger.crypto import PiiCipher
from connector.ledger.migrations import MIGRATIONS, SchemaError, latest_version
from connector.ledger.postgres import PostgresLedger

from .test_sqlite_ledger import make_order


@pytest.fixture
def ledger_schema(postgres_server) -> str:
    """A fresh schema's URL, for its owner (the server's administrator here)."""
    postgres_server.require()
    return postgres_server.fresh_url()


@pytest.fixture
def worker_role(postgres_server, ledger_schema):
    """A login role with no right on the schema yet; ``grant()`` gives it what a worker gets in
    production (rows only: no sequence grant either, identity columns need none). Yields (grant,
    its URL); dropped afterwards."""
    role = f"mfn_worker_{uuid.uuid4().hex[:8]}"
    schema = urllib.parse.unquote(ledger_schema).rsplit("search_path=", 1)[1]
    admin = psycopg.connect(postgres_server.database_url(), autocommit=True)
    admin.execute(f"CREATE ROLE {role} LOGIN")

    def grant(*, schema_version: bool = True, create: bool = False) -> None:
        admin.execute(f"GRANT {'USAGE, CREATE' if create else 'USAGE'} ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        if not schema_version:
            admin.execute(f"REVOKE SELECT ON {schema}.schema_version FROM {role}")

    parts = urllib.parse.urlsplit(ledger_schema)
    url = urllib.parse.urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    try:
        yield grant, url
    finally:
        admin.execute(f"DROP OWNED BY {role}")  # its grants, in the one database it has any
        admin.execute(f"DROP ROLE {role}")
        admin.close()


@pytest.fixture
def key(monkeypatch) -> None:
    monkeypatch.setenv("MFN_CONNECTOR_PII_KEY", Fernet.generate_key().decode())


def test_an_up_to_date_ledger_starts_with_a_role_that_only_reads_and_writes(ledger_schema, worker_role, key):
    open_ledger(ledger_schema, key_file=None).close()  # migrated (and its key sealed) by the owner
    grant, url = worker_role
    grant()
    ledger = open_ledger(url, key_file=None)
    try:
        assert ledger.schema_version() == latest_version()
        ledger.upsert_order(make_order())
        assert ledger.get_order(make_order().order_id) is not None
    finally:
        ledger.close()


@pytest.mark.parametrize("applied, create", [(0, False), (len(MIGRATIONS) - 1, False),
                                             (len(MIGRATIONS) - 1, True)],
                         ids=["empty", "one-behind", "one-behind-not-owner"])
def test_a_ledger_behind_stops_a_role_that_cannot_migrate_it_and_says_what_to_run(
        ledger_schema, worker_role, key, applied, create):
    if applied:
        owner = PostgresLedger(ledger_schema, PiiCipher([Fernet.generate_key()]))
        owner.migrate(MIGRATIONS[:applied])
        owner.close()
    grant, url = worker_role
    grant(create=create)  # create: it may add tables, not alter the owner's
    with pytest.raises(SchemaError) as refused:
        open_ledger(url, key_file=None)
    message = str(refused.value)
    assert f"schema version {applied}" in message and f"needs {latest_version()}" in message, message
    assert "mfn-connector ledger migrate" in message and "CREATE" in message, message
    assert "permission denied" in message or "must be owner" in message, message  # the server's reason
    owner = PostgresLedger(ledger_schema, PiiCipher([Fernet.generate_key()]))
    try:
        assert owner.schema_version() == applied  # nothing half done
    finally:
        owner.close()


def test_a_role_that_cannot_read_the_schema_version_is_told_which_grant_it_lacks(
        ledger_schema, worker_role, key):
    open_ledger(ledger_schema, key_file=None).close()
    grant, url = worker_role
    grant(schema_version=False)
    with pytest.raises(SchemaError, match="grant it SELECT on schema_version"):
        open_ledger(url, key_file=None)


@pytest.mark.parametrize("default_privileges", [False, True],
                         ids=["granted-before-upgrade", "default-privileges"])
def test_a_worker_whose_role_lacks_rights_on_a_table_an_upgrade_added_is_told_the_grant(
        postgres_server, ledger_schema, worker_role, key, default_privileges):
    """Granted ON ALL TABLES before an upgrade that adds a table, the worker started and failed on that
    table mid-step; it now stops at its start, naming the table and both grants. With ALTER DEFAULT
    PRIVILEGES given before the upgrade, the new table comes with its rights and the worker starts."""
    owner = PostgresLedger(ledger_schema, PiiCipher([Fernet.generate_key()]))
    owner.migrate(MIGRATIONS[:13])  # the release before the one adding the key check's table (14)
    owner.close()
    grant, url = worker_role
    grant()
    role = urllib.parse.urlsplit(url).username
    if default_privileges:
        schema = urllib.parse.unquote(ledger_schema).rsplit("search_path=", 1)[1]
        with psycopg.connect(postgres_server.database_url(), autocommit=True) as admin:
            admin.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE"
                          f" ON TABLES TO {role}")
    open_ledger(ledger_schema, key_file=None).close()  # the upgrade: the owner runs `ledger migrate`
    if default_privileges:
        open_ledger(url, key_file=None).close()
        return
    with pytest.raises(SchemaError) as refused:
        open_ledger(url, key_file=None)
    message = str(refused.value)
    assert "pii_key_check" in message and f"TO {role}" in message, message
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES" in message, message
    assert "ALTER DEFAULT PRIVILEGES" in message, message


@pytest.mark.parametrize("create", [False, True], ids=["rows-only", "create-not-owner"])
def test_config_check_of_a_ledger_behind_says_this_role_cannot_migrate_it(ledger_schema, worker_role, key,
                                                                          create):
    """``config check`` said a ledger behind had migrations "to apply at the next start" whatever the
    role; for a role that cannot apply them, that start stops. The check now says so, and what to run."""
    owner = PostgresLedger(ledger_schema, PiiCipher([Fernet.generate_key()]))
    owner.migrate(MIGRATIONS[:-1])
    owner.close()
    grant, url = worker_role
    grant(create=create)
    line = probe_ledger(url, key_file=None)
    assert "at the next start" not in line, line
    assert "may not apply" in line and "mfn-connector ledger migrate" in line, line
    assert "at the next start" in probe_ledger(ledger_schema, key_file=None)  # the owner may
