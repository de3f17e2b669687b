"""connector.kit.values: the lenient readers and unit helpers every carrier mapping shares."""
from __future__ import annotations

from decimal import Decimal

import pytest

from connector.kit.values import (
    cents,
    chunks,
    decimal,
    integer,
    kilograms,
    looks_like_pdf,
    text,
    whole_centimetres,
)


def test_pdf_check():
    assert looks_like_pdf(b"%PDF-1.4\n...\n%%EOF\n")
    assert not looks_like_pdf(b"%PDF-1.4\n... truncated")
    assert not looks_like_pdf(b"<html>Not found</html>")


@pytest.mark.parametrize("value, expected", [(None, ""), ("  a ", "a"), (5, "5")])
def test_text(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), (" 42 ", 42), ("-1", -1), (True, 1),
                                             (3.5, None), ("4x", None), (None, None)])
def test_integer(value, expected):
    assert integer(value) == expected


@pytest.mark.parametrize("value, expected", [("1.50", Decimal("1.50")), (2, Decimal(2)), ("nan", None),
                                             ("abc", None), (True, None), (None, None)])
def test_decimal(value, expected):
    assert decimal(value) == expected


def test_units():
    assert kilograms(250) == 0.25 and kilograms(1) == 0.001 and kilograms(Decimal("1234.5")) == 1.235
    assert whole_centimetres(Decimal("20.1")) == 21 and whole_centimetres(0) == 1
    assert cents(Decimal("4.005")) == 4.01


def test_chunks():
    assert list(chunks(["a", "b", "c"], 2)) == [["a", "b"], ["c"]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks(["a"], 0))
