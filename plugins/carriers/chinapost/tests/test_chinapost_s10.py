"""UPU S10 identifiers: the mod-11 check digit, validation, the generator the emulator uses."""
from __future__ import annotations

import itertools
import re

import pytest
from mfn_carrier_chinapost.s10 import CHINA_POST_PATTERN, check_digit, is_valid_s10, make_s10, s10_numbers


def _by_hand(serial: str) -> int:
    """The S10 rule written out once more, independently of the module."""
    total = 0
    for digit, weight in zip(serial, [8, 6, 4, 2, 3, 5, 9, 7], strict=True):
        total += int(digit) * weight
    c = 11 - total % 11
    return 0 if c == 10 else 5 if c == 11 else c


# Worked by hand (weights 8 6 4 2 3 5 9 7):
#   RR123456785CN  1*8+2*6+3*4+4*2+5*3+6*5+7*9+8*7 = 204, 204 mod 11 = 6, 11 - 6 = 5 (UPU's example)
#   EE473124829US  sum 200, mod 11 = 2 -> 9
#   LX000000014CN  sum 1*7 = 7 -> 4
#   LX000000080CN  sum 8*7 = 56, mod 11 = 1 -> 10, which becomes 0
#   RR000000005CN  sum 0, mod 11 = 0 -> 11, which becomes 5
#   EE100000003CN  sum 8 -> 3
#   LX987654326CN  72+48+28+12+15+20+27+14 = 236, mod 11 = 5 -> 6
KNOWN_VALID = ["RR123456785CN", "EE473124829US", "LX000000014CN", "LX000000080CN", "RR000000005CN",
               "EE100000003CN", "LX987654326CN"]


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_known_valid_numbers(number):
    assert is_valid_s10(number)
    assert check_digit(number[2:10]) == int(number[10]) == _by_hand(number[2:10])


@pytest.mark.parametrize(("serial", "digit"), [("00000008", 0), ("00000000", 5)])
def test_ten_becomes_zero_and_eleven_becomes_five(serial, digit):
    assert check_digit(serial) == digit


def test_check_digit_matches_the_rule_for_many_serials():
    for n in itertools.chain(range(0, 5000, 7), range(99_990_000, 100_000_000, 997)):
        serial = f"{n:08d}"
        assert check_digit(serial) == _by_hand(serial) == check_digit(n)


@pytest.mark.parametrize("number", [
    "RR123456784CN",    # wrong check digit
    "LX000000015CN",    # wrong check digit
    "RR000000000CN",    # 11 must become 5, not 0
    "RR123456785C",     # short country
    "R1123456785CN",    # digit in the service indicator
    "rr123456785cn",    # lower case
    "RR12345678CN",     # 8 digits in all
    "RR1234567850CN",   # 10 digits
    "", "   ", "YT2222222222222222",
])
def test_invalid_numbers(number):
    assert not is_valid_s10(number)


def test_country_can_be_required():
    assert is_valid_s10("EE473124829US") and not is_valid_s10("EE473124829US", country="CN")
    assert is_valid_s10("RR123456785CN", country="cn")


def test_make_s10_builds_valid_china_post_numbers():
    assert make_s10("RR", 12345678) == "RR123456785CN"
    assert make_s10("LX", 1) == "LX000000014CN"
    assert make_s10("LX", 8) == "LX000000080CN"
    assert make_s10("EE", 47312482, "US") == "EE473124829US"
    pattern = re.compile(CHINA_POST_PATTERN)
    for prefix, serial in itertools.product(("LX", "RR", "EE"), range(0, 300, 13)):
        number = make_s10(prefix, serial)
        assert is_valid_s10(number, country="CN") and pattern.match(number)


@pytest.mark.parametrize(("prefix", "serial", "country"), [("R", 1, "CN"), ("rr", 1, "CN"), ("RR", -1, "CN"),
                                                           ("RR", 100_000_000, "CN"), ("RR", 1, "C")])
def test_make_s10_refuses_bad_parts(prefix, serial, country):
    with pytest.raises(ValueError):
        make_s10(prefix, serial, country)


def test_check_digit_refuses_a_serial_that_is_not_eight_digits():
    with pytest.raises(ValueError, match="8 digits"):
        check_digit("1234567")


def test_generator_yields_consecutive_valid_numbers():
    numbers = list(itertools.islice(s10_numbers("LX", 99_999_998), 4))
    assert [n[2:10] for n in numbers] == ["99999998", "99999999", "00000000", "00000001"]
    assert all(is_valid_s10(n) for n in numbers)
