"""Plain data types that flow between Amazon, the ledger, the engine and carrier plugins.

No I/O here. Money is Decimal with a currency; weights are grams; lengths are centimetres;
times are timezone-aware UTC datetimes.
"""
from __future__ import annotations

import enum
import functools
import re
import sys
import unicodedata
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from . import clock


def utcnow() -> datetime:
    """Now, from the daemon's clock (connector.clock: the system clock unless a simulation moves it)."""
    return clock.now()


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix and milliseconds, the form Amazon documents."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _field_values(obj: Any) -> dict[str, Any]:
    """A flat dataclass's fields by name, values as they are. ``dataclasses.asdict`` deep-copies
    every value on the way, and showed in a profile of the daemon: orders are serialised at
    every upsert."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def parse_iso(value: str) -> datetime:
    dt = _fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


if sys.version_info >= (3, 11):  # reads a "Z" itself: a third of the time (every ledger row has times)
    _fromisoformat = datetime.fromisoformat
else:
    def _fromisoformat(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            object.__setattr__(self, "amount", Decimal(str(self.amount)))
        if len(self.currency) != 3:
            raise ValueError(f"currency must be an ISO 4217 code, got {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        return Money(self.amount * Decimal(factor), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def to_dict(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Money:
        return cls(Decimal(str(data["amount"])), data["currency"])


# Scripts written without spaces between words (Han, kana, Hangul, Thai): no word boundary to match.
_UNSPACED_SCRIPT = re.compile("[\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf"
                              "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")


def _fold(text: str) -> str:
    """``text`` lower-cased and without accents, character for character (so a match's place is
    the same in both): é, É and e compare equal, and so do a full-width １ or Ａ and 1 or a. A
    character that does not reduce to one (a Hangul syllable, İ) stays as it is."""
    out = []
    for char in text:
        compatible = unicodedata.normalize("NFKC", char)
        if len(compatible) == 1:
            char = compatible
        parts = unicodedata.normalize("NFD", char)
        if len(parts) > 1 and all(unicodedata.combining(p) for p in parts[1:]):
            char = parts[0]
        lower = char.lower()
        out.append(lower if len(lower) == 1 else char)
    return "".join(out)


# German and Nordic letters as ASCII-only systems write them (Müller -> Mueller, Straße -> Strasse).
_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe",
                                  "Ü": "Ue", "ẞ": "SS", "æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae",
                                  "Ø": "Oe", "Å": "Aa"})
_PHONE_GAP = r"[\s().\-/]*"  # what may stand between a phone's digits: spaces, hyphens, brackets


# Cyrillic as carriers that take Latin letters only receive it, by the three schemes sellers and
# their tools use most: BGN/PCGN (Russian), Bulgaria's official Streamlined System, and ICAO 9303
# (the passports'). Letters the three write alike are shared; a value is matched folded (lowercase).
_CYRILLIC_COMMON = {"а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
                    "и": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
                    "с": "s", "т": "t", "у": "u", "ф": "f", "ц": "ts", "ч": "ch", "ш": "sh", "ы": "y",
                    "э": "e", "і": "i", "ї": "yi", "є": "ye", "ґ": "g"}
_CYRILLIC_SCHEMES = tuple(str.maketrans({**_CYRILLIC_COMMON, **scheme}) for scheme in (
    {"ё": "yo", "й": "y", "х": "kh", "щ": "shch", "ъ": "", "ь": "", "ю": "yu", "я": "ya"},  # BGN/PCGN
    {"ё": "yo", "й": "y", "х": "h", "щ": "sht", "ъ": "a", "ь": "y", "ю": "yu", "я": "ya"},  # Bulgarian
    {"ё": "e", "й": "i", "х": "kh", "щ": "shch", "ъ": "ie", "ь": "", "ю": "iu", "я": "ia"},  # ICAO 9303
))
_CYRILLIC = re.compile("[\u0400-\u04ff]")


def _transliterations(value: str) -> set[str]:
    """``value`` as ASCII-only systems may write it: German and Nordic letters spelt out, Cyrillic
    in Latin letters by each common scheme (lowercase; redact() matches folded text)."""
    forms = {value.translate(_TRANSLITERATION)}
    if _CYRILLIC.search(value):
        forms.update(value.lower().translate(scheme) for scheme in _CYRILLIC_SCHEMES)
    return forms


_WORDED = ("name", "company", "line1", "line2", "line3")  # values of several words


def _may_quote(folded: str, words: set[str], unspaced: bool) -> bool:
    """Whether ``folded`` (a text, folded) may hold a personal value in any form
    :meth:`Address.redact` looks for: it shares a word with them (``words``, folded), holds seven
    digits or more (a phone, however grouped), or a character of a script written without spaces
    that a value also uses (``unspaced``). False lets redact skip its patterns, which could only
    match where one of these holds."""
    if sum(c.isdigit() for c in folded) >= 7:
        return True
    if words.intersection(re.findall(r"\w+", folded)):
        return True
    return unspaced and bool(_UNSPACED_SCRIPT.search(folded))


def _word_runs(values: set[str]) -> list[str]:
    """Patterns for every run of two or more consecutive words of each value, longest first,
    whatever stands between them in the text: a carrier that cuts a street to its first 35
    characters (``4512 Westlake Boulevard No``) or drops its commas (``PRINCESA 123 PISO 4``)
    still quotes the buyer's words in their order. A run of under 6 letters is left (it would
    match too much)."""
    runs: set[tuple[str, ...]] = set()
    for value in values:
        words = re.findall(r"\w+", _fold(value))
        runs.update(tuple(words[i:j]) for i in range(len(words)) for j in range(i + 2, len(words) + 1)
                    if sum(map(len, words[i:j])) >= 6)
    return [r"(?<!\w)" + r"\W+".join(map(re.escape, run)) + r"(?!\w)"
            for run in sorted(runs, key=lambda r: (-sum(map(len, r)), r))]


# Calling codes (ITU-T E.164) of the countries Amazon ships to: the part of an international
# number a carrier leaves out when it writes the national form.
_CALLING_CODES = {"US": "1", "CA": "1", "MX": "52", "BR": "55", "GB": "44", "IE": "353", "DE": "49",
                  "FR": "33", "IT": "39", "ES": "34", "NL": "31", "BE": "32", "LU": "352", "AT": "43",
                  "CH": "41", "SE": "46", "NO": "47", "DK": "45", "FI": "358", "PL": "48", "CZ": "420",
                  "PT": "351", "GR": "30", "TR": "90", "AE": "971", "SA": "966", "EG": "20", "IN": "91",
                  "JP": "81", "CN": "86", "HK": "852", "TW": "886", "KR": "82", "SG": "65", "AU": "61",
                  "NZ": "64", "ZA": "27", "IL": "972"}


def _phone_pattern(phone: str, country: str) -> str | None:
    """A pattern for the phone's digits however they are grouped, bounded by non-digits: all of
    them, and for an international number (+ or 00) of a country whose calling code it starts
    with, its national part, with or without a trunk 0; for a national number, also behind the
    country's calling code, with or without its trunk 0 (a carrier writes it international). At
    least 7 digits (fewer would match too much); None for a shorter phone."""
    text = unicodedata.normalize("NFKC", phone).strip()
    digits = re.sub(r"\D", "", text)
    forms = {digits}
    if text.startswith("00"):
        digits = digits[2:]
        forms.add(digits)
    code = _CALLING_CODES.get(country.strip().upper())
    if text.startswith(("+", "00")) and code and digits.startswith(code):
        national = digits[len(code):]
        forms |= {national, "0" + national}
    elif code and len(digits) >= 7 and not text.startswith(("+", "00")):
        forms |= {code + digits, code + digits.removeprefix("0")}
    forms = {f for f in forms if len(f) >= 7}
    if not forms:
        return None
    spread = sorted((_PHONE_GAP.join(f) for f in forms), key=len, reverse=True)
    return rf"(?<!\d)(?:(?:\+|00){_PHONE_GAP})?(?:{'|'.join(spread)})(?!\d)"


@dataclass(frozen=True)
class Address:
    """A postal address. For a buyer this is PII: the ledger stores it encrypted."""

    name: str = ""
    line1: str = ""
    line2: str = ""
    line3: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone: str = ""
    email: str = ""
    company: str = ""
    district: str = ""

    REQUIRED_FOR_LABEL = ("name", "line1", "city", "country_code")

    def missing_fields(self) -> list[str]:
        """Fields a carrier needs that are empty (Amazon sometimes sends only city and postcode)."""
        return [f for f in self.REQUIRED_FOR_LABEL if not getattr(self, f).strip()]

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in _field_values(self).items() if v}

    # What Amazon counts as the buyer's personal data in an address; city, state and country are not.
    PERSONAL = ("name", "company", "line1", "line2", "line3", "postal_code", "phone", "email")

    def redact(self, text: str) -> str:
        """``text`` with this address's personal values replaced by ``***``: a carrier's refusal may
        quote the postcode or the street it refused, and such text ends up in hold messages, logs,
        events and webhooks. Whole words only; values shorter than 3 characters are left (they
        would match too much). Chinese, Japanese, Korean and Thai are written without spaces, so a
        value in those scripts goes wherever it stands, from 2 characters (a name such as 张三).
        Also the forms a carrier may have reduced them to: each word of the name, each value
        without its spaces (``CompradorPrueba27``), the postcode without its hyphens and its first
        part (a ZIP+4's five digits), the phone however its digits are grouped, an international
        one in its national form too (``(206) 555-0117``, ``03-0000-0001`` for +81 3 0000 0001 in
        Japan) and a national one behind its country's calling code (``+12065550117`` for
        206-555-0117 in the US); and in any case, without accents, in full-width characters or transliterated
        (``MUNOZ`` for Muñoz, ``MUELLER`` for Müller, ``STRASSE`` for Straße, ``IVAN PETROV`` for
        Иван Петров), as carriers that only take ASCII write them."""
        _, words, unspaced = self._redaction
        folded = _fold(text)  # matched here; replaced at the same places in ``text``
        if not _may_quote(folded, words, unspaced):  # most refusals quote nothing: no patterns to build
            return text
        for pattern in self._redaction_patterns:
            for found in reversed(list(re.finditer(pattern, folded)) if pattern else []):
                start, end = found.span()
                text = text[:start] + "***" + text[end:]
                folded = folded[:start] + "***" + folded[end:]
        return text

    # Worked out once per address, not per text: a parcel's tracking events, say, are many texts
    # redacted against one address (an address is frozen, so what is cached stays true).
    @functools.cached_property
    def _redaction(self) -> tuple[set[str], set[str], bool]:
        """The personal values in every form redact() looks for, their words folded, and whether
        one is written in a script without spaces."""
        personal = {getattr(self, f).strip() for f in self.PERSONAL}
        values = personal | set(re.split(r"[\s-]+", self.name)) | {re.sub(r"\s", "", v) for v in personal}
        values |= {form for v in values for form in _transliterations(v)}
        code = self.postal_code.strip()
        values.update({code.replace(" ", "").replace("-", ""), re.split(r"[\s-]", code)[0]})
        words = {w for v in values if v for w in re.findall(r"\w+", _fold(v))}
        return values, words, any(_UNSPACED_SCRIPT.search(v) for v in values)

    @functools.cached_property
    def _redaction_patterns(self) -> list[str | None]:
        """redact()'s patterns, longest values first (None: a value too short to match safely)."""
        patterns = [_phone_pattern(self.phone, self.country_code)]
        patterns += _word_runs({getattr(self, f) for f in _WORDED}
                               | {form for f in _WORDED for form in _transliterations(getattr(self, f))})
        for value in sorted(self._redaction[0], key=len, reverse=True):
            if _UNSPACED_SCRIPT.search(value):
                patterns.append(re.escape(_fold(value)) if len(value) >= 2 else None)
            else:
                patterns.append(rf"(?<!\w){re.escape(_fold(value))}(?!\w)" if len(value) >= 3 else None)
        return patterns

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Address:
        names = _field_names(cls)
        return cls(**{k: str(v) for k, v in data.items() if k in names and v is not None})


