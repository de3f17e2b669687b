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


def test_every_alert_kind_is_documented_where_alerts_are_listed():
    """An alert kind a person, a plugin or an ERP may receive is explained in each list of them."""
    from connector.engine.alerts import AlertKind

    places = {
        "docs/tracking.md": (ROOT / "docs" / "tracking.md").read_text(encoding="utf-8"),
        "docs/plugin-hooks.md": (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8"),
        "docs/erp-integration.md": (ROOT / "docs" / "erp-integration.md").read_text(encoding="utf-8"),
        "mfn_alert's docstring": inspect.getdoc(hookspecs.mfn_alert) or "",
    }
    missing = {}
    for kind in AlertKind:
        row = rf"^\| `{kind.value}` \|"
        wanted = {"docs/tracking.md": row, "docs/plugin-hooks.md": row,
                  "docs/erp-integration.md": rf"`alert\.{kind.value}`",
                  "mfn_alert's docstring": rf"``{kind.value}``"}
        for place, pattern in wanted.items():
            if not re.search(pattern, places[place], re.M):
                missing.setdefault(kind.value, []).append(place)
    assert missing == {}
