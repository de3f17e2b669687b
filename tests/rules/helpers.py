"""Builders shared by the site-rules tests: orders, parcels, carrier specs and a fixed fx table."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from connector.amazon.sites import SITES
from connector.fx import RateTable
from connector.kit import Carrier, CarrierSpec, PickupCoverage, ServiceSpec
from connector.model import Address, CustomsLine, FulfillmentStatus, Money, Order, OrderItem, Parcel
from connector.rules import IossPolicy, QuoteOption, SiteRules

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
SHIP_WITHOUT_IOSS = IossPolicy(missing="ship")

# Round numbers so boundaries are exact: 1 MXN = 0.05 USD (20 MXN per USD), 1 EUR = 1.08 USD.
FX = RateTable("USD", {"EUR": "1.08", "GBP": "1.27", "CAD": "0.73", "MXN": "0.05", "SEK": "0.095",
                       "JPY": "0.0067", "CNY": "0.14", "PLN": "0.25"})

CHINA = {"China Post": (), "Yun Express": (), "DHL eCommerce": ()}
RULES: dict[str, SiteRules] = {r.site: r for r in (
    SiteRules("US", buy_shipping=True, buy_shipping_cap="800 USD",
              tracked_below="5 USD", returnless_refund_below="25 USD",
              carrier_codes={**CHINA, "Yanwen": ()}),
    SiteRules("CA", buy_shipping=True, buy_shipping_cap="20 CAD",
              tracked_below="5 USD", carrier_codes={**CHINA, "Yanwen": ()}),
    SiteRules("MX", buy_shipping=True, buy_shipping_cap="50 USD",
              tracked_below="5 USD", carrier_codes={**CHINA, "Yanwen": ()}),
    SiteRules("UK", country="GB", buy_shipping=True, buy_shipping_cap="135 GBP",
              tracked_below="5 GBP", carrier_codes={**CHINA, "YANWEN": ()}),
    SiteRules("DE", buy_shipping=True, buy_shipping_cap="150 EUR",
              tracked_below="5 USD", vtr_exclusion_below="20 EUR",
              carrier_codes={**CHINA, "YANWEN": ("Yanwen Special Line Tracked",)}),
    SiteRules("FR", buy_shipping=True, buy_shipping_cap="150 EUR",
              tracked_below="5 USD", vtr_exclusion_below="10 EUR",
              carrier_codes={**CHINA, "YANWEN": ()}),
    SiteRules("ES", buy_shipping=True, buy_shipping_cap="150 EUR",
              tracked_below="5 USD", vtr_exclusion_below="15 EUR",
              carrier_codes={**CHINA, "YANWEN": ()}),
    SiteRules("SE", buy_shipping=False, tracked_below="5 USD",
              carrier_codes={**CHINA, "YANWEN": ()}),
    SiteRules("JP", buy_shipping=True, tracked_below="5 USD",
              returnless_refund_below="1000 JPY", carrier_codes={**CHINA, "Yanwen": ()}),
)}


def order(site: str = "US", total: str | None = "10.00", *, currency: str | None = None,
          items: tuple[tuple[str, int, str | None], ...] = (("SKU-1", 1, None),), ioss: str = "",
          country: str | None = None, deliver_by: datetime | None = None, shipped: int = 0,
          order_id: str = "111-0000001-0000001") -> Order:
    cur = currency or SITES[site].currency
    lines = tuple(OrderItem(order_item_id=f"OI{i}", sku=sku, quantity=qty,
                            unit_price=Money(Decimal(price), cur) if price is not None else None,
                            ioss_number=ioss, quantity_shipped=shipped if i == 0 else 0)
                  for i, (sku, qty, price) in enumerate(items))
    grand_total = Money(Decimal(total), cur) if total is not None else None
    return Order(order_id=order_id, account="acct", marketplace_id=SITES[site].marketplace_id, site=site,
                 status=FulfillmentStatus.UNSHIPPED, last_updated=NOW, items=lines, total=grand_total,
                 ship_to=Address(name="Test Buyer", line1="1 Main St", city="Town",
                                 country_code=country or RULES[site].country),
                 ship_by=NOW + timedelta(days=2), deliver_by=deliver_by)


def parcel(weight_g: int = 200, dims: tuple[str, str, str] = ("20", "15", "3"), battery: bool = False,
           value: str = "10.00", currency: str = "USD") -> Parcel:
    line = CustomsLine(sku="SKU-1", name_en="Phone case", name_cn="手机壳", hs_code="392690", quantity=1,
                       unit_value=Money(Decimal(value), currency), unit_weight_g=weight_g)
    return Parcel(weight_g=weight_g, length_cm=Decimal(dims[0]), width_cm=Decimal(dims[1]),
                  height_cm=Decimal(dims[2]), contents=(line,), has_battery=battery)


def spec(code: str, amazon_code: str, services: tuple[ServiceSpec, ...], *, confirms: bool = False,
         pickup: tuple[str, ...] | PickupCoverage = (),
         site_codes: dict[str, str | None] | None = None) -> CarrierSpec:
    return CarrierSpec(code=code, label=code.title(), factory=Carrier, amazon_carrier_code=amazon_code,
                       services=services, confirms_shipment=confirms,
                       pickup=pickup if isinstance(pickup, PickupCoverage) else
                       PickupCoverage.listed(pickup) if pickup else
                       PickupCoverage("by_quote" if confirms else "unknown"),
                       site_carrier_codes=dict(site_codes or {}))


def option(carrier_spec: CarrierSpec, service: str, price: str, currency: str = "USD", *,
           transit_days: int | None = 10, handling: str | None = None,
           tracking_level: str = "") -> QuoteOption:
    svc = carrier_spec.service(service)
    return QuoteOption(carrier=carrier_spec.code, service=service, price=Money(Decimal(price), currency),
                       tracking_level=tracking_level or (svc.tracking_level if svc else ""),
                       transit_days=transit_days, is_buy_shipping=carrier_spec.confirms_shipment,
                       handling_fee=Money(Decimal(handling), currency) if handling is not None else None,
                       spec=carrier_spec, service_spec=svc)


YUN = spec("yunexpress", "Yun Express", (
    ServiceSpec("AYPZXR", "Tracked DDP", "fully_tracked", "Amazon Yuntu Global Tracked Line DDP", 2500,
                allows_battery=True),
    ServiceSpec("AYPZXU", "Untracked DDP", "untracked", "Amazon Yuntu Global Untracked Line DDP", 2000),
    ServiceSpec("THPHR", "Registered", "tracked", "YunExpress Registered Standard General", 2000),
), pickup=("Shenzhen", "Guangzhou"))
YANWEN = spec("yanwen", "Yanwen", (
    ServiceSpec("481", "Special Line Tracked", "fully_tracked", "Yanwen Special Line Tracked", 2000),
    ServiceSpec("464", "Economy Tracked", "tracked", "Yanwen Economy Tracked", 2000),
), site_codes={s: "YANWEN" for s in ("UK", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE")})
CHINAPOST = spec("chinapost", "China Post", (
    ServiceSpec("EUB", "ePacket", "tracked", "ePacket", 2000),
    ServiceSpec("EMS", "EMS", "fully_tracked", "EMS", 30000),
))
DHLEC = spec("dhlec", "DHL eCommerce", (
    ServiceSpec("PPS", "Parcel Standard", "fully_tracked", "Parcel International Direct-Standard", 20000,
                allows_battery=True),
), site_codes={"JP": None})
AMAZON = spec("amazon_shipping", "Amazon Shipping", (
    ServiceSpec("YUNEXPRESS_AYPZXR", "YunExpress via Buy Shipping", "fully_tracked",
                "YunExpress Global Tracked Line DDP", 2500, allows_battery=True),
    ServiceSpec("CHINAPOST_EPACKET", "China Post ePacket via Buy Shipping", "tracked", "China Post ePacket",
                2000),
), confirms=True)
# A carrier whose code no site in RULES lists: never eligible except through Buy Shipping.
FOURPX = spec("fourpx", "4PX", (
    ServiceSpec("PX", "4PX Tracked", "fully_tracked", "4PX Global Tracked", 30000, allows_battery=True),
))
SPECS = {s.code: s for s in (YUN, YANWEN, CHINAPOST, DHLEC, AMAZON, FOURPX)}
