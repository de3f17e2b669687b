"""Several warehouses: `ship_from` as one address or a list of named warehouses, `warehouse_routing`
by SKU, site and account (in that order), and an order whose items disagree held split_warehouses."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from connector.config import ConfigError, load_config
from connector.engine.plan import plan_record, precheck
from connector.engine.warehouses import SplitWarehouses, WarehouseGone, choose_warehouse, planned_warehouse
from connector.holds import HoldReason
from connector.ledger import OrderRecord, OrderState
from connector.model import Address, FulfillmentStatus, Order, OrderItem

HEAD = "catalog: catalog.csv\n"
SINGLE = """\
ship_from:
  name: Sender
  line1: 1 Road
  city: Shenzhen
  state: Guangdong
  country_code: CN
  phone: "+86 1"
"""
TWO = """\
ship_from:
  - warehouse: shenzhen
    name: Shenzhen Sender
    line1: 1 Keji Road
    city: Shenzhen
    state: Guangdong
    country_code: CN
    phone: "+86 1"
  - warehouse: yiwu
    name: Yiwu Sender
    line1: 2 Futian Road
    city: Yiwu
    state: Zhejiang
    country_code: CN
    phone: "+86 2"
"""
ACCOUNTS = """\
accounts:
  - name: seller-na
    region: na
    marketplaces: [US, CA]
    refresh_token: r
    client_id: c
    client_secret: s
  - name: seller-eu
    region: eu
    marketplaces: [UK, DE, FR]
    refresh_token: r
    client_id: c
    client_secret: s
"""
ROUTING = """\
warehouse_routing:
  - {warehouse: yiwu, skus: [YOGA-MAT-6MM, LED-STRIP-5M]}
  - {warehouse: shenzhen, skus: [CAMERA-LENS-KIT]}
  - {warehouse: shenzhen, sites: [UK]}
  - {warehouse: yiwu, accounts: [seller-eu]}
  - {warehouse: yiwu, sites: [CA]}
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def order(*skus: str, site: str = "US", account: str = "seller-na", quantity: int = 1) -> Order:
    return Order(order_id="111-0000001-0000001", account=account, marketplace_id="M", site=site,
                 status=FulfillmentStatus.UNSHIPPED, last_updated=datetime.now(timezone.utc),
                 items=tuple(OrderItem(str(i), sku, quantity) for i, sku in enumerate(skus, 1)),
                 ship_to=Address(name="Buyer", line1="1 Street", city="Seattle", country_code="US"))


def runtime(config) -> SimpleNamespace:
    """What choose_warehouse and precheck read: the configuration and an item master."""
    return SimpleNamespace(config=config, catalog=SimpleNamespace(get=lambda sku: object()))


# -- configuration ---------------------------------------------------------------------------------


def test_a_single_address_is_one_warehouse_named_main(tmp_path):
    config = load(tmp_path, HEAD + SINGLE + ACCOUNTS)
    (only,) = config.warehouses
    assert only.name == "main" and only.city == "Shenzhen" and only.province == "Guangdong"
    assert config.default_warehouse is only and config.ship_from == only.address
    assert config.warehouse_routing == ()
    warehouse, reason = choose_warehouse(runtime(config), order("PHONE-CASE-01"))
    assert (warehouse.name, reason) == ("main", "the only warehouse")


def test_a_list_of_named_warehouses_and_rules(tmp_path):
    config = load(tmp_path, HEAD + TWO + ACCOUNTS + ROUTING)
    assert [w.name for w in config.warehouses] == ["shenzhen", "yiwu"]
    assert config.default_warehouse.name == "shenzhen"
    assert config.ship_from.city == "Shenzhen"  # Config.ship_from: the default warehouse's address
    yiwu = config.warehouse("yiwu")
    assert yiwu.address == Address(name="Yiwu Sender", line1="2 Futian Road", city="Yiwu", state="Zhejiang",
                                   country_code="CN", phone="+86 2")
    assert yiwu.describe() == "yiwu (Yiwu, Zhejiang)" and config.warehouse("nowhere") is None
    first = config.warehouse_routing[0]
    assert (first.warehouse, first.skus, first.sites, first.accounts) == (
        "yiwu", ("YOGA-MAT-6MM", "LED-STRIP-5M"), (), ())


def test_rules_may_name_main_when_ship_from_is_one_address(tmp_path):
    rules = "warehouse_routing:\n  - {warehouse: main, sites: [DE]}\n"
    config = load(tmp_path, HEAD + SINGLE + ACCOUNTS + rules)
    assert choose_warehouse(runtime(config), order("SOCKS-5PK", site="DE"))[0].name == "main"


