"""The contract's check of a carrier's Amazon code against the site rules: it checks, or says it
could not; it never passes having compared nothing."""
from __future__ import annotations

import pytest

from connector.kit import Carrier, CarrierSpec
from connector.kit import testing as kit_testing
from connector.kit.testing import CarrierContract


class Acme(Carrier):
    code = "acme"


NOT_ON_AMAZONS_LIST = CarrierSpec(code="acme", label="ACME", factory=Acme, amazon_carrier_code="ACME Post")


def test_a_code_amazon_does_not_list_fails_against_the_installed_site_rules():
    with pytest.raises(AssertionError, match="Amazon does not accept these carrier codes"):
        CarrierContract().test_amazon_accepts_the_carrier_code_where_it_ships(NOT_ON_AMAZONS_LIST)


def test_without_site_rules_installed_the_check_is_skipped_saying_what_to_install(monkeypatch):
    """An author's environment with the core and the plugin alone (what the guide's steps make)
    has no site rules: the check used to pass there, whatever the code."""
    monkeypatch.setattr(kit_testing, "amazon_carrier_codes", lambda site: frozenset())
    with pytest.raises(pytest.skip.Exception, match="mfn-marketplace-amazon"):
        CarrierContract().test_amazon_accepts_the_carrier_code_where_it_ships(NOT_ON_AMAZONS_LIST)
