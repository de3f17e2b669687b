"""Property: over random orders, quotes, discounts and overrides, the chosen label satisfies the
requirements and no cheaper eligible label exists (under the same cost function).

The key rules are also checked against a small oracle written here from the site rules' text
(China-origin tracking threshold, Buy Shipping cap, Amazon-accepted carrier codes, weight and
battery limits), so a bug shared by ``requirements`` and ``eligibility`` still fails the test.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.model import Money
from connector.rules import (
    TRACKING_RANK,
    ChoicePolicy,
    Discount,
    Override,
    QuoteOption,
    eligibility,
    override_rejections,
    price_candidate,
    requirements,
    select,
)

from .helpers import FX, NOW, RULES, SHIP_WITHOUT_IOSS, SPECS, order, parcel

THRESHOLD_TOTALS = ["4.99", "5.00", "5.01", "9.99", "10.00", "14.99", "15.00", "19.99", "20.00", "20.01",
                    "24.99", "25.00", "135.00", "135.01", "150.00", "150.01", "800.00", "800.01",
                    "999.99", "1000.00", "1000.01"]
LEVELS = ["", "", "", "", "untracked", "tracked", "fully_tracked"]  # mostly the service's own level
DAYS = st.one_of(st.none(), st.integers(-5, 5).map(lambda d: date(2026, 11, 20) + timedelta(d)))


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    site = draw(st.sampled_from(sorted(RULES)))
    total = draw(st.one_of(st.sampled_from(THRESHOLD_TOTALS),
                           st.decimals("0.01", "2000", places=2).map(str)))
    skus = draw(st.lists(st.sampled_from(["SKU-1", "SKU-2", "POWERBANK"]), min_size=1, max_size=3,
                         unique=True))
    items = tuple((s, draw(st.integers(1, 3)), None) for s in skus)
    o = order(site, total, items=items, ioss=draw(st.sampled_from(["", "IM0000000001"])),
              country=draw(st.sampled_from([None, None, None, "CH"])),
              deliver_by=draw(st.one_of(st.none(), st.none(), st.integers(1, 30).map(
                  lambda d: NOW + timedelta(d)))))
    p = parcel(weight_g=draw(st.one_of(st.integers(50, 2000), st.integers(1900, 4000))),
               battery=draw(st.sampled_from([False, False, False, True])))

    options = []
    for _ in range(draw(st.integers(0, 10))):
        spec = SPECS[draw(st.sampled_from(sorted(SPECS)))]
        service = draw(st.sampled_from([s.code for s in spec.services] * 3 + ["NOPE"]))
        currency = draw(st.sampled_from(["USD", "CNY", "EUR", "GBP"]))
        price = draw(st.decimals("0.50", "100", places=2))
        share = draw(st.one_of(st.none(), st.decimals("0", "0.5", places=2)))
        handling = (price * share).quantize(Decimal("0.01")) if share is not None else None
        svc = spec.service(service)
        options.append(QuoteOption(
            carrier=spec.code, service=service, price=Money(price, currency),
            tracking_level=draw(st.sampled_from(LEVELS)) or (svc.tracking_level if svc else ""),
            transit_days=draw(st.one_of(st.none(), st.integers(1, 30))),
            is_buy_shipping=spec.confirms_shipment,
            handling_fee=Money(handling, currency) if handling is not None else None,
            spec=spec, service_spec=svc))

    discounts = tuple(Discount(
        carrier=draw(st.sampled_from(sorted(SPECS))), kind=draw(st.sampled_from(["percent", "per_kg",
                                                                                "handling_percent"])),
        value=draw(st.decimals("0", "60", places=1)),
        valid_from=draw(DAYS), valid_until=draw(DAYS),
        sites=tuple(draw(st.lists(st.sampled_from(sorted(RULES)), max_size=2, unique=True))),
    ) for _ in range(draw(st.integers(0, 4))))
    overrides = tuple(Override(
        action=draw(st.sampled_from(["force", "forbid"])), carrier=draw(st.sampled_from(sorted(SPECS))),
        site=draw(st.sampled_from([None, site, "US"])), sku=draw(st.sampled_from([None, "SKU-2"])),
    ) for _ in range(draw(st.sampled_from([0, 0, 1, 2]))))
    premium = draw(st.one_of(st.none(), st.decimals("0", "3", places=2).map(lambda a: Money(a, "USD"))))
    policy = ChoicePolicy(discounts, overrides, {"*": premium} if premium is not None else {},
                          drop_off=draw(st.booleans()))
    return {"order": o, "parcel": p, "options": options, "policy": policy,
            "city": draw(st.sampled_from(["Shenzhen", "Shenzhen", "Yiwu"]))}


def _in(money: Money, currency: str) -> Decimal:
    return money.amount * FX.rate(money.currency) / FX.rate(currency)


def oracle_rejects(o, p, opt: QuoteOption) -> bool:
    """True when the option breaks one of the rules documented in docs/site-rules.md."""
    rules = RULES[o.site]
    threshold = Money(Decimal(5), "GBP" if o.site == "UK" else "USD")
    needed = "tracked" if _in(o.total, threshold.currency) < threshold.amount else "fully_tracked"
    service_level = opt.service_spec.tracking_level if opt.service_spec else ""
    levels = [x for x in (opt.tracking_level, service_level) if x]
    have = min((TRACKING_RANK.get(x, 0) for x in levels), default=0)
    if have < TRACKING_RANK[needed] and not opt.is_buy_shipping:  # Amazon's offer stands
        return True
    if opt.is_buy_shipping:
        cap = rules.buy_shipping_cap
        if not rules.buy_shipping or (cap is not None and _in(o.total, cap.currency) > cap.amount):
            return True
    elif opt.spec.carrier_code_for(o.site) not in rules.carrier_codes:
        return True
    if opt.service_spec is None:
        return True
    if opt.service_spec.max_weight_g is not None and p.weight_g > opt.service_spec.max_weight_g:
        return True
    return p.has_battery and not getattr(opt.service_spec, "allows_battery", False)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_chosen_label_is_eligible_and_cheapest(sc: dict) -> None:
    o, p, policy = sc["order"], sc["parcel"], sc["policy"]
    rules = RULES[o.site]
    req = requirements(o, None, RULES, FX, parcel=p, ioss=SHIP_WITHOUT_IOSS)
    result = select(req, sc["options"], rules=rules, fx=FX, now=NOW, policy=policy, ship_from_city=sc["city"])

    def eligible(opt: QuoteOption) -> bool:
        return not eligibility(req, opt, rules=rules, ship_from_city=sc["city"], drop_off=policy.drop_off,
                               now=NOW) and not override_rejections(req, opt, policy.overrides)

    def comparable(opt: QuoteOption) -> Decimal:
        return price_candidate(opt, req=req, fx=FX, now=NOW, discounts=policy.discounts,
                               buy_shipping_premium=policy.premium_for(o.site)).comparable.amount

    eligibles = [opt for opt in sc["options"] if eligible(opt)]
    # every option is either a candidate or rejected with at least one reason
    assert sorted(c.option.label for c in result.candidates) == sorted(opt.label for opt in eligibles)
    assert len(result.candidates) + len(result.rejections) == len(sc["options"])
    assert all(r.reasons for r in result.rejections)

    if result.chosen is None:
        assert eligibles == []
        return
    chosen = result.chosen.option
    assert eligible(chosen)
    assert not oracle_rejects(o, p, chosen)
    assert all(comparable(opt) >= result.chosen.comparable.amount for opt in eligibles)
    assert result.chosen.comparable.amount == comparable(chosen)
    # an option the oracle rejects is never a candidate
    assert not any(oracle_rejects(o, p, c.option) for c in result.candidates)