def test_errors_name_file_line_and_field(tmp_path):
    text = HEAD + TWO.replace("warehouse: yiwu", "warehouse: shenzhen") + ACCOUNTS + """\
warehouse_routing:
  - {warehouse: nowhere, skus: [A]}
  - {warehouse: yiwu, skus: [B], sites: [DE]}
  - {warehouse: shenzhen}
  - {warehouse: shenzhen, sites: [XX, UK]}
  - {warehouse: shenzhen, sites: [UK]}
  - {warehouse: shenzhen, accounts: [nobody]}
  - {warehouse: shenzhen, skus: [A]}
"""
    path = tmp_path / "c.yaml"
    known = "known: shenzhen"
    assert problems(tmp_path, text) == [
        f"{path}:10: ship_from[1].warehouse: repeats another warehouse's name ('shenzhen')",
        f"{path}:31: warehouse_routing[0].warehouse: no warehouse 'nowhere' under ship_from ({known})",
        f"{path}:32: warehouse_routing[1].warehouse: no warehouse 'yiwu' under ship_from ({known})",
        f"{path}:32: warehouse_routing[1]: needs exactly one of skus, sites, accounts (has skus, sites: "
        "write one rule for each)",
        f"{path}:33: warehouse_routing[2]: needs exactly one of skus, sites, accounts",
        f"{path}:34: warehouse_routing[3].sites[0]: unknown Amazon site XX",
        f"{path}:35: warehouse_routing[4].sites[0]: site UK is already routed by warehouse_routing[3]",
        f"{path}:36: warehouse_routing[5].accounts[0]: no account 'nobody' under accounts (known: "
        "seller-eu, seller-na)",
        f"{path}:37: warehouse_routing[6].skus[0]: SKU A is already routed by warehouse_routing[0]",
    ]


def test_schema_errors_keep_the_address_messages(tmp_path):
    path = tmp_path / "c.yaml"
    single = HEAD + SINGLE.replace("  city: Shenzhen\n", "") + ACCOUNTS
    assert problems(tmp_path, single) == [f"{path}:2: ship_from: missing required field 'city'"]
    listed = HEAD + TWO.replace("    city: Yiwu\n", "").replace("warehouse: shenzhen", "warehouse: Shen Zhen")
    assert problems(tmp_path, listed + ACCOUNTS) == [
        f"{path}:3: ship_from[0].warehouse: has the wrong format (expected lower-case letters, digits, "
        "- and _)",
        f"{path}:10: ship_from[1]: missing required field 'city'",
    ]
    nameless = HEAD + TWO.replace("  - warehouse: yiwu\n", "  - \n") + ACCOUNTS
    assert f"{path}:11: ship_from[1]: missing required field 'warehouse'" in problems(tmp_path, nameless)
    assert problems(tmp_path, HEAD + "ship_from: []\n" + ACCOUNTS) == [
        f"{path}:2: ship_from: must have at least 1 item(s)"]
    assert problems(tmp_path, HEAD + SINGLE + ACCOUNTS + "warehouse_routing:\n  - {warehouse: main, "
                                                         "colour: [x]}\n") == [
        f"{path}:23: warehouse_routing[0].colour: unknown field"]


# -- the choice ------------------------------------------------------------------------------------


@pytest.fixture
def two(tmp_path):
    return runtime(load(tmp_path, HEAD + TWO + ACCOUNTS + ROUTING))


@pytest.mark.parametrize("args, kw, expected", [
    (("YOGA-MAT-6MM",), {}, ("yiwu", "SKU YOGA-MAT-6MM is stocked in yiwu")),
    # SKU beats site: UK ships from shenzhen, but the yoga mat is stocked in yiwu
    (("YOGA-MAT-6MM",), {"site": "UK", "account": "seller-eu"},
     ("yiwu", "SKU YOGA-MAT-6MM is stocked in yiwu")),
    (("YOGA-MAT-6MM", "LED-STRIP-5M"), {}, ("yiwu", "SKU YOGA-MAT-6MM is stocked in yiwu; "
                                                   "SKU LED-STRIP-5M is stocked in yiwu")),
    # site beats account: seller-eu ships from yiwu, but UK from shenzhen
    (("SOCKS-5PK",), {"site": "UK", "account": "seller-eu"}, ("shenzhen", "site UK ships from shenzhen")),
    (("SOCKS-5PK",), {"site": "DE", "account": "seller-eu"}, ("yiwu", "account seller-eu ships from yiwu")),
    (("SOCKS-5PK",), {"site": "CA"}, ("yiwu", "site CA ships from yiwu")),
    (("SOCKS-5PK",), {}, ("shenzhen", "default: shenzhen is the first warehouse under ship_from")),
    # an item without a SKU rule follows the order; when that agrees, there is one warehouse
    (("YOGA-MAT-6MM", "SOCKS-5PK"), {"site": "DE", "account": "seller-eu"},
     ("yiwu", "SKU YOGA-MAT-6MM is stocked in yiwu; account seller-eu ships from yiwu")),
    (("CAMERA-LENS-KIT", "SOCKS-5PK"), {},
     ("shenzhen", "SKU CAMERA-LENS-KIT is stocked in shenzhen; default: shenzhen is the first warehouse "
                  "under ship_from")),
])
def test_precedence_sku_site_account_default(two, args, kw, expected):
    warehouse, reason = choose_warehouse(two, order(*args, **kw))
    assert (warehouse.name, reason) == expected
    assert warehouse is two.config.warehouse(expected[0])


