"""docs/writing-a-carrier-plugin.md says what the kit and the example plugin really do: a plugin
author reads it before the code, and a failing contract test is looked up there."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from connector.kit.testing import CarrierContract

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "writing-a-carrier-plugin.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "carrier-plugin"


def test_every_contract_test_is_in_the_guide_table():
    rows = set(re.findall(r"^\| `(test_\w+)(?:\[[^\]]*\])?` \|", GUIDE, re.M))
    tests = {name for name in dir(CarrierContract) if name.startswith("test_")}
    assert tests - rows == set(), "contract tests the guide does not explain"
    assert rows - tests == set(), "the guide explains contract tests that do not exist"


def framework_members_used_by_the_example() -> set[str]:
    """``self.<name>`` in the example's emulator, for every name its own class does not define."""
    tree = ast.parse((EXAMPLE / "src" / "mfn_carrier_acmepost" / "sandbox.py").read_text(encoding="utf-8"))
    (emulator,) = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    own = {node.name for node in emulator.body if isinstance(node, ast.FunctionDef)}
    own |= {target.attr for node in ast.walk(emulator) if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Attribute)}
    used = {node.attr for node in ast.walk(emulator) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "self"}
    return used - own


def test_the_guide_explains_what_the_example_emulator_takes_from_the_framework():
    used = framework_members_used_by_the_example()
    assert {"store", "lock", "record_label", "parcels"} <= used
    quoted = " ".join(re.findall(r"`([^`\n]+)`", GUIDE))
    unexplained = sorted(name for name in used if not re.search(rf"\b{name}\b", quoted))
    assert unexplained == []


def test_the_guide_lays_out_every_file_of_the_example():
    (layout,) = re.findall(r"^```\nexamples/carrier-plugin/.*?^```", GUIDE, re.M | re.S)
    files = [path for folder in ("src", "tests") for path in (EXAMPLE / folder).rglob("*.py")]
    missing = [p.name for p in files if not re.search(rf"^\s+{re.escape(p.name)}\s", layout, re.M)]
    assert files and missing == []


def test_the_example_readme_names_the_file_that_defines_each_name():
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    package = EXAMPLE / "src" / "mfn_carrier_acmepost"
    claims = re.findall(r"`(\w+)` in `(\w+\.py)`", readme)
    assert claims
    for name, module in claims:
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        defined = {target.id for node in tree.body if isinstance(node, ast.Assign)
                   for target in node.targets if isinstance(target, ast.Name)}
        defined |= {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
        assert name in defined, f"{name} is not defined in {module}"
