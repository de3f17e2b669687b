"""The ledger's time text: fixed-width ISO-8601 UTC, so text order is time order (shared by the
SQLite store and its mixins)."""
from __future__ import annotations

from datetime import datetime, timezone

from ..model import parse_iso


def to_text(dt: datetime) -> str:
    """Fixed-width ISO-8601 UTC text. Naive datetimes are UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
