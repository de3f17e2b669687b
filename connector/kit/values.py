"""Pure helpers for mapping code: lenient readers of carrier answers, units, batches, PDFs.

Carrier APIs send numbers as strings, strings with spaces, ``null`` for empty; these readers
never raise on such input, they answer ``None`` (or ``""``) and let the mapping decide.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

T = TypeVar("T")

_INTEGER = re.compile(r"\s*-?\d+\s*")


def text(value: Any) -> str:
    """``value`` as stripped text; ``None`` is ``""``."""
    return "" if value is None else str(value).strip()


def integer(value: Any) -> int | None:
    """An int from an int, a whole float or a digit string; ``None`` otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a number or numeric text; ``None`` otherwise (booleans included)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def kilograms(grams: int | Decimal) -> float:
    """Grams to kilograms rounded half-up to 3 decimals (the usual API precision)."""
    return float((Decimal(grams) / Decimal(1000)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def whole_centimetres(value: Decimal | int | float) -> int:
    """Whole centimetres, rounded up (APIs that take integers), at least 1."""
    return max(1, math.ceil(Decimal(str(value))))


def cents(amount: Decimal) -> float:
    """A money amount as a JSON number with two decimals, rounded half-up."""
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (a carrier's batch size), in order."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def looks_like_pdf(data: bytes) -> bool:
    """A whole PDF: the header at the start and the end-of-file marker near the end (a
    truncated download fails this)."""
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
