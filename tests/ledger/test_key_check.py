"""The ledger knows its PII key from its first start: a daemon with another key refuses it even
before any address is stored (two workers with keys of their own would each seal addresses the
other cannot read), on SQLite and PostgreSQL alike."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from connector.ledger import open_ledger
from connector.ledger.crypto import PiiCipher, PiiDecryptError

from .test_sqlite_ledger import make_order


def test_a_second_worker_with_its_own_key_is_refused_on_an_empty_ledger(make_store) -> None:
    first = make_store(PiiCipher([Fernet.generate_key()]))
    first.check_key()  # the first to start seals the key check
    second = make_store(PiiCipher([Fernet.generate_key()]))
    assert not second.holds_buyer_data()
    with pytest.raises(PiiDecryptError, match="give every worker the same key"):
        second.check_key()
    first.upsert_order(make_order())  # the first goes on sealing with its key
    assert first.get_order(make_order().order_id).order.ship_to is not None


class _LosesTheSchemaVersionRead:
    """A connection whose read of the schema version fails as a dropped one does (a server restart)."""

    def __init__(self, conn, error: BaseException) -> None:
        self._conn, self._error = conn, error

    def execute(self, sql: str, params=()):
        if "FROM schema_version" in sql:
            raise self._error
        return self._conn.execute(sql, params)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


def test_a_failed_read_of_the_schema_version_never_skips_the_key_check(make_store, monkeypatch) -> None:
    """Read as 'no schema yet', it skipped the key check: a worker with a key of its own started."""
    first = make_store(PiiCipher([Fernet.generate_key()]))
    first.check_key()
    second = make_store(PiiCipher([Fernet.generate_key()]))
    if second.dialect == "sqlite":
        import sqlite3
        lost: Exception = sqlite3.OperationalError("disk I/O error")
    else:
        import psycopg
        lost = psycopg.OperationalError("server closed the connection unexpectedly")
    real_conn = second._conn
    monkeypatch.setattr(second, "_conn", lambda: _LosesTheSchemaVersionRead(real_conn(), lost))
    with pytest.raises((PiiDecryptError, *second.db_errors)):
        second.check_key()
    with pytest.raises(second.db_errors):
        second.has_key_check()


def test_a_key_rotation_reseals_the_key_check_so_the_old_key_can_go(make_store) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    ledger = make_store(PiiCipher([old]))
    ledger.check_key()
    ledger.upsert_order(make_order())
    rotating = make_store(PiiCipher([new, old]))
    rotating.check_key()
    assert rotating.rotate_pii() == 1
    make_store(PiiCipher([new])).check_key()  # the old key removed: the ledger still opens
    with pytest.raises(PiiDecryptError):
        make_store(PiiCipher([old])).check_key()


def test_an_address_copied_onto_the_newest_order_does_not_refuse_the_right_key(make_store) -> None:
    """The newest address is read to judge the key: one the key opens but that names another order
    (a row copied onto another by hand) is that order's problem -- held when it is driven -- and no
    reason to tell the operator the key is wrong and start no worker at all."""
    key = Fernet.generate_key()
    ledger = make_store(PiiCipher([key]))
    ledger.check_key()
    ledger.upsert_order(make_order("111-0000001-0000001"))
    ledger.upsert_order(make_order("111-0000001-0000002"))
    with ledger._write() as conn:
        newest, other = (r["order_id"] for r in conn.execute(
            "SELECT order_id FROM orders ORDER BY created_at DESC, order_id DESC").fetchall())
        conn.execute("UPDATE orders SET pii = (SELECT pii FROM orders WHERE order_id = ?) WHERE order_id = ?",
                     (other, newest))
    restarted = make_store(PiiCipher([key]))
    restarted.check_key()  # the right key
    with pytest.raises(PiiDecryptError, match="belongs to another order"):
        restarted.get_order(newest)  # still caught where it matters
    with pytest.raises(PiiDecryptError, match="cannot read buyer data"):
        make_store(PiiCipher([Fernet.generate_key()])).check_key()  # and a wrong key still refused


def test_another_key_is_adopted_only_while_no_buyer_data_is_stored(make_store) -> None:
    ledger = make_store(PiiCipher([Fernet.generate_key()]))
    ledger.check_key()
    ledger.upsert_order(make_order())
    lost = make_store(PiiCipher([Fernet.generate_key()]))
    assert not lost.adopt_key()  # that data needs its own key
    with pytest.raises(PiiDecryptError):
        lost.check_key()
    ledger.purge_pii([make_order().order_id])
    assert lost.adopt_key()
    lost.check_key()


def test_config_checks_probe_writes_no_key_check(tmp_path) -> None:
    from connector.ledger import probe_ledger

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    key_file = tmp_path / "pii.key"
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o600)
    ledger = open_ledger(url, key_file=key_file)
    ledger.close()
    other = tmp_path / "other.key"
    other.write_bytes(Fernet.generate_key())
    other.chmod(0o600)
    with pytest.raises(PiiDecryptError, match="not the key this ledger seals"):
        probe_ledger(url, key_file=other)
    with pytest.raises(PiiDecryptError, match="not the key this ledger seals"):
        open_ledger(url, key_file=other)
    assert "up to date" in probe_ledger(url, key_file=key_file)


def test_create_pii_key_never_replaces_the_key_a_ledger_was_started_with(tmp_path) -> None:
    """The sandbox's create_pii_key makes a key only for a ledger that has none: not for one whose
    key file is missing here while another worker (or this host before) seals with its own, even
    with no address stored yet. The key made on purpose ('pii adopt-key') is the way out."""
    from connector.ledger.crypto import PiiKeyError

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first, second = tmp_path / "a.key", tmp_path / "b.key"
    open_ledger(url, key_file=first, create_key=True).close()
    with pytest.raises(PiiKeyError, match="was started with a key: put that key file back"):
        open_ledger(url, key_file=second, create_key=True)
    assert not second.exists()  # refused before a key was made
    ledger = open_ledger(url, key_file=first, create_key=True)  # the first still opens and seals
    try:
        ledger.upsert_order(make_order())
    finally:
        ledger.close()
    open_ledger(url, key_file=first).close()
    first.unlink()  # lost, with buyer data stored: refused, adopted or not
    with pytest.raises(PiiKeyError, match="holds buyer data"):
        open_ledger(url, key_file=first, create_key=True, key_check=False)


def test_a_lost_key_with_nothing_stored_is_replaced_only_on_purpose(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    key_file = tmp_path / "pii.key"
    open_ledger(url, key_file=key_file, create_key=True).close()
    key_file.unlink()
    adopting = open_ledger(url, key_file=key_file, create_key=True, key_check=False)  # pii adopt-key
    try:
        assert adopting.adopt_key()
    finally:
        adopting.close()
    ledger = open_ledger(url, key_file=key_file)
    try:
        ledger.upsert_order(make_order())
        assert ledger.get_order(make_order().order_id).order.ship_to is not None
    finally:
        ledger.close()


def test_addresses_sealed_with_a_key_lost_for_good_are_forgotten_and_the_labels_stay(make_store,
                                                                                    monkeypatch) -> None:
    """The old key is gone and addresses sealed with it are stored: no worker starts, and adopting
    a key needs a ledger without buyer data. Forgetting the addresses no configured key reads is
    the way on: their orders keep their packages and labels (the retention erases those later),
    an order not shipped yet takes its address again from Amazon's next copy of it, and the
    configured key becomes the ledger's."""
    from connector.ledger import OrderState, PackageState

    from .test_sqlite_ledger import ITEMS

    monkeypatch.setattr("connector.ledger.sql._SQL_CHUNK", 2)  # three orders: two chunks
    old = make_store(PiiCipher([Fernet.generate_key()]))
    old.check_key()
    waiting, labelled, kept = "111-0000001-0000001", "111-0000001-0000002", "111-0000001-0000003"
    old.upsert_order(make_order(waiting))
    old.upsert_order(make_order(labelled))
    package = old.plan_package(labelled, "1", f"MFN-{labelled}-1", "yunexpress", "AYPZXR", ITEMS)
    package = old.advance(package, PackageState.PLANNED, PackageState.LABEL_CLAIMED, OrderState.LABEL_CLAIMED)
    old.advance(package, PackageState.LABEL_CLAIMED, PackageState.LABELED, OrderState.LABELED,
                tracking_number="YT1", label_path="/labels/1.pdf")
    new = make_store(PiiCipher([Fernet.generate_key()]))
    new.upsert_order(make_order(kept))  # sealed with the configured key: it stays
    with pytest.raises(PiiDecryptError):
        new.check_key()

    assert new.unreadable_addresses() == [waiting, labelled]  # read only: asked again, the same
    assert new.unreadable_addresses() == [waiting, labelled]
    assert new.forget_addresses() == [waiting, labelled]
    new.check_key()  # a worker with the configured key starts
    assert new.forget_addresses() == []  # run again: nothing left to forget
    forgotten = new.get_order(labelled)
    assert forgotten.order.ship_to is None and not forgotten.pii_purged
    assert forgotten.state is OrderState.LABELED
    label = new.packages(labelled)[0]
    assert label.label_path and label.label_erased_at is None and label.tracking_number == "YT1"
    assert "buyer address forgotten" in new.history(labelled)[-1]["note"]
    assert new.get_order(kept).order.ship_to is not None
    new.upsert_order(make_order(waiting))  # Amazon's next copy of an order not shipped yet
    assert new.get_order(waiting).order.ship_to == make_order(waiting).ship_to
    assert new.purge_pii([labelled]) == 1  # the retention still erases it (and its label) when due
