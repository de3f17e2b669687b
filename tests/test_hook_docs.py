"""Every hook is documented (one `## name(args)` heading) and has a `test_hook_<name>` test."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from connector import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("mfn_") and callable(fn)}


def test_there_are_hooks():
    assert "mfn_register_carriers" in HOOKS and len(HOOKS) >= 8


def test_every_hook_is_documented():
    docs = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (mfn_\w+\([^)]*\))$", docs, re.M))
    expected = {f"{name}({', '.join(inspect.signature(fn).parameters)})" for name, fn in HOOKS.items()}
    assert expected - headings == set(), "undocumented hooks"
    assert headings - expected == set(), "documented hooks that do not exist (or wrong arguments)"


def test_every_hook_has_a_test():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [n for n in HOOKS if not re.search(rf"^def test_hook_{n}\b", sources, re.M)]
    assert missing == []