@dataclass(frozen=True)
class OrderItem:
    order_item_id: str
    sku: str
    quantity: int  # quantity still to ship
    title: str = ""
    asin: str = ""
    unit_price: Money | None = None
    ioss_number: str = ""
    quantity_shipped: int = 0
    programs: tuple[str, ...] = ()  # Amazon's item programs: TRANSPARENCY (connector/transparency.py)

    def to_dict(self) -> dict[str, Any]:
        d = _field_values(self)
        d["unit_price"] = self.unit_price.to_dict() if self.unit_price else None
        programs = d.pop("programs")
        if programs:  # most items have none: their stored form stays as it was
            d["programs"] = list(programs)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderItem:
        data = dict(data)
        price = data.pop("unit_price", None)
        programs = tuple(data.pop("programs", None) or ())
        return cls(unit_price=Money.from_dict(price) if price else None, programs=programs, **data)


class FulfillmentStatus(str, enum.Enum):
    UNSHIPPED = "UNSHIPPED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
    PENDING = "PENDING"
    OTHER = "OTHER"


@dataclass(frozen=True)
class Order:
    """An Amazon MFN order as the connector sees it (one seller account, one marketplace)."""

    order_id: str
    account: str
    marketplace_id: str
    site: str  # two-letter site code: US, UK, DE, ...
    status: FulfillmentStatus
    last_updated: datetime
    items: tuple[OrderItem, ...]
    total: Money | None = None
    ship_to: Address | None = None
    created: datetime | None = None
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    buyer_cancel_requested: bool = False
    programs: tuple[str, ...] = ()
    shipped_package_refs: tuple[str, ...] = ()  # packageReferenceIds Amazon already knows
    # Who put the order in the ledger: "amazon" (the connector's own poll) or "erp" (submitted
    # through the HTTP API). An ERP's order may come from another channel than Amazon, and is
    # confirmed to Amazon only when the ERP asked for it (``confirm``).
    origin: str = "amazon"
    channel: str = "amazon"
    confirm: bool = True

    @property
    def confirms_on_amazon(self) -> bool:
        """Whether the connector sends this order's confirmation to Amazon."""
        return self.channel == "amazon" and self.confirm

    def without_pii(self) -> Order:
        return replace(self, ship_to=None)

    def to_dict(self) -> dict[str, Any]:
        """Serialisable form WITHOUT the ship-to address (PII is stored separately, encrypted)."""
        return {
            "order_id": self.order_id,
            "account": self.account,
            "marketplace_id": self.marketplace_id,
            "site": self.site,
            "status": self.status.value,
            "last_updated": iso(self.last_updated),
            "created": iso(self.created) if self.created else None,
            "ship_by": iso(self.ship_by) if self.ship_by else None,
            "deliver_by": iso(self.deliver_by) if self.deliver_by else None,
            "items": [i.to_dict() for i in self.items],
            "total": self.total.to_dict() if self.total else None,
            "buyer_cancel_requested": self.buyer_cancel_requested,
            "programs": list(self.programs),
            "shipped_package_refs": list(self.shipped_package_refs),
            **({} if self.origin == "amazon" else
               {"origin": self.origin, "channel": self.channel, "confirm": self.confirm}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], ship_to: Address | None = None) -> Order:
        def dt(key: str) -> datetime | None:
            return parse_iso(data[key]) if data.get(key) else None

        return cls(
            order_id=data["order_id"],
            account=data["account"],
            marketplace_id=data["marketplace_id"],
            site=data["site"],
            status=FulfillmentStatus(data["status"]),
            last_updated=parse_iso(data["last_updated"]),
            created=dt("created"),
            ship_by=dt("ship_by"),
            deliver_by=dt("deliver_by"),
            items=tuple(OrderItem.from_dict(i) for i in data["items"]),
            total=Money.from_dict(data["total"]) if data.get("total") else None,
            ship_to=ship_to,
            buyer_cancel_requested=bool(data.get("buyer_cancel_requested")),
            programs=tuple(data.get("programs") or ()),
            shipped_package_refs=tuple(data.get("shipped_package_refs") or ()),
            origin=data.get("origin", "amazon"),
            channel=data.get("channel", "amazon"),
            confirm=bool(data.get("confirm", True)),
        )


