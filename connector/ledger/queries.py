"""Order and package listings for the API: filters, cursor pagination, in SQL.

Mixed into the SQL ledger stores; uses their ``_conn``, ``_record`` and ``_package``. Pages are
keyset pages: orders by ``(created_at, order_id)``, packages by ``id`` -- a row written while a
client walks the pages neither shifts nor repeats the rows it has yet to see. Listings never
decrypt buyer data (``with_pii=False``, the default, builds records whose ``ship_to`` is None).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .base import OrderRecord, OrderState, Package, PackageState
from .timestamps import to_text as _ts

# The columns SqliteLedger._record reads; ``pii`` is added as NULL unless buyer data is wanted.
_ORDER_COLUMNS = ("order_id, data, state, hold_reason, hold_message, held_from, attempts, next_attempt_at,"
                  " pii_purged_at, updated_at, created_at, pii IS NOT NULL AS address_on_file")
_SQL_CHUNK = 500  # bound parameters per IN (...) list


def _iso_ms_ceiling(dt: datetime) -> str:
    """``dt`` as model.iso() text (the form of orders.ship_by), rounded up to the millisecond, so
    ``ship_by < this`` keeps every ship-by strictly before ``dt``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    if dt.microsecond % 1000:
        dt += timedelta(microseconds=1000 - dt.microsecond % 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _values(kind: type, values: Iterable[Any] | None) -> list[str] | None:
    return None if values is None else sorted({kind(v).value for v in values})


class OrderQueries:
    """order_page / order_detail / package_page / latest_packages."""

    def _order_select(self, with_pii: bool) -> str:
        return f"SELECT {_ORDER_COLUMNS}, {'pii' if with_pii else 'NULL AS pii'} FROM orders"

    def order_page(self, *, states: Iterable[OrderState | str] | None = None, site: str | None = None,
                   account: str | None = None, hold_reason: str | None = None,
                   ship_by_before: datetime | None = None, updated_since: datetime | None = None,
                   after: tuple[str, str] | None = None, limit: int,
                   with_pii: bool = False) -> list[tuple[OrderRecord, str]]:
        """Up to ``limit`` orders matching every filter given, by (created_at, order_id), after the
        position ``after`` = (created_at text, order_id) of the last row of the previous page.

        Each row comes as (record, its created_at text: the next page's ``after``). Buyer addresses
        are not decrypted unless ``with_pii``. ``ship_by_before``: ship-by strictly before it
        (orders without one are left out); ``updated_since``: updated at or after it."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        filters = _filters(OrderState, states, {"site": site, "account": account, "hold_reason": hold_reason},
                           updated_since)
        if filters is None:
            return []
        where, params = filters
        if ship_by_before is not None:
            where.append("ship_by IS NOT NULL AND ship_by < ?")
            params.append(_iso_ms_ceiling(ship_by_before))
        if after is not None:
            created_at, order_id = after
            where.append("(created_at, order_id) > (?, ?)")
            params.extend((str(created_at), str(order_id)))
        sql = self._order_select(with_pii)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, order_id LIMIT ?"
        params.append(limit)
        rows = self._conn().execute(sql, params).fetchall()
        return [(self._record(r), r["created_at"]) for r in rows]

    def order_detail(self, order_id: str, *, with_pii: bool = False) -> tuple[OrderRecord, bool] | None:
        """One order and whether a buyer address is on file, decrypting it only ``with_pii``."""
        row = self._conn().execute(
            self._order_select(with_pii) + " WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        return self._record(row), bool(row["address_on_file"])

    def package_page(self, *, states: Iterable[PackageState | str] | None = None, carrier: str | None = None,
                     order_id: str | None = None, updated_since: datetime | None = None,
                     after_id: int | None = None, limit: int) -> list[Package]:
        """Up to ``limit`` packages matching every filter given, by id, with an id above ``after_id``."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        filters = _filters(PackageState, states, {"carrier": carrier, "order_id": order_id}, updated_since)
        if filters is None:
            return []
        where, params = filters
        if after_id is not None:
            where.append("id > ?")
            params.append(int(after_id))
        sql = "SELECT * FROM packages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        rows = self._conn().execute(sql, params).fetchall()
        return [self._package(r) for r in rows]

    def latest_packages(self, order_ids: Sequence[str]) -> dict[str, Package]:
        """The newest package (highest id) of each of these orders that has one."""
        ids = list(dict.fromkeys(order_ids))
        found: dict[str, Package] = {}
        for start in range(0, len(ids), _SQL_CHUNK):
            chunk = ids[start:start + _SQL_CHUNK]
            rows = self._conn().execute(
                "SELECT * FROM packages WHERE id IN (SELECT MAX(id) FROM packages"
                f" WHERE order_id IN ({', '.join('?' * len(chunk))}) GROUP BY order_id)", chunk).fetchall()
            for r in rows:
                package = self._package(r)
                found[package.order_id] = package
        return found


def _filters(kind: Any, states: Any, equal: dict[str, str | None],
             updated_since: datetime | None) -> tuple[list[str], list[Any]] | None:
    """WHERE clauses and parameters shared by the listings: states, equal columns, updated since;
    None when ``states`` is given and empty (nothing can match)."""
    where: list[str] = []
    params: list[Any] = []
    wanted = _values(kind, states)
    if wanted is not None:
        if not wanted:
            return None
        where.append(f"state IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if updated_since is not None:
        where.append("updated_at >= ?")
        params.append(_ts(updated_since))
    return where, params
