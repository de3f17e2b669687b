"""Every setting the configuration loader accepts is named in the README or docs/ (as `name` or
`section.name`): a setting nobody can find is one nobody can use, or one left behind."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connector.config import SCHEMA

ROOT = Path(__file__).resolve().parent.parent


def settings(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, key) of every named property, into objects and lists of objects; the
    free-form maps (quotas per operation, a plugin's own section) stop the walk."""
    for key, child in node.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        yield where, key
        for branch in (child, child.get("items", {})):
            if isinstance(branch, dict):
                yield from settings(branch, f"{where}[]" if branch is not child else where)


def documented_names() -> set[str]:
    texts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    names: set[str] = set()
    for text in texts:
        for quoted in re.findall(r"`([^`\n]+)`", text):
            names.update(re.findall(r"[A-Za-z_][\w]*", quoted))
        for block in re.findall(r"^```ya?ml\n(.*?)^```", text, re.M | re.S):  # the YAML examples' keys
            names.update(re.findall(r"([A-Za-z_]\w*):", block))
    return names


def test_the_walk_finds_the_settings():
    found = dict(settings(SCHEMA))
    assert {"engine.workers", "amazon.search_lag_seconds", "accounts[].refresh_token",
            "selection.overrides[].action"} <= set(found)


def test_every_setting_is_named_in_the_documentation():
    names = documented_names()
    missing = sorted(path for path, key in settings(SCHEMA) if key not in names)
    assert missing == [], f"settings no document names: {missing}"
