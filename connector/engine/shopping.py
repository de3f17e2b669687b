"""Rate shopping: what an order's site demands, quotes from every eligible carrier at once, and
the choice -- with the reason for every option that was not taken.

Used by the plan step (which plans the chosen label) and by ``mfn-connector quote`` (which
only shows the decision).
"""
from __future__ import annotations

from concurrent.futures import wait
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from ..config import Warehouse
from ..fx import FxError
from ..kit.carrier import NotSupported, PermanentCarrierError
from ..model import Address, CustomsLine, Money, Order, OrderItem, Parcel, Quote, ShipmentRequest, utcnow
from ..ratelimit import QuotaWaitInterrupted, carry_fence
from ..rules import (
    QuoteOption,
    Rejection,
    Requirements,
    Selection,
    carrier_rejections,
    requirements,
    select,
)
from ..transparency import enrolled_items
from .carrier_calls import credentials_accepted, credentials_refused
from .outcome import their_words
from .runtime import Runtime
from .warehouses import choose_warehouse


@dataclass(frozen=True)
class Shopping:
    requirements: Requirements
    selection: Selection
    quotes: tuple[Quote, ...]
    unanswered: tuple[str, ...] = ()  # carriers whose quote failed for a reason that may pass
    credentials_refused: tuple[str, ...] = ()  # those of them that refused the configured credentials
    warehouse: Warehouse | None = None  # where the quotes were asked from
    warehouse_reason: str = ""  # why that warehouse ("SKU X is stocked in yiwu", ...)


def build_parcel(rt: Runtime, order: Order, quantities: dict[str, int]) -> Parcel:
    """The box for these quantities of the order's items, from the item master (KeyError: SKU).
    A customs declaration has one currency: the first item's; another item's declared value is
    converted to it through the fx table (FxError, naming the SKU, when the table cannot)."""
    lines, weight, length, width, height, battery = [], 0, Decimal(0), Decimal(0), Decimal(0), False
    for item in order.items:
        qty = quantities.get(item.order_item_id, 0)
        if not qty:
            continue
        cat = rt.catalog.get(item.sku)
        if cat is None:
            raise KeyError(item.sku)
        value = cat.declared_value
        if lines and value.currency != lines[0].unit_value.currency:
            value = _declared_in(rt, cat.sku, value, lines[0])
        lines.append(CustomsLine(sku=cat.sku, name_en=cat.name_en, name_cn=cat.name_cn,
                                 hs_code=cat.hs_code, quantity=qty, unit_value=value,
                                 unit_weight_g=cat.weight_g, origin_country=cat.origin_country))
        weight += cat.weight_g * qty
        length, width = max(length, cat.length_cm), max(width, cat.width_cm)
        height += cat.height_cm * qty  # stacked: a conservative box
        battery = battery or cat.has_battery
    return Parcel(weight_g=weight, length_cm=length, width_cm=width, height_cm=height,
                  contents=tuple(lines), has_battery=battery)


def _declared_in(rt: Runtime, sku: str, value: Money, first: CustomsLine) -> Money:
    try:
        converted = rt.fx.convert(value, first.unit_value.currency)
    except FxError as exc:
        raise FxError(f"SKU {sku} ({value.currency}) and SKU {first.sku} ({first.unit_value.currency}) "
                      "declare their values in currencies that cannot be converted to one another "
                      "for the parcel's one customs declaration (catalog column declared_currency): "
                      f"{exc}") from None
    cents = converted.amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)  # as rate cards round
    return Money(cents, first.unit_value.currency)


def order_requirements(rt: Runtime, order: Order, parcel: Parcel) -> Requirements:
    """Raises RulesError / FxError when the site or a currency is unknown."""
    account = rt.config.account(order.account)
    return requirements(order, rt.catalog, rt.site_rules, rt.fx, parcel=parcel, ioss=rt.config.ioss,
                        seller_ioss=account.ioss_number if account else "")


