"""Items whose values the catalog declares in different currencies: one customs declaration per
parcel, in one currency, the others converted through the fx table; a currency the table lacks
holds the order naming the SKU (it used to crash every such order into retries_exhausted)."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from connector.engine.loop import Engine
from connector.ledger import OrderState

from .helpers import SEEDED_HOLDS, assert_exactly_once

pytestmark = pytest.mark.e2e

CATALOG = Path(__file__).resolve().parents[2] / "config" / "catalog.sandbox.csv"
SKU = "USB-CABLE-1M"  # ordered with other items in a few of the sandbox's orders


def catalog_with(tmp_path: Path, currency: str) -> str:
    rows = CATALOG.read_text(encoding="utf-8").splitlines()
    changed = [r.replace(",1.80,USD,", f",1.70,{currency},") if r.startswith(f"{SKU},") else r for r in rows]
    assert changed != rows
    path = tmp_path / f"catalog-{currency}.csv"
    path.write_text("\n".join(changed) + "\n", encoding="utf-8")
    return str(path)


def declarations(rt) -> list[list[dict]]:
    """The customs lines of every package planned."""
    return [package.plan["parcel"]["contents"] for record in rt.ledger.orders()
            for package in rt.ledger.packages(record.order_id) if package.plan.get("parcel")]


def test_values_in_two_currencies_go_on_one_declaration(world, tmp_path):
    w = world({"catalog": catalog_with(tmp_path, "EUR")})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        planned = declarations(rt)
        assert all(len({line["unit_value"]["currency"] for line in lines}) == 1 for lines in planned)
        mixed = [lines for lines in planned if SKU in {line["sku"] for line in lines} and len(lines) > 1]
        assert mixed, "the sandbox's orders no longer put this SKU in a parcel with others"
        converted = 0
        for lines in mixed:  # each line in the first item's currency, through the fx table, to the cent
            currency = lines[0]["unit_value"]["currency"]
            for line in lines:
                declared = rt.catalog.get(line["sku"]).declared_value
                want = declared if declared.currency == currency else rt.fx.convert(declared, currency)
                converted += declared.currency != currency
                assert line["unit_value"]["currency"] == currency
                assert Decimal(line["unit_value"]["amount"]) == want.amount.quantize(Decimal("0.01"),
                                                                                     rounding=ROUND_HALF_UP)
        assert converted, "no line needed converting: the test would prove nothing"
        # (the test configuration's UK forces China Post, which some orders cannot take)
        assert_exactly_once(w, allowed_holds=SEEDED_HOLDS | {"no_eligible_service"})
    finally:
        rt.close()


def test_a_currency_the_fx_table_lacks_holds_the_order_naming_the_skus(world, tmp_path):
    """A real currency (Mongolian tugrik) the fx table has no rate for; an invented one is refused
    when the catalog loads (tests/test_catalog.py)."""
    w = world({"catalog": catalog_with(tmp_path, "MNT")})
    rt = w.runtime()
    try:
        Engine(rt).run_until_quiet()
        held = rt.ledger.orders([OrderState.HELD])
        named = [r for r in held if r.hold_reason == "site_rules" and f"SKU {SKU} (MNT)" in r.hold_message]
        assert named and all("cannot be converted" in r.hold_message for r in named)
        assert not [r for r in held if r.hold_reason == "retries_exhausted"]
        errors = [rt.ledger.last_error(r.order_id) or "" for r in rt.ledger.orders()]
        assert not [e for e in errors if "internal error" in e]
    finally:
        rt.close()
