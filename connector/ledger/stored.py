"""JSON the ledger stored, read back without trusting it: a row a hand edit or a restore gone
wrong left unreadable must fail only itself, never a read of many rows."""
from __future__ import annotations

import json
from typing import Any


def stored_json(text: str | None, kind: type = dict, empty: str = "") -> Any:
    """The JSON value of ``kind`` stored in ``text`` (``empty`` when the column holds none); None
    when it holds no such value."""
    try:
        value = json.loads(text or empty)
    except ValueError:
        return None
    return value if isinstance(value, kind) else None
