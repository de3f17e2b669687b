"""The Transparency codes given for an order's items (connector/transparency.py).

One row per order item in ``transparency_codes``: the codes as a JSON list, in the order given.
Mixed into the SQL ledger stores; uses their ``_conn``/``_write``/``_now``/``_transition``.
The codes are product serial numbers, not buyer data: the purge leaves them.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..holds import HoldReason
from .base import OrderFinishedError, OrderState, PackageState, StaleStateError

# A package in these states has had its confirmation sent (or ended): its codes are Amazon's now.
_SENT = (PackageState.CONFIRMING.value, PackageState.CONFIRMED.value, PackageState.VERIFIED.value)
_ENDED = (OrderState.CANCELLED.value, OrderState.VOIDED.value)  # (a shipped one: its packages were sent)


class TransparencyStore:
    """give / read the codes of an order's Transparency items."""

    def transparency_codes(self, order_id: str) -> dict[str, tuple[str, ...]]:
        return self._kept_codes(self._conn(), order_id)

    @staticmethod
    def _kept_codes(conn: Any, order_id: str) -> dict[str, tuple[str, ...]]:
        rows = conn.execute("SELECT order_item_id, codes FROM transparency_codes WHERE order_id = ?",
                            (order_id,)).fetchall()
        return {row["order_item_id"]: tuple(json.loads(row["codes"])) for row in rows}

    def give_transparency_codes(self, order_id: str, codes: Mapping[str, Sequence[str]], *,
                                enrolled: Mapping[str, int] | None = None) -> bool:
        """Keep ``codes`` (order item id -> its codes, checked by the caller) for the order, in
        place of any given before, in one transaction with a line in its history. KeyError for an
        unknown order; OrderFinishedError for an ended one; StaleStateError when a package holding
        one of the items has had its confirmation sent (Amazon has what was sent), unless it is
        LABELED again (Amazon refused it: the codes go with the next send).

        ``enrolled`` (order item id -> units to ship of the order's Transparency items): an order
        held ``transparency_codes_needed`` whose items all have their codes then is released in
        the same transaction (a kill after the codes, or a hold landing as they are given, would
        leave it held with nothing more to wait for). Whether it was released."""
        with self._write(order_id) as conn:
            row = conn.execute("SELECT state FROM orders WHERE order_id = ?", (order_id,)).fetchone()
            if row is None:
                raise KeyError(f"unknown order {order_id}")
            if row["state"] in _ENDED:
                raise OrderFinishedError(f"order {order_id} is {row['state']}: no codes are sent for it")
            for package in conn.execute("SELECT package_ref, state, confirm_attempts, items FROM packages"
                                        " WHERE order_id = ?", (order_id,)).fetchall():
                held = {str(i["order_item_id"]) for i in json.loads(package["items"] or "[]")}
                # LABELED after a send: Amazon refused it (or never showed it), and the next send
                # carries the codes kept then -- the right ones must be able to replace refused ones
                sent = package["state"] in _SENT or (package["confirm_attempts"] > 0
                                                     and package["state"] != PackageState.LABELED.value)
                if sent and held & set(codes):
                    raise StaleStateError(
                        f"order {order_id}: package {package['package_ref']} holding order item(s) "
                        f"{', '.join(sorted(held & set(codes)))} has had its confirmation sent "
                        f"({package['state']}); its codes cannot change here")
            now = self._now()
            conn.executemany(
                "INSERT INTO transparency_codes (order_id, order_item_id, codes, given_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (order_id, order_item_id)"
                " DO UPDATE SET codes = excluded.codes, given_at = excluded.given_at",
                [(order_id, item_id, json.dumps(list(values)), now) for item_id, values in codes.items()])
            given = ", ".join(f"{item_id} ({len(values)})" for item_id, values in sorted(codes.items()))
            self._transition(conn, order_id, None, now, row["state"], row["state"],
                             f"Transparency codes given for order item(s) {given}")
            return enrolled is not None and self._release_coded(conn, order_id, enrolled, now)

    def release_if_coded(self, order_id: str, enrolled: Mapping[str, int]) -> bool:
        """Release the order if it is held ``transparency_codes_needed`` and every item of
        ``enrolled`` (order item id -> units) has its codes: the confirm step's hold, when codes
        landed as it held. Whether it was released."""
        with self._write(order_id) as conn:
            return self._release_coded(conn, order_id, enrolled, self._now())

    def _release_coded(self, conn: Any, order_id: str, enrolled: Mapping[str, int], now: str) -> bool:
        row = self._order_row(conn, order_id, "state, held_from, hold_reason")
        if row["state"] != OrderState.HELD.value \
                or row["hold_reason"] != HoldReason.TRANSPARENCY_CODES_NEEDED.value:
            return False
        kept = self._kept_codes(conn, order_id)
        if any(len(kept.get(item_id, ())) != units for item_id, units in enrolled.items()):  # one per unit
            return False
        self._release_in(conn, order_id, row, now, "released: every Transparency item has its codes")
        return True