def _routes(rt: Runtime, site: str) -> dict[str, set[str] | None]:
    """Carrier -> allowed services (None: any) for a site; every configured carrier by default."""
    routes = rt.config.routing.routes(site)
    if not routes:
        return {code: None for code in rt.carriers}
    allowed: dict[str, set[str] | None] = {}
    for route in routes:
        carrier, service = route.split(":", 1)
        if service == "*" or allowed.get(carrier, set()) is None:
            allowed[carrier] = None
        else:
            allowed.setdefault(carrier, set()).add(service)  # type: ignore[union-attr]
    return allowed


def shop(rt: Runtime, order: Order, items: list[OrderItem],
         warehouse: tuple[Warehouse, str] | None = None) -> Shopping:
    """Quotes for shipping ``items`` of ``order`` from ``warehouse`` ((warehouse, reason); by
    default the order's own, :func:`choose_warehouse`, which raises SplitWarehouses), and the
    choice. Pickup coverage is checked for that warehouse's city and province, and every carrier
    is asked with its address as the origin."""
    origin, origin_reason = warehouse or choose_warehouse(rt, order)
    ship_from = origin.address
    parcel = build_parcel(rt, order, {i.order_item_id: i.quantity for i in items})
    req = order_requirements(rt, order, parcel)
    rules = rt.site_rules[order.site]
    failures: list[Rejection] = []
    ask: list[tuple[str, set[str] | None]] = []
    codes_required = rt.config.amazon.transparency_codes == "required"
    for code, services in _routes(rt, order.site).items():
        spec, carrier = rt.carrier_specs.get(code), rt.carriers.get(code)
        if spec is None or carrier is None:
            failures.append(Rejection(code, "", ("carrier not installed or not configured",)))
            continue
        reasons = carrier_rejections(req, spec, rules, ship_from_city=ship_from.city,
                                     ship_from_province=ship_from.state, drop_off=rt.policy.drop_off,
                                     pickup_unknown=rt.policy.pickup_unknown)
        if spec.confirms_shipment and not order.confirms_on_amazon:
            reasons = [*reasons, "its labels confirm the order on Amazon by themselves, and this order "
                                 "is not to be confirmed here (an ERP's, confirm: false or another channel)"]
        if spec.confirms_shipment and codes_required and enrolled_items(order):
            reasons = [*reasons, "its labels confirm the order on Amazon by themselves, without the "
                                 "Transparency codes this order's items need (amazon.transparency_codes)"]
        if reasons:
            failures.append(Rejection(code, "", tuple(reasons)))
        else:
            ask.append((code, services))
    ship_to = order.ship_to or Address(country_code=rules.country)  # e.g. purged: the country suffices
    request = ShipmentRequest(reference=f"{order.order_id}-quote", order_id=order.order_id, site=order.site,
                              service="", ship_from=ship_from, ship_to=ship_to,
                              parcel=parcel, ioss_number=req.ioss_number, account=order.account,
                              marketplace_id=order.marketplace_id)
    unanswered: list[str] = []
    refused: list[str] = []
    quotes = _quote_all(rt, request, ask, failures, unanswered, refused)
    options = [QuoteOption.from_quote(q, rt.carrier_specs[q.carrier]) for q in quotes]

    def choose(candidates):
        return rt.host.decide("mfn_choose_quote", order=order.without_pii(), requirements=req,
                              candidates=candidates)

    selection = select(req, options, rules=rules, fx=rt.fx, now=utcnow(), policy=rt.policy,
                       ship_from_city=ship_from.city, ship_from_province=ship_from.state,
                       choose=choose, failures=failures)
    return Shopping(req, selection, tuple(quotes), tuple(unanswered), tuple(refused), origin, origin_reason)


PRICE_CEILING = Decimal(10) ** 9  # no label costs that much, in any currency; beyond, arithmetic overflows


def _unusable(quote: Quote) -> str:
    """Why a quote cannot be compared ("" when it can): its price, else its promised delivery."""
    return _unusable_price(quote) or _unusable_promise(quote)


