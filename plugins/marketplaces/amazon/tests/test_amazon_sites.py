"""The Amazon site rules data: every site present, consistent with the core's site table and the
SP-API emulator, schema-valid, and the values docs/site-rules.md documents (with their sources)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml
from mfn_marketplace_amazon import DATA_FILE, load_site_rules, mfn_register_site_rules

from connector.amazon.sites import SITES
from connector.fx import DEFAULT_RATES
from connector.model import Address, CustomsLine, FulfillmentStatus, Money, Order, OrderItem, Parcel
from connector.rules import (
    SITES_FILE_SCHEMA,
    RulesError,
    SiteRules,
    SiteRulesPatch,
    merge_rules,
    requirements,
)
from connector.sandbox.spapi import SpApiEmulator, site_carrier_codes

DATA = Path(__file__).resolve().parents[1] / "src" / "mfn_marketplace_amazon" / DATA_FILE
README = Path(__file__).resolve().parents[1] / "README.md"
EXPECTED_SITES = ("US CA MX BR UK DE FR IT ES NL SE PL BE IE TR AE SA EG IN JP AU SG").split()
BUY_SHIPPING = {"US", "CA", "UK", "FR", "DE", "IT", "ES", "IN", "MX", "NL", "JP", "BR"}
EU = {"DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE"}


@pytest.fixture(scope="module")
def rules() -> dict[str, SiteRules]:
    registered: list = []
    mfn_register_site_rules(register=registered.append)
    assert all(isinstance(r, SiteRules) for r in registered)
    return {r.site: r for r in registered}


def m(value: str) -> Money:
    amount, currency = value.split()
    return Money(Decimal(amount), currency)


def test_every_site_is_registered_once(rules: dict[str, SiteRules]) -> None:
    assert sorted(rules) == sorted(EXPECTED_SITES) and len(rules) == 22
    assert merge_rules(rules.values()) == rules  # no duplicate


def test_every_site_is_in_the_core_site_table(rules: dict[str, SiteRules]) -> None:
    """Ids, regions, currencies and countries live in the one site table; the rules take the
    country from it when merged."""
    merged = merge_rules(rules.values(), sites=SITES)
    for code in rules:
        assert code in SITES, code
        assert merged[code].country == SITES[code].country, code
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    for code, fields in data["sites"].items():
        assert not {"marketplace_id", "region", "currency", "country"} & set(fields), code


def test_data_file_is_schema_valid() -> None:
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    jsonschema.validate(data, SITES_FILE_SCHEMA)
    assert list(data["sites"]) == EXPECTED_SITES  # the documented order


def test_a_broken_data_file_names_the_site_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    data["sites"]["DE"]["vtr_exclusion_below"] = "150"
    del data["sites"]["JP"]["buy_shipping"]
    bad = tmp_path / "sites.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_site_rules(bad)
    message = str(err.value)
    assert "sites.DE.vtr_exclusion_below" in message and "sites.JP" in message and "buy_shipping" in message


def test_the_packaged_file_reads_as_pure_python_yaml_reads_it() -> None:
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))  # PyYAML's own parser
    expected = [SiteRules.from_mapping(site, fields) for site, fields in data["sites"].items()]
    assert load_site_rules() == expected


def test_a_data_file_that_is_no_yaml_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "sites.yaml"
    bad.write_text("sites:\n  DE: [unclosed\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"(?s)sites\.yaml: YAML syntax error: .*line 2"):
        load_site_rules(bad)


def test_buy_shipping_sites_and_caps(rules: dict[str, SiteRules]) -> None:
    assert {s for s, r in rules.items() if r.buy_shipping} == BUY_SHIPPING
    caps = {s: r.buy_shipping_cap for s, r in rules.items() if r.buy_shipping_cap}
    assert caps == {"US": m("800 USD"), "CA": m("20 CAD"), "UK": m("135 GBP"), "MX": m("50 USD"),
                    **{s: m("150 EUR") for s in ("DE", "FR", "IT", "ES", "NL")}}


def test_china_origin_threshold(rules: dict[str, SiteRules]) -> None:
    assert rules["UK"].tracked_below == m("5 GBP")
    assert all(r.tracked_below == m("5 USD") for s, r in rules.items() if s != "UK")


def test_vtr_and_returnless_refund_and_no_ioss_in_site_rules(rules: dict[str, SiteRules]) -> None:
    assert not any(hasattr(r, "ioss_cap") for r in rules.values())  # IOSS follows the destination
    assert {s: r.vtr_exclusion_below for s, r in rules.items() if r.vtr_exclusion_below} == \
        {"DE": m("20 EUR"), "ES": m("15 EUR"), "FR": m("10 EUR")}
    assert {s: r.returnless_refund_below for s, r in rules.items() if r.returnless_refund_below} == \
        {"US": m("25 USD"), "JP": m("1000 JPY")}


def test_carrier_codes_per_site_and_the_sp_api_emulator_use_one_table(rules: dict[str, SiteRules]) -> None:
    emulator = SpApiEmulator({"orders_per_seller": 1})
    for code, r in rules.items():
        for carrier in ("China Post", "Yun Express", "DHL eCommerce"):
            assert carrier in r.carrier_codes, (code, carrier)
        # the schema's YANWEN on the EU-region sites; Amazon IN's FAQ spelling on IN; Yanwen elsewhere
        yanwen = "YANWEN" if SITES[code].region == "eu" and code != "IN" else "Yanwen"
        assert yanwen in r.carrier_codes and ({"Yanwen", "YANWEN"} - {yanwen}).isdisjoint(r.carrier_codes)
        # the emulator's confirmShipment accepts exactly the table's codes on that site
        assert emulator.carrier_codes[code] == frozenset(r.carrier_codes), code
        assert site_carrier_codes()[code] == frozenset(r.carrier_codes), code
        assert "Other" not in r.carrier_codes  # never a silent "Other"
    assert "ZA" not in emulator.carrier_codes  # a site of the site table without rules: only "Other"


def test_every_carrier_code_names_its_source_and_the_unverified_ones(rules: dict[str, SiteRules]) -> None:
    for code, r in rules.items():
        assert set(r.carrier_code_notes) == set(r.carrier_codes), code
        for carrier, note in r.carrier_code_notes.items():
            assert note.source.startswith("https://"), (code, carrier)
        yanwen = {"Yanwen", "YANWEN"} & set(r.carrier_codes)
        copied = {"China Post", "Yun Express", "DHL eCommerce"} if code in {"DE", "FR", "ES"} else set()
        expected = yanwen | copied
        assert set(r.unverified_carrier_codes()) == expected, code  # the case conflict; copied methods
    assert rules["IN"].carrier_code_notes["Yanwen"].source == "https://sellercentral.amazon.in/gp/help/external/202014610"


def test_methods_are_listed_for_the_small_order_exclusion_sites_only(rules: dict[str, SiteRules]) -> None:
    for code, r in rules.items():
        listed = {carrier for carrier, methods in r.carrier_codes.items() if methods}
        if code in {"DE", "FR", "ES"}:
            assert listed == {"China Post", "Yun Express", "YANWEN", "DHL eCommerce"}, code
        else:
            assert not listed, code  # [] = any method
    assert "Parcel International Direct-Standard" in rules["DE"].carrier_codes["DHL eCommerce"]
    assert rules["FR"].carrier_codes == rules["ES"].carrier_codes == rules["DE"].carrier_codes


def test_the_carrier_plugins_methods_are_entries_of_the_de_lists(rules: dict[str, SiteRules]) -> None:
    """Each plugin service Amazon's (copied) DE list names sends that entry as shippingMethod,
    so the small-order exclusion can apply; the others are not on the list at all."""
    from connector.plugins import load_plugins

    de = rules["DE"]
    on_list = {}
    for spec in load_plugins().carriers().values():
        code = spec.carrier_code_for("DE")
        if spec.confirms_shipment or code is None:
            continue
        on_list[spec.code] = {s.code for s in spec.services if de.exact_match(code, s.amazon_shipping_method)}
        assert all(de.accepts(code, s.amazon_shipping_method) for s in spec.services), spec.code
    assert on_list["chinapost"] == {"EUB", "REGISTERED"}
    assert on_list["yanwen"] == {"481", "482"}
    assert on_list["yunexpress"] == {"ZXR"}
    assert on_list["dhl_ecommerce"] == {"PPM", "PKD", "PLT", "PPS", "PLE", "PKW", "PKG"}


def test_every_site_and_rule_is_in_the_readme(rules: dict[str, SiteRules]) -> None:
    text = README.read_text(encoding="utf-8")
    for name in ("buy_shipping_cap", "tracked_below", "vtr_exclusion_below",
                 "returnless_refund_below", "carrier_codes", "UNVERIFIED", "site_rules:", "fx:"):
        assert name in text, name
    for code in rules:
        assert f"| {code} " in text, code


# -- the data through requirements(): the documented boundaries with the real rules -----------

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


def order(site: str, total: str, currency: str) -> Order:
    return Order(order_id="111-0000001-0000001", account="a", marketplace_id=SITES[site].marketplace_id,
                 site=site, status=FulfillmentStatus.UNSHIPPED, last_updated=NOW,
                 items=(OrderItem("1", "SKU-1", 1, unit_price=Money(Decimal(total), currency),
                                  ioss_number="IM0000000001"),),
                 total=Money(Decimal(total), currency), ship_to=Address(country_code=SITES[site].country))


PARCEL = Parcel(200, Decimal(20), Decimal(15), Decimal(3),
                (CustomsLine("SKU-1", "Case", "壳", "392690", 1, Money(Decimal(5), "USD"), 200),))


def req(rules: dict[str, SiteRules], site: str, total: str, currency: str):
    return requirements(order(site, total, currency), None, rules, DEFAULT_RATES, parcel=PARCEL)


@pytest.mark.parametrize("site, currency, at, over", [
    ("US", "USD", "800.00", "800.01"), ("CA", "CAD", "20.00", "20.01"), ("UK", "GBP", "135.00", "135.01"),
    ("DE", "EUR", "150.00", "150.01"), ("NL", "EUR", "150.00", "150.01"),
    ("MX", "MXN", "850.00", "850.01"),  # 50 USD at the default table's 17 MXN per USD
])
def test_buy_shipping_cap_boundaries_with_the_shipped_data(rules, site, currency, at, over) -> None:
    assert req(rules, site, at, currency).buy_shipping_allowed
    assert not req(rules, site, over, currency).buy_shipping_allowed


@pytest.mark.parametrize("site, currency", [("US", "USD"), ("UK", "GBP")])
def test_tracking_boundaries_with_the_shipped_data(rules, site, currency) -> None:
    assert req(rules, site, "4.99", currency).tracking_level == "tracked"
    assert req(rules, site, "5.00", currency).tracking_level == "fully_tracked"
    assert req(rules, site, "5.01", currency).tracking_level == "fully_tracked"


def test_amazons_ioss_number_goes_to_an_eu_destination_with_the_shipped_data(rules) -> None:
    # Amazon's number is passed on either side of the cap: Amazon judged the value without VAT
    assert req(rules, "IT", "150.00", "EUR").ioss_number == "IM0000000001"
    assert req(rules, "IT", "150.01", "EUR").ioss_number == "IM0000000001"


def test_a_config_override_in_mapping_form_takes_effect_in_the_rules_and_the_emulator(rules) -> None:
    override = {"DE": {"carrier_codes": {
        "YANWEN": {"methods": ["Direct Line Tracked Packet"], "source": "my Seller Central list"},
        "WanbExpress": {"methods": [], "source": "my Seller Central list", "unverified": True},
        "4PX": None}}}
    from connector.rules import SITE_RULES_CONFIG_SCHEMA

    jsonschema.validate(override, SITE_RULES_CONFIG_SCHEMA)
    de = merge_rules(rules.values(), [], override)["DE"]
    assert de.carrier_codes["YANWEN"] == ("Direct Line Tracked Packet",) and "4PX" not in de.carrier_codes
    assert de.carrier_code_notes["YANWEN"].source == "my Seller Central list"
    assert not de.carrier_code_notes["YANWEN"].unverified and de.carrier_code_notes["WanbExpress"].unverified
    assert not de.accepts("YANWEN", "AIR ECONOMY MAIL")  # a verified list restricts the methods
    assert de.exact_match("YANWEN", "Direct Line Tracked Packet")
    codes = SpApiEmulator({"orders_per_seller": 1, "site_rules": override}).carrier_codes
    assert codes["DE"] == frozenset(de.carrier_codes)
    assert "WanbExpress" in codes["DE"] and "4PX" not in codes["DE"]
    assert codes["FR"] == frozenset(rules["FR"].carrier_codes)


def test_a_third_party_patch_and_config_override_apply_over_the_data(rules) -> None:
    merged = merge_rules(rules.values(), [SiteRulesPatch("DE", carrier_codes={"4PX": None})],
                         {"UK": {"buy_shipping_cap": "150 GBP"}})
    assert "4PX" not in merged["DE"].carrier_codes and "4PX" in merged["FR"].carrier_codes
    assert req(merged, "UK", "150.00", "GBP").buy_shipping_allowed
    assert merged["US"] == rules["US"] and replace(merged["UK"], buy_shipping_cap=m("135 GBP")) == rules["UK"]


def test_the_readme_override_example_validates_and_applies(rules) -> None:
    from connector.fx import FX_SCHEMA, RateTable
    from connector.rules import SITE_RULES_CONFIG_SCHEMA

    text = README.read_text(encoding="utf-8").split("## Overriding", 1)[1]
    config = yaml.safe_load(text.split("```yaml", 1)[1].split("```", 1)[0])
    jsonschema.validate(config["site_rules"], SITE_RULES_CONFIG_SCHEMA)
    jsonschema.validate(config["fx"], FX_SCHEMA)
    sites = SITES.extended(config["site_rules"])
    merged = merge_rules(rules.values(), [], config["site_rules"], sites=sites)
    assert merged["DE"].carrier_codes["YANWEN"] == ("Direct Line Tracked Packet",)
    assert merged["DE"].carrier_code_notes["YANWEN"].unverified is False  # checked by the seller
    assert "4PX" not in merged["DE"].carrier_codes
    assert "YANWEN" in merged["IN"].carrier_codes and "Yanwen" not in merged["IN"].carrier_codes
    assert merged["IN"].carrier_code_notes["YANWEN"].source == "configuration"
    assert sites["CL"].currency == "CLP" and merged["CL"].country == "CL"  # a site the table lacked
    assert merged["BR"].buy_shipping_cap == m("50 USD")
    assert RateTable.from_config(config["fx"]).rate("MXN") == Decimal("0.0588235")
