"""A site Amazon opens after this release, added through the configuration alone: the site table,
the configuration's accounts, the rules, the order poll, the label and the confirmation all take
it from the ``site_rules`` block, and the SP-API emulator (fed the same table) sells on it."""
from __future__ import annotations

import pytest

from connector.engine.loop import Engine
from connector.ledger import OrderState

from .helpers import assert_exactly_once

pytestmark = pytest.mark.e2e

NEW_SITE = {  # hypothetical: a Norwegian marketplace the built-in table does not know
    "marketplace_id": "A1NOSANDBOX9QX", "region": "eu", "currency": "NOK", "country": "NO",
    "buy_shipping": False, "tracked_below": "5 USD",
    "carrier_codes": {"China Post": [], "Yun Express": [], "DHL eCommerce": [], "YANWEN": []},
}
OVERRIDES = {
    "site_rules": {"NO": NEW_SITE},
    "fx": {"rates": {"NOK": "0.092"}},
    "accounts": [{
        "name": "demo-eu", "region": "eu", "marketplaces": ["NO", "DE"],
        "endpoint": "${MFN_SANDBOX_SPAPI:-http://127.0.0.1:8700}",
        "lwa_token_url": "${MFN_SANDBOX_SPAPI:-http://127.0.0.1:8700}/auth/o2/token",
        "refresh_token": "Atzr|sandbox-demo-eu", "client_id": "amzn1.application-oa2-client.sandbox",
        "client_secret": "sandbox-client-secret"}],
    "sandbox": {"orders": 16},
}


def test_a_site_added_under_site_rules_is_polled_and_shipped_end_to_end(world):
    w = world(OVERRIDES)
    rt = w.runtime()
    try:
        assert rt.sites["NO"].marketplace_id == "A1NOSANDBOX9QX" and rt.site_rules["NO"].country == "NO"
        Engine(rt).run_until_quiet()
        records = [r for r in rt.ledger.orders() if r.order.site == "NO"]
        verified = [r for r in records if r.state == OrderState.VERIFIED]
        labels = {p.carrier for r in verified for p in rt.ledger.packages(r.order_id)}
    finally:
        rt.close()
    assert records and all(r.order.marketplace_id == "A1NOSANDBOX9QX" for r in records)
    assert len(verified) >= 3, [(r.order_id, r.state.value, r.hold_reason) for r in records]
    assert labels and "amazon_shipping" not in labels  # no Buy Shipping on the site: direct labels
    spapi = w.state("spapi")
    for record in verified:  # confirmed on Amazon on the new marketplace, exactly once
        (confirmation,) = spapi["confirmations"][record.order_id].values()
        assert confirmation["marketplaceId"] == "A1NOSANDBOX9QX" and confirmation["accepted"] == 1
    assert_exactly_once(w)


def test_without_the_site_rules_block_the_site_is_refused_with_what_to_add(write_config):
    from connector.config import ConfigError, load_config

    overrides = {**OVERRIDES, "site_rules": {"NO": {k: v for k, v in NEW_SITE.items() if k != "currency"}}}
    with pytest.raises(ConfigError, match="site_rules.NO: a new site needs currency"):
        load_config(write_config(overrides))
    overrides = {**OVERRIDES, "site_rules": {}}
    with pytest.raises(ConfigError, match=r"accounts\[0\].marketplaces\[0\]: unknown Amazon site NO .*"
                                          "a new site needs marketplace_id, region, currency, country"):
        load_config(write_config(overrides))