def test_items_already_shipped_do_not_count(two):
    o = order("YOGA-MAT-6MM", "CAMERA-LENS-KIT")
    done = OrderItem("2", "CAMERA-LENS-KIT", 0, quantity_shipped=1)
    shipped = dataclasses.replace(o, items=(o.items[0], done))
    assert choose_warehouse(two, shipped)[0].name == "yiwu"


def test_no_rules_with_several_warehouses_is_the_default(tmp_path):
    config = load(tmp_path, HEAD + TWO + ACCOUNTS)
    warehouse, reason = choose_warehouse(runtime(config), order("YOGA-MAT-6MM", site="DE",
                                                                account="seller-eu"))
    assert warehouse.name == "shenzhen"
    assert reason == "default: shenzhen is the first warehouse under ship_from"


def test_items_in_different_warehouses_are_held_split_warehouses(two):
    split = order("YOGA-MAT-6MM", "CAMERA-LENS-KIT", "SOCKS-5PK")
    with pytest.raises(SplitWarehouses) as info:
        choose_warehouse(two, split)
    assert info.value.by_item == {
        "YOGA-MAT-6MM": ("yiwu", "SKU YOGA-MAT-6MM is stocked in yiwu"),
        "CAMERA-LENS-KIT": ("shenzhen", "SKU CAMERA-LENS-KIT is stocked in shenzhen"),
        "SOCKS-5PK": ("shenzhen", "default: shenzhen is the first warehouse under ship_from")}
    reason, message = precheck(two, OrderRecord(split, OrderState.NEW))
    assert reason is HoldReason.SPLIT_WAREHOUSES
    assert message.startswith("order 111-0000001-0000001: its items ship from different warehouses (")
    assert "SKU YOGA-MAT-6MM is stocked in yiwu" in message and "SKU CAMERA-LENS-KIT is stocked in shenzhen" \
        in message and "SOCKS-5PK goes with the order (default: shenzhen is the first" in message
    assert "change warehouse_routing" in message
    # a SKU rule against the order's site: split too, never guessed
    with pytest.raises(SplitWarehouses, match=r"SOCKS-5PK goes with the order \(site UK ships from "):
        choose_warehouse(two, order("YOGA-MAT-6MM", "SOCKS-5PK", site="UK", account="seller-eu"))
    assert precheck(two, OrderRecord(order("YOGA-MAT-6MM", "LED-STRIP-5M"), OrderState.NEW)) is None


def test_an_unknown_sku_is_reported_before_a_split(two):
    rt = SimpleNamespace(config=two.config, catalog=SimpleNamespace(get=lambda sku: None))
    found = precheck(rt, OrderRecord(order("YOGA-MAT-6MM", "CAMERA-LENS-KIT"), OrderState.NEW))
    assert found is not None and found[0] is HoldReason.UNKNOWN_SKU


# -- the plan and buying -------------------------------------------------------------------------


def test_the_plan_names_the_warehouse_and_buying_reads_it_back(two):
    # a Requirements as plan_record reads it
    req = SimpleNamespace(parcel=SimpleNamespace(to_dict=lambda: {}), ioss_number="",
                          declared_value=SimpleNamespace(to_dict=lambda: {}), destination_country="US",
                          tracking_level="tracked", min_scans=1, site="US", buy_shipping_allowed=False)
    yiwu = two.config.warehouse("yiwu")
    record = plan_record(req, warehouse=yiwu, warehouse_reason="SKU X is stocked in yiwu")
    assert (record["warehouse"], record["warehouse_reason"]) == ("yiwu", "SKU X is stocked in yiwu")
    assert "warehouse" not in plan_record(req)
    assert planned_warehouse(two.config, record) is yiwu
    # planned before warehouses were recorded: the default warehouse
    assert planned_warehouse(two.config, {"parcel": {}}) is two.config.default_warehouse
    assert planned_warehouse(two.config, None) is two.config.default_warehouse
    with pytest.raises(WarehouseGone, match="planned to ship from warehouse 'dongguan', which is no longer"):
        planned_warehouse(two.config, {"warehouse": "dongguan"})


def test_a_package_planned_before_warehouses_leaves_from_the_default_one():
    from connector.ledger import Package, PackageState
    from connector.ledger.warehouse import package_warehouse

    old = Package(id=1, order_id="o", package_ref="1", idempotency_key="o-1", carrier="c", service="s",
                  state=PackageState.LABELED, plan={"parcel": {}})
    assert package_warehouse(old) == "main"
    assert package_warehouse(old, "shenzhen") == "shenzhen"
    assert package_warehouse(Package(**{**vars(old), "plan": {"warehouse": "yiwu"}}), "shenzhen") == "yiwu"
