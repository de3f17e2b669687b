"""Settings of the ``carriers.chinapost`` configuration section and the services the plugin offers.

Pure data; no I/O beyond reading the packaged example rate card. Every fact about the API that
public sources leave UNVERIFIED and that changes what we send or how we read an answer is a
setting here, with the value the sources point to as its default (see the plugin README).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from connector.kit import (
    URL,
    HttpSettings,
    PickupCoverage,
    Secret,
    ServiceSpec,
    packaged_rows,
    settings_schema,
)
from connector.kit.ratecard import RateCardSettings, rate_card_setting, services_setting
from connector.kit.values import empty_lookup_setting, keywords_setting, utc_offset_setting

# Where the products deliver. EXAMPLE DATA (UNVERIFIED): no public source lists the countries
# each product serves; this is every Amazon site country (GB, not UK: ISO codes) plus the other
# EU/EFTA countries, KR and NZ. Check the list your post office gives you.
DESTINATIONS: tuple[str, ...] = (
    "US", "CA", "MX", "BR", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "PL", "BE", "IE", "TR", "AE", "SA",
    "EG", "IN", "ZA", "JP", "AU", "SG",  # Amazon's site countries
    "AT", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "GR", "HU", "LV", "LT", "LU", "MT", "PT", "RO", "SK",
    "SI", "CH", "NO", "KR", "NZ",
)

# Limits, all UNVERIFIED (no public source states them for these products): ePacket and
# registered air mail are small packets -- 2 kg, longest side 60 cm, length + width + height 90 cm;
# EMS takes 30 kg, longest side 150 cm, and 225 cm for length + width + height (what an EMS limit of
# 300 cm length + girth allows at most). The emulator and the example rate card use these values.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("EUB", "China Post ePacket (E邮宝)", "tracked", amazon_shipping_method="China Post ePacket",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("REGISTERED", "China Post Registered Air Mail (挂号小包)", "tracked",
                amazon_shipping_method="China Post Registered Airmail",
                max_weight_g=2000, max_length_cm=Decimal(60), max_dimensions_sum_cm=Decimal(90),
                destinations=DESTINATIONS),
    ServiceSpec("EMS", "China Post EMS (国际特快专递)", "fully_tracked", amazon_shipping_method="EMS",
                max_weight_g=30000, max_length_cm=Decimal(150), max_dimensions_sum_cm=Decimal(225),
                destinations=DESTINATIONS),
)
SERVICE_SPECS: dict[str, ServiceSpec] = {s.code: s for s in SERVICES}
SERVICE_CODES: tuple[str, ...] = tuple(s.code for s in SERVICES)

# biz_product_no per service. 001/002 are what one open-source integration sends (UNVERIFIED);
# EMS has no public source at all: 003 is a placeholder -- take the real code from your contract.
DEFAULT_BIZ_PRODUCT_CODES: dict[str, str] = {"EUB": "001", "REGISTERED": "002", "EMS": "003"}
EXAMPLE_RATE_CARD = "data/example_rate_card.csv"

_NOT_BLANK = {"pattern": r"\S", "x-format": "non-blank text"}

SCHEMA: dict[str, Any] = settings_schema(
    "carriers.chinapost",
    description="China Post / EMS small-packet (pcpErp) API and EUB tracking. Facts marked "
                "UNVERIFIED in the plugin README are settings.",
    required=["base_url", "ec_company_id", "key"],
    properties={
        "base_url": {
            **URL,
            "description": "pcpErp API root, e.g. https://my.ems.com.cn/pcpErp-web/a/pcp "
                           "(sandbox: ${MFN_SANDBOX_CHINAPOST})",
        },
        "tracking_base_url": {
            **URL, "type": ["string", "null"], "default": None,
            "description": "root of GET track/query/{cn|en}/{mailnum}, e.g. "
                           "http://shipping.ems.com.cn/partner/api/public/p (null: base_url)",
        },
        "ec_company_id": {"type": "string", "minLength": 1, **_NOT_BLANK,
                          "description": "ecCompanyId (customer id) from China Post"},
        "key": {"type": "string", "minLength": 1, **_NOT_BLANK, "x-secret": True,
                "description": "digest key: signs every call, is never sent, never logged"},
        "sender_no": {"type": ["string", "null"], "minLength": 1, "default": None,
                      "description": "sender_no / senderNo (大客户代码); null: ec_company_id"},
        "tracking_token": {"type": ["string", "null"], "minLength": 1, "x-secret": True, "default": None,
                           "description": "authenticate header of the tracking API; needed for track()"},
        "mail_type": {"type": "string", "default": "",
                      "description": "mailType: the e-commerce/ERP identifier China Post registered for you"},
        "wh_code": {"type": "string", "default": "",
                    "description": "wh_code: the collecting post office (揽收机构) from your local office"},
        "services": services_setting(SERVICE_CODES, "services to offer in quotes when the request names none",
                                     codes=SERVICE_CODES),
        "biz_product_codes": {
            "type": "object", "additionalProperties": False, "default": {},
            "properties": {service: {"type": "string", "minLength": 1, "default": code}
                           for service, code in DEFAULT_BIZ_PRODUCT_CODES.items()},
            "description": "UNVERIFIED: biz_product_no per service; services not named keep their "
                           "default (EMS 003 is a placeholder)",
        },
        "rate_card": rate_card_setting(packaged_rows(__package__, EXAMPLE_RATE_CARD),
                                       "quote rows (there is no rate API); default: the packaged EXAMPLE "
                                       "card (example prices, not China Post's tariff)"),
        "declare_currency": {
            "type": "string", "pattern": "^[A-Z]{3}$", "default": "USD",
            "description": "declare_curr_code; customs lines in another currency are refused",
        },
        "digest_encoding": {
            "enum": ["raw", "hex"], "default": "raw",
            "description": "UNVERIFIED: base64 of the raw MD5 bytes (most clients) "
                           "or of its hex text (one Go client)",
        },
        "label_version": {
            "enum": ["1.0", "2.0"], "default": "1.0",
            "description": "surface/download version: 1.0 answers PDF bytes, 2.0 JSON with the PDF as hex",
        },
        "order_query_path": {
            "type": "string", "minLength": 1, "default": "orderService/queryOrder",
            "description": "UNVERIFIED: path of the lookup by logistics_order_no used for reconciliation",
        },
        "empty_lookup": empty_lookup_setting(
            "UNVERIFIED whether the order query shows an order just created: after a create lost its "
            "answer, an empty query buys again (buy) or holds the order label_uncertain (hold)"),
        "duplicate_keywords": keywords_setting(
            ["重复", "已存在", "duplicate", "already exist", "repeat"],
            "UNVERIFIED: msg words meaning 'logistics_order_no already used'"),
        "duplicate_codes": {
            "type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
            "description": "UNVERIFIED: reason codes meaning 'logistics_order_no already used'",
        },
        "already_cancelled_keywords": keywords_setting(
            ["已撤单"],
            "UNVERIFIED: cancelOrder message words meaning 'this waybill is cancelled already' "
            "(taken as cancelled, not as a refusal)"),
        "ioss_field": {
            "enum": ["s_tax_id", "tax_id", "none"], "default": "s_tax_id",
            "description": "UNVERIFIED: which order field carries the IOSS number (with prepayment_of_vat 0)",
        },
        "undelivery_option": {
            "type": "integer", "minimum": 1, "maximum": 9, "default": 2,
            "description": "UNVERIFIED: undelivery_option (what to do when undeliverable; "
                           "integrators send 2)",
        },
        "tracking_format": {
            "enum": ["xml", "json"], "default": "xml",
            "description": "UNVERIFIED: the tracking answer's format (asked for with the Accept header)",
        },
        "tracking_language": {"enum": ["cn", "en"], "default": "en",
                              "description": "track/query/{cn|en}: the language of event texts"},
        "tracking_version_header": {"type": "string", "minLength": 1, "default": "international_eub_us_1.1",
                                    "description": "the legacy API's version header"},
        "tracking_utc_offset_hours": utc_offset_setting(
            "UNVERIFIED: UTC offset of acceptTime values (no zone in the answer)"),
    },
)


@dataclass(frozen=True, kw_only=True)
class ChinaPostSettings(HttpSettings, RateCardSettings):
    """The ``carriers.chinapost`` section, typed, with the schema's defaults applied."""

    SCHEMA: ClassVar[dict[str, Any]] = SCHEMA

    base_url: str
    tracking_base_url: str | None
    ec_company_id: str
    key: Secret
    sender_no: str | None
    tracking_token: Secret | None
    mail_type: str
    wh_code: str
    services: tuple[str, ...]
    biz_product_codes: dict[str, str]
    declare_currency: str
    digest_encoding: str
    label_version: str
    order_query_path: str
    empty_lookup: str
    duplicate_keywords: tuple[str, ...]
    duplicate_codes: tuple[str, ...]
    already_cancelled_keywords: tuple[str, ...]
    ioss_field: str
    undelivery_option: int
    tracking_format: str
    tracking_language: str
    tracking_version_header: str
    tracking_utc_offset_hours: float

    @property
    def api_root(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def tracking_root(self) -> str:
        return (self.tracking_base_url or self.base_url).rstrip("/")

    @property
    def effective_sender_no(self) -> str:
        return self.sender_no or self.ec_company_id


# Pickup coverage: UNKNOWN, declared as such. The APIs carry a pickup flag (the legacy EUB order's
# clcttype, 1 pickup / 0 drop-off, with a collect address; pcpErp's pickup_flag/pickup_notes) and the
# collecting post office (wh_code) comes from the seller's local office, but no public source says
# where China Post collects. selection.pickup_unknown decides (assume pickup, drop off, or refuse).
PICKUP = PickupCoverage()
