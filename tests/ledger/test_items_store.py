"""The item master's own rows in the ledger, and the catalog the engine reads over them."""
from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.catalog import Catalog, LayeredCatalog, load_catalog
from connector.ledger.crypto import PiiCipher
from connector.model import CatalogItem, Money

ROOT = Path(__file__).resolve().parents[2]


def item(sku: str, **changes) -> CatalogItem:
    base = CatalogItem(sku=sku, weight_g=120, length_cm=Decimal("10.50"), width_cm=Decimal("8"),
                       height_cm=Decimal("0.25"), name_en="Bluetooth earbuds", name_cn="蓝牙耳机",
                       hs_code="0851830", declared_value=Money(Decimal("12.00"), "USD"), has_battery=True,
                       origin_country="VN", category="Electronics")
    return replace(base, **changes)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(make_store):
    return make_store(PiiCipher([Fernet.generate_key()]),
                      clock=lambda: datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc))


def test_put_and_get_round_trip_exactly(ledger):
    original = item("EAR-1")
    assert ledger.get_item("EAR-1") is None
    assert ledger.put_items([original]) == 1
    back = ledger.get_item("EAR-1")
    assert back == original
    # exact decimals, not just equal values: "10.50" stays "10.50", "12.00" stays "12.00"
    assert str(back.length_cm) == "10.50" and str(back.declared_value.amount) == "12.00"
    assert back.hs_code == "0851830" and back.origin_country == "VN" and back.has_battery
    assert ledger.item_count() == 1


def test_put_replaces_by_sku(ledger):
    ledger.put_items([item("A"), item("B")])
    assert ledger.put_items([item("A", weight_g=999, has_battery=False)]) == 1
    assert ledger.get_item("A").weight_g == 999 and not ledger.get_item("A").has_battery
    assert ledger.get_item("B").weight_g == 120
    assert ledger.item_count() == 2
    assert ledger.put_items([]) == 0


def test_put_is_one_transaction(ledger, db_path):  # a SQLite trigger refuses a row
    ledger.put_items([item("KEEP")])
    # the second row fails inside the database: the first must not land either
    ledger._conn().execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON catalog_items WHEN NEW.sku = 'BAD'"
                           " BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.DatabaseError, match="refused"):
        ledger.put_items([item("FIRST"), item("BAD")])
    assert ledger.get_item("FIRST") is None
    assert ledger.item_count() == 1


def test_items_page_by_sku(ledger):
    ledger.put_items([item(s) for s in ("C", "A", "E", "B", "D")])
    assert [i.sku for i in ledger.items_page(None, 2)] == ["A", "B"]
    assert [i.sku for i in ledger.items_page("B", 2)] == ["C", "D"]
    assert [i.sku for i in ledger.items_page("D", 2)] == ["E"]
    assert ledger.items_page("E", 2) == []
    assert [i.sku for i in ledger.items_page("AA", 10)] == ["B", "C", "D", "E"]
    assert ledger.item_skus() == ["A", "B", "C", "D", "E"]


def test_layered_catalog_ledger_first_then_file(ledger):
    file = load_catalog(ROOT / "config" / "catalog.sandbox.csv")
    catalog = LayeredCatalog(ledger, file)
    assert catalog.source == file.source and len(catalog) == len(file)
    assert catalog.lookup("EARBUDS-BT5") == (file.get("EARBUDS-BT5"), "file")
    assert catalog.get("NEW-1") is None and catalog.lookup("NEW-1") == (None, None)

    ledger.put_items([item("NEW-1"), item("EARBUDS-BT5", weight_g=125)])
    assert catalog.get("NEW-1") == item("NEW-1")  # seen at once: nothing cached
    assert catalog.lookup("EARBUDS-BT5") == (item("EARBUDS-BT5", weight_g=125), "api")
    assert len(catalog) == len(file) + 1


def test_layered_catalog_pages_merge_both(ledger):
    file = Catalog({s: item(s, weight_g=1) for s in ("B", "D", "F", "H")}, "c.csv")
    ledger.put_items([item(s, weight_g=2) for s in ("A", "D", "G")])
    catalog = LayeredCatalog(ledger, file)
    seen: list[tuple[str, str, int]] = []
    after = None
    while True:
        page, more = catalog.page(after, 3)
        seen += [(i.sku, src, i.weight_g) for i, src in page]
        if not more:
            break
        after = page[-1][0].sku
    assert seen == [("A", "api", 2), ("B", "file", 1), ("D", "api", 2), ("F", "file", 1), ("G", "api", 2),
                    ("H", "file", 1)]
    page, more = catalog.page(None, 7)
    assert len(page) == 6 and not more
    page, more = catalog.page(None, 6)
    assert len(page) == 6 and not more
    page, more = catalog.page("H", 3)
    assert page == [] and not more


def test_layered_catalog_pages_by_code_point_whatever_the_databases_collation(ledger, ledger_backend):
    """The page merges the file's SKUs, sorted by Python (code points), with the ledger's, sorted and
    compared by the database: a PostgreSQL created under a locale (en_US.UTF-8, initdb's default on
    most hosts) sorts 'a' before 'B', and 'sku > B' then left 'a' out of every page after the first."""
    if ledger_backend == "postgresql":  # the test server's is C: the column takes a locale's collation
        ledger._conn().execute('ALTER TABLE catalog_items ALTER COLUMN sku TYPE TEXT COLLATE "en-x-icu"')
    skus = ["B", "a", "C", "b", "A-2", "A1"]
    ledger.put_items([item(s) for s in skus])
    catalog = LayeredCatalog(ledger, Catalog({"c": item("c")}, "c.csv"))
    seen: list[str] = []
    after = None
    while True:
        page, more = catalog.page(after, 1)
        seen += [i.sku for i, _ in page]
        if not more:
            break
        after = page[-1][0].sku
    assert seen == sorted([*skus, "c"])
    assert [i.sku for i in ledger.items_page("B", 10)] == ["C", "a", "b"]
