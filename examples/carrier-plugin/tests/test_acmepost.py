"""ACME Post's own tests beside the contract: settings, pure mapping, and a refusal."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from mfn_carrier_acmepost import mapping
from mfn_carrier_acmepost.client import AcmePostCarrier
from mfn_carrier_acmepost.sandbox import AcmePostEmulator
from mfn_carrier_acmepost.settings import AcmePostSettings

from connector.kit import Money, PermanentCarrierError, Secret, SettingsError
from connector.kit.testing import BUYER, connect, sample_request, sandbox_state


def test_settings_are_typed_with_the_schema_defaults() -> None:
    settings = AcmePostSettings.from_section({"base_url": "https://acme.example/", "api_key": "k-123"})
    assert settings.api_root == "https://acme.example"
    assert settings.timeouts == (5.0, 30.0) and settings.max_requests_per_second is None
    assert isinstance(settings.api_key, Secret) and "k-123" not in repr(settings)
    with pytest.raises(SettingsError, match=r"carriers\.acmepost: missing required field 'api_key'"):
        AcmePostSettings.from_section({"base_url": "https://acme.example"})


def test_the_reference_is_the_customer_reference() -> None:
    body = mapping.shipment_request(sample_request("111-2222222-3333333-1", service="STD"))
    assert body["customer_reference"] == "111-2222222-3333333-1"
    assert body["recipient"]["lines"] == ["1200 Pine Street", "Apt 4B"]


def test_quotes_carry_the_handling_fee_and_the_chargeable_weight(mfn_emulator) -> None:
    server = mfn_emulator(AcmePostEmulator())
    carrier = connect(AcmePostCarrier, AcmePostSettings, {"base_url": server.url, "api_key": "sandbox-key"})
    [quote] = carrier.quote(sample_request(service="STD", weight_g=400))
    # STD: 8.50 + 95.00 * 0.4 = 46.50, of which 8.50 is the per-parcel fee
    assert quote.price == Money(Decimal("46.50"), "USD")
    assert quote.handling_fee == Money(Decimal("8.50"), "USD")
    assert quote.chargeable_weight_g == 400
    bare_rate = {"service": "ECO", "price": {"amount": "9", "currency": "USD"}}
    [bare] = mapping.parse_rates({"rates": [bare_rate]}, {})
    assert bare.handling_fee is None and bare.chargeable_weight_g is None  # no breakdown in the rate


def test_a_refused_shipment_is_permanent_and_buys_nothing(mfn_emulator) -> None:
    server = mfn_emulator(AcmePostEmulator())
    carrier = connect(AcmePostCarrier, AcmePostSettings, {"base_url": server.url, "api_key": "sandbox-key"})
    request = sample_request(service="STD", ship_to=replace(BUYER, country_code="CA"))
    with pytest.raises(PermanentCarrierError, match="ships to US only"):
        carrier.create_shipment(request)
    assert sandbox_state(server)["labels"] == {}
