"""Pickup coverage by city and province, the policy for unknown coverage, and parcels over every
service's limit (docs/site-rules.md#pickup-coverage, #weight-and-size-limits)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from connector.kit import PickupCoverage, ServiceSpec
from connector.rules import ChoicePolicy, carrier_rejections, requirements, select

from .helpers import AMAZON, FX, NOW, RULES, SHIP_WITHOUT_IOSS, option, order, parcel, spec

SERVICE = (ServiceSpec("STD", "Standard", "fully_tracked", "", 2000, max_length_cm=Decimal(60),
                       max_dimensions_sum_cm=Decimal(90), destinations=("US",)),)
LISTED = spec("listed", "China Post", SERVICE, pickup=PickupCoverage.listed(("Shenzhen",), ("Zhejiang",)))
UNKNOWN = spec("unknown", "China Post", SERVICE, pickup=PickupCoverage())
BY_QUOTE = spec("amazon_shipping", "", SERVICE, confirms=True, pickup=PickupCoverage("by_quote"))


def req(p=None):
    return requirements(order("US", "10.00"), None, RULES, FX, parcel=p or parcel(), ioss=SHIP_WITHOUT_IOSS)


def rejected(carrier, city: str, province: str = "", **policy) -> list[str]:
    p = ChoicePolicy(**policy)
    return carrier_rejections(req(), carrier, RULES["US"], ship_from_city=city, ship_from_province=province,
                              drop_off=p.drop_off, pickup_unknown=p.pickup_unknown)


def test_listed_coverage_by_city_or_by_province() -> None:
    assert rejected(LISTED, "Shenzhen") == []
    assert rejected(LISTED, "yiwu", "zhejiang") == []  # anywhere in the province, any case
    reasons = rejected(LISTED, "Chengdu", "Sichuan")
    assert len(reasons) == 1 and "does not pick up in Chengdu, Sichuan" in reasons[0]
    assert "pickup in Shenzhen; anywhere in Zhejiang" in reasons[0]
    assert rejected(LISTED, "Chengdu", "Sichuan", drop_off=True) == []


@pytest.mark.parametrize("policy, refused", [("assume_pickup", False), ("drop_off", False), ("refuse", True)])
def test_unknown_coverage_follows_the_policy(policy: str, refused: bool) -> None:
    reasons = rejected(UNKNOWN, "Chengdu", "Sichuan", pickup_unknown=policy)
    assert bool(reasons) is refused
    if refused:
        assert "pickup coverage unknown for Chengdu, Sichuan" in reasons[0]


@pytest.mark.parametrize("policy, note", [
    ("assume_pickup", "handover: pickup coverage unknown; assumed (selection.pickup_unknown: assume_pickup)"),
    ("drop_off",
     "handover: pickup coverage unknown: hand the parcel in (selection.pickup_unknown: drop_off)")])
def test_quote_notes_how_an_unknown_carrier_gets_the_parcel(policy: str, note: str) -> None:
    s = select(req(), [option(UNKNOWN, "STD", "5.00")], rules=RULES["US"], fx=FX, now=NOW,
               ship_from_city="Chengdu", policy=ChoicePolicy(pickup_unknown=policy))
    assert s.chosen is not None and note in s.chosen.notes


def test_by_quote_coverage_is_never_second_guessed() -> None:
    assert rejected(BY_QUOTE, "Chengdu", "Sichuan", pickup_unknown="refuse") == []


def test_policy_is_validated() -> None:
    from connector.rules import RulesError
    with pytest.raises(RulesError, match="pickup_unknown"):
        ChoicePolicy(pickup_unknown="hope")


# -- limits ------------------------------------------------------------------------------------


def _reasons(p) -> list[str]:
    s = select(req(p), [option(LISTED, "STD", "5.00"), option(AMAZON, "YUNEXPRESS_AYPZXR", "6.00")],
               rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen")
    assert s.chosen is None
    return [r for rej in s.rejections for r in rej.reasons]


def test_at_the_limits_is_eligible() -> None:
    s = select(req(parcel(weight_g=2000, dims=("60", "20", "10"))), [option(LISTED, "STD", "5.00")],
               rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen")
    assert s.chosen is not None


def test_overweight_for_every_service_lists_each_reason() -> None:
    reasons = _reasons(parcel(weight_g=2501))
    assert "parcel weight 2501 g is above the service's maximum 2000 g" in reasons
    assert "parcel weight 2501 g is above the service's maximum 2500 g" in reasons


def test_oversize_longest_side_and_sum() -> None:
    long_side = select(req(parcel(weight_g=100, dims=("61", "10", "10"))), [option(LISTED, "STD", "5.00")],
                       rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen")
    assert long_side.chosen is None
    assert long_side.rejections[0].reasons == (
        "parcel's longest side 61 cm is above the service's maximum 60 cm",)
    too_big = select(req(parcel(weight_g=100, dims=("40", "30", "21"))), [option(LISTED, "STD", "5.00")],
                     rules=RULES["US"], fx=FX, now=NOW, ship_from_city="Shenzhen")
    assert too_big.chosen is None
    assert any("length + width + height 91 cm is above the service's maximum 90 cm" in r
               for rej in too_big.rejections for r in rej.reasons)
