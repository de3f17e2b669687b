"""CarrierSpec.accepts_tracking_number: the spec's pattern, or the one a configured carrier's
settings give it (a carrier that returns one of several numbers, by a setting)."""
from __future__ import annotations

from connector.kit import Carrier, CarrierSpec


class Waybills(Carrier):
    code = "acme"
    tracking_number_pattern = r"^WB\d{6}$"


class Plain(Carrier):
    code = "acme"


SPEC = CarrierSpec(code="acme", label="ACME", factory=Plain, tracking_number_pattern=r"^\d{10}$")


def test_the_spec_pattern_without_a_carrier_or_for_a_carrier_without_its_own():
    assert SPEC.pattern_for() == SPEC.pattern_for(Plain()) == r"^\d{10}$"
    assert SPEC.accepts_tracking_number("0123456789") and SPEC.accepts_tracking_number("0123456789", Plain())
    assert not SPEC.accepts_tracking_number("WB123456", Plain())


def test_a_configured_carriers_own_pattern_wins():
    assert SPEC.pattern_for(Waybills()) == r"^WB\d{6}$"
    assert SPEC.accepts_tracking_number("WB123456", Waybills())
    assert not SPEC.accepts_tracking_number("0123456789", Waybills())
    anything = Waybills()
    anything.tracking_number_pattern = ""  # its settings say: no check
    assert SPEC.accepts_tracking_number("whatever", anything)