@dataclass(frozen=True)
class CatalogItem:
    """Item master entry: what the carrier and customs need to know about one SKU."""

    sku: str
    weight_g: int
    length_cm: Decimal
    width_cm: Decimal
    height_cm: Decimal
    name_en: str
    name_cn: str
    hs_code: str
    declared_value: Money
    has_battery: bool = False
    origin_country: str = "CN"
    category: str = ""  # Amazon's product category (VTR is counted per category); "" = unknown


@dataclass(frozen=True)
class CustomsLine:
    sku: str
    name_en: str
    name_cn: str
    hs_code: str
    quantity: int
    unit_value: Money
    unit_weight_g: int
    origin_country: str = "CN"

    def to_dict(self) -> dict[str, Any]:
        return {**_field_values(self), "unit_value": self.unit_value.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomsLine:
        return cls(**{**data, "unit_value": Money.from_dict(data["unit_value"])})


@dataclass(frozen=True)
class Parcel:
    weight_g: int
    length_cm: Decimal
    width_cm: Decimal
    height_cm: Decimal
    contents: tuple[CustomsLine, ...]
    has_battery: bool = False

    @property
    def declared_value(self) -> Money:
        total = Money(Decimal("0"), self.contents[0].unit_value.currency)
        for line in self.contents:
            total = total + line.unit_value * line.quantity
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"weight_g": self.weight_g, "length_cm": str(self.length_cm), "width_cm": str(self.width_cm),
                "height_cm": str(self.height_cm), "has_battery": self.has_battery,
                "contents": [line.to_dict() for line in self.contents]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Parcel:
        return cls(weight_g=int(data["weight_g"]), length_cm=Decimal(data["length_cm"]),
                   width_cm=Decimal(data["width_cm"]), height_cm=Decimal(data["height_cm"]),
                   has_battery=bool(data["has_battery"]),
                   contents=tuple(CustomsLine.from_dict(line) for line in data["contents"]))


@dataclass(frozen=True)
class ShipmentRequest:
    """Everything a carrier needs to quote or create one package's label."""

    reference: str  # idempotency key, unique per (order, package); the carrier's customer reference
    order_id: str
    site: str
    service: str
    ship_from: Address
    ship_to: Address
    parcel: Parcel
    ioss_number: str = ""
    account: str = ""         # the seller account the order belongs to (Buy Shipping needs it)
    marketplace_id: str = ""


@dataclass(frozen=True)
class Quote:
    carrier: str
    service: str
    price: Money
    transit_days: int | None = None
    tracking_level: str = ""
    promised_delivery: datetime | None = None  # when the carrier promises delivery, if it says
    handling_fee: Money | None = None  # the fixed per-parcel part of the price, when broken out
    chargeable_weight_g: int | None = None  # the weight the price was computed on, when the carrier says


@dataclass(frozen=True)
class Shipment:
    """A label the carrier has issued (or is issuing) for one reference."""

    carrier: str
    reference: str
    carrier_shipment_id: str  # the carrier's own waybill / shipment id
    tracking_number: str | None = None  # None while the carrier is still assigning it
    service: str = ""
    status: str = "created"  # created | cancelled
    # What the carrier said about the label that a person must act on (it changed the handover
    # to a drop-off, say): logged as a warning on the order when the label is recorded.
    notes: tuple[str, ...] = ()


class TrackingStatus(str, enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    IN_TRANSIT = "in_transit"
    CUSTOMS = "customs"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    RETURNING = "returning"  # on its way back to the sender
    RETURNED = "returned"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TrackingEvent:
    """One carrier scan or notice. ``description`` is the carrier's text, in its language;
    ``description_en`` the English one when the carrier gives (or the plugin knows) it."""

    time: datetime  # timezone-aware
    status: TrackingStatus
    description: str
    location: str = ""
    code: str = ""
    description_en: str = ""


@dataclass(frozen=True)
class TrackingInfo:
    """What the carrier says of one parcel. ``error``, when set, says its part of the answer was
    malformed (:func:`connector.kit.values.tracking_or_error`): the engine stores nothing of it and
    counts a failure for this parcel alone."""

    tracking_number: str
    status: TrackingStatus
    events: tuple[TrackingEvent, ...] = ()
    error: str = ""
