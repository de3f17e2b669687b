"""UPU S10 item identifiers: two letters, an 8-digit serial, a check digit, the ISO country code.

``LX123456785CN`` -- service indicator ``LX`` (ePacket), serial ``12345678``, check digit ``5``,
posted in China. The check digit is UPU S10's mod-11 scheme: weights 8 6 4 2 3 5 9 7 over the
serial, ``11 - (sum mod 11)``, where 10 becomes 0 and 11 becomes 5. Pure functions, no I/O.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
S10_PATTERN = re.compile(r"^([A-Z]{2})(\d{8})(\d)([A-Z]{2})$")
CHINA_POST_PATTERN = r"^[A-Z]{2}\d{9}CN$"  # what Amazon checks "China Post" numbers against


def check_digit(serial: str | int) -> int:
    """The S10 check digit of an 8-digit serial number."""
    digits = f"{serial:08d}" if isinstance(serial, int) else serial
    if not re.fullmatch(r"\d{8}", digits):
        raise ValueError(f"an S10 serial is 8 digits, got {serial!r}")
    remainder = sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True)) % 11
    digit = 11 - remainder
    return {10: 0, 11: 5}.get(digit, digit)


def is_valid_s10(number: str, *, country: str | None = None) -> bool:
    """True when ``number`` is a well-formed S10 identifier whose check digit is right.

    ``country`` (e.g. ``"CN"``) also requires that suffix.
    """
    match = S10_PATTERN.match(number or "")
    if not match:
        return False
    if country is not None and match.group(4) != country.upper():
        return False
    return int(match.group(3)) == check_digit(match.group(2))


def make_s10(prefix: str, serial: int, country: str = "CN") -> str:
    """Build an S10 identifier, check digit included: ``make_s10("RR", 12345678) == "RR123456785CN"``."""
    if not re.fullmatch(r"[A-Z]{2}", prefix):
        raise ValueError(f"an S10 service indicator is two capital letters, got {prefix!r}")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ValueError(f"an S10 country code is two capital letters, got {country!r}")
    if not 0 <= serial <= 99_999_999:
        raise ValueError(f"an S10 serial is 0..99999999, got {serial}")
    return f"{prefix}{serial:08d}{check_digit(serial)}{country}"


def s10_numbers(prefix: str, start: int, country: str = "CN") -> Iterator[str]:
    """Consecutive S10 identifiers from serial ``start`` on (a generator; wraps at 10^8)."""
    serial = start
    while True:
        yield make_s10(prefix, serial % 100_000_000, country)
        serial += 1
