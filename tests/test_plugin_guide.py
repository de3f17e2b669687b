"""docs/writing-a-carrier-plugin.md says what the kit and the example plugin really do: a plugin
author reads it before the code, and a failing contract test is looked up there."""
from __future__ import annotations

import re
from pathlib import Path

from connector.kit.testing import CarrierContract

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "writing-a-carrier-plugin.md").read_text(encoding="utf-8")


def test_every_contract_test_is_in_the_guide_table():
    rows = set(re.findall(r"^\| `(test_\w+)(?:\[[^\]]*\])?` \|", GUIDE, re.M))
    tests = {name for name in dir(CarrierContract) if name.startswith("test_")}
    assert tests - rows == set(), "contract tests the guide does not explain"
    assert rows - tests == set(), "the guide explains contract tests that do not exist"
