"""The item master's own rows (SKUs upserted through the API), over the catalog file.

One row per SKU in ``catalog_items``: the item as JSON (numbers as exact decimal text, the
declared value as ``{"amount", "currency"}``). Mixed into the SQL ledger stores; uses their
``_conn``/``_write``/``_now``. :class:`connector.catalog.LayeredCatalog` reads these rows first
and the catalog file second.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ..model import CatalogItem, Money


def item_to_json(item: CatalogItem) -> str:
    data: dict[str, Any] = {
        "sku": item.sku, "weight_g": item.weight_g, "length_cm": str(item.length_cm),
        "width_cm": str(item.width_cm), "height_cm": str(item.height_cm), "name_en": item.name_en,
        "name_cn": item.name_cn, "hs_code": item.hs_code, "declared_value": item.declared_value.to_dict(),
        "has_battery": item.has_battery, "origin_country": item.origin_country, "category": item.category,
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def item_from_json(text: str) -> CatalogItem:
    data = json.loads(text)
    return CatalogItem(sku=data["sku"], weight_g=int(data["weight_g"]), length_cm=Decimal(data["length_cm"]),
                       width_cm=Decimal(data["width_cm"]), height_cm=Decimal(data["height_cm"]),
                       name_en=data["name_en"], name_cn=data["name_cn"], hs_code=data["hs_code"],
                       declared_value=Money.from_dict(data["declared_value"]),
                       has_battery=bool(data["has_battery"]), origin_country=data.get("origin_country", "CN"),
                       category=data.get("category", ""))


class ItemStore:
    """put / get / page the item master's own rows."""

    # How SKUs compare and sort: by code point, as Python sorts the catalog file's SKUs that a page
    # merges with these (SQLite's BINARY does; PostgreSQL's default collation is the locale's).
    _SKU = "sku"

    def put_items(self, items: list[CatalogItem]) -> int:
        """Insert or replace each item (by SKU), all in one transaction; returns how many."""
        if not items:
            return 0
        with self._write() as conn:
            now = self._now()
            conn.executemany(
                "INSERT INTO catalog_items (sku, data, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (sku) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                [(item.sku, item_to_json(item), now) for item in items])
        return len(items)

    def get_item(self, sku: str) -> CatalogItem | None:
        row = self._conn().execute("SELECT data FROM catalog_items WHERE sku = ?", (sku,)).fetchone()
        return item_from_json(row["data"]) if row is not None else None

    def items_page(self, after_sku: str | None, limit: int) -> list[CatalogItem]:
        """Up to ``limit`` items whose SKU sorts after ``after_sku`` (None: from the first), by SKU."""
        if after_sku is None:
            rows = self._conn().execute(f"SELECT data FROM catalog_items ORDER BY {self._SKU} LIMIT ?",
                                        (limit,)).fetchall()
        else:
            rows = self._conn().execute(f"SELECT data FROM catalog_items WHERE {self._SKU} > ?"
                                        f" ORDER BY {self._SKU} LIMIT ?", (after_sku, limit)).fetchall()
        return [item_from_json(r["data"]) for r in rows]

    def item_skus(self) -> list[str]:
        return [r["sku"] for r in self._conn().execute(f"SELECT sku FROM catalog_items ORDER BY {self._SKU}")]

    def item_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0])