def _unusable_price(quote: Quote) -> str:
    """A label costs something: a price or handling fee that is not a positive, finite, sane
    amount is a carrier's garbled answer."""
    for what, money in (("price", quote.price), ("handling fee", quote.handling_fee)):
        if money is None:
            continue
        amount = money.amount
        if not amount.is_finite() or not 0 <= amount < PRICE_CEILING or (what == "price" and not amount):
            return f"quote dropped: its {what} is not a positive amount (a malformed answer)"
    return ""


def _unusable_promise(quote: Quote) -> str:
    """A promised delivery is compared with the order's aware deliver-by date: one without a time
    zone (or no date-time at all) is the plugin's mistake, and would stop the whole order's choice."""
    promised = quote.promised_delivery
    if promised is None or (isinstance(promised, datetime) and promised.utcoffset() is not None):
        return ""
    return (f"quote dropped: its promised_delivery ({promised}) from the {quote.carrier} carrier plugin has "
            "no time zone (a plugin bug: it must be a timezone-aware datetime)")


def _quote_all(rt: Runtime, request: ShipmentRequest, ask: list[tuple[str, set[str] | None]],
               failures: list[Rejection], unanswered: list[str], refused: list[str]) -> list[Quote]:
    """Every carrier at once, each isolated and bounded by engine.quote_timeout_seconds."""
    if not ask:
        return []
    timeout = rt.engine.quote_timeout_seconds
    # (on the quote threads under the order thread's lease fence: an SP-API quote, Buy Shipping's
    # getRates, stops waiting for the account's token once another worker owns the account)
    futures = {rt.quote_pool(code).submit(carry_fence(rt.carriers[code].quote), request): (code, services)
               for code, services in ask}
    done, _ = wait(futures, timeout=timeout)  # a hung carrier must not hold the order
    for future in futures:
        future.cancel()  # one still queued behind a hung call of its carrier: never sent
    for future in done:
        if isinstance(future.exception(), QuotaWaitInterrupted):
            # A stop request, or the lease gone, ended its wait for a token: the step ends here as
            # on the order's own thread (nothing sent), not as a carrier that failed to answer --
            # which would plan the order without it, or put it off.
            raise future.exception()
    quotes: list[Quote] = []
    for future, (code, services) in futures.items():
        if future not in done:
            failures.append(Rejection(code, "", (f"no quote within {timeout:g} s",)))
            unanswered.append(code)
            continue
        try:
            answer = future.result()
        except NotSupported:
            failures.append(Rejection(code, "", ("the carrier gives no quotes",)))
            continue
        except PermanentCarrierError as exc:
            if exc.credentials_refused:  # the account, not the order: alert, and ask again later
                refusal = their_words(request.ship_to, exc)
                failures.append(Rejection(code, "", (f"credentials refused: {refusal}",)))
                unanswered.append(code)
                refused.append(code)
                credentials_refused(rt, code, refusal)
                continue
            failures.append(Rejection(code, "", (f"quote refused: {their_words(request.ship_to, exc)}",)))
            continue
        except Exception as exc:  # noqa: BLE001 - one carrier's failure never stops the others
            failures.append(Rejection(code, "", (f"quote failed: {type(exc).__name__}: "
                                                  f"{their_words(request.ship_to, exc)}",)))
            unanswered.append(code)  # transient, or a plugin bug: worth asking again later
            continue
        if getattr(rt.carriers[code], "quote_calls_carrier", True):  # a rate card's quote asked no one
            credentials_accepted(rt, code)
        kept = [q for q in answer if services is None or q.service in services]
        checked = [(q, _unusable(q)) for q in kept]  # a garbled price: never the cheapest by mistake
        garbled = [(q, why) for q, why in checked if why]
        if garbled:
            kept = [q for q, why in checked if not why]
            failures += [Rejection(code, q.service, (why,)) for q, why in garbled]
            unanswered.append(code)  # a garbled answer may read right next time
        if not kept and not garbled:
            why = ("no quote for the routed service(s) " + ", ".join(sorted(services)) if services
                   else "no service quoted for this parcel and destination")
            failures.append(Rejection(code, "", (why,)))
        quotes += kept
    return quotes
