"""The aggregates /metrics reads (connector/ledger/metrics_queries.py), on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from connector.ledger import PackageState
from connector.ledger.crypto import PiiCipher
from connector.ledger.sql import SqlLedger

from .test_order_queries import ITEMS, Clock, order


@pytest.fixture
def ledger(make_store) -> SqlLedger:
    return make_store(PiiCipher([Fernet.generate_key()]), clock=Clock())


def bought(ledger: SqlLedger, n: int, plan: dict, *more: PackageState, **fields) -> None:
    """Order ``n`` with one package whose label was bought (LABELED), then taken through ``more``
    (``fields`` go with the last step)."""
    ledger.upsert_order(order(n))
    package = ledger.plan_package(order(n).order_id, "1", f"key-{n}", "yanwen", "S", ITEMS, plan=plan)
    states = (PackageState.LABEL_CLAIMED, PackageState.LABEL_CREATED, PackageState.LABELED, *more)
    for state in states:
        package = ledger.advance(package, package.state, state, **(fields if state is states[-1] else {}))


def test_a_plan_or_refund_that_is_not_json_leaves_the_other_labels_spend(ledger) -> None:
    """A label whose plan, or whose refund, is not JSON (a hand edit, a restore gone wrong) is
    counted, its cost (or refund) unknown; so is one whose amount is no number. Read in SQL, that
    one row failed the whole sum on PostgreSQL (invalid input syntax for type json, or for type
    double precision), and with it every scrape of /metrics."""
    cost = {"cost": {"amount": "10.50", "currency": "CNY"}}
    bought(ledger, 1, cost)
    bought(ledger, 2, cost)  # its plan garbled below
    bought(ledger, 3, {"cost": {"amount": "4.25", "currency": "CNY"}}, PackageState.VOIDING,
           PackageState.VOIDED, refund={"amount": "4.25", "currency": "CNY"})  # its refund garbled below
    bought(ledger, 4, {"cost": {"amount": "lots", "currency": "CNY"}})
    with ledger._write() as conn:
        conn.execute("UPDATE packages SET plan = ? WHERE order_id = ?",
                     ('{"cost": {"amount": "10.5', order(2).order_id))
        conn.execute("UPDATE packages SET refund = ? WHERE order_id = ?",
                     ("{'amount': '4.25'}", order(3).order_id))

    rows = {(r.carrier, r.currency): (r.labels, r.spend, r.refunded) for r in ledger.label_spend()}
    assert rows == {("yanwen", "CNY"): (3, pytest.approx(14.75), 0.0), ("yanwen", ""): (1, 0.0, 0.0)}


def test_the_label_spend_is_summed_by_the_database_while_every_row_reads(ledger, monkeypatch) -> None:
    """Row by row the ledger's every plan crosses into Python at each scrape: only a row the database
    cannot cast (PostgreSQL) sends the sum there."""
    bought(ledger, 1, {"cost": {"amount": "10.50", "currency": "CNY"}})
    monkeypatch.setattr(type(ledger), "_label_spend_row_by_row",
                        lambda self: pytest.fail("summed row by row, every row readable"))
    assert [(r.currency, r.labels, r.spend) for r in ledger.label_spend()] == [("CNY", 1, 10.5)]
