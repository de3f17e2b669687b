"""Benchmark: the dispatcher's read of what is due, on a peak-sized ledger (docs/scaling.md).

Not one of the issue's figures (``make bench`` does not run it): it times, alone, the two
``schedule()`` reads the dispatcher sends each time an order worker comes free (the orders whose
next step is not a confirmation, and those whose next step is), over a SQLite ledger of
``--orders`` orders in a peak's mix of states: most of them parked (waiting for a feed or for
their read-back), a few hundred due. Reports the thread CPU per pair of reads.

    .venv/bin/python bench/dispatch_read.py [--orders 10000] [--reads 200]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.engine.scheduler import _CONFIRMING, _NOT_CONFIRMING  # noqa: E402
from connector.ledger import open_ledger  # noqa: E402
from connector.model import FulfillmentStatus, Money, Order, OrderItem  # noqa: E402

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
LIMIT = 8 * 4 + 8  # 8 free workers x the dispatcher's window, plus 8 orders in flight to skip
# A peak's mixes, by share of the ledger: (state, share, retry time). An order enters a state
# without a retry time (None); "passed" is a retry whose time has come, "ahead" one parked to
# wait (for a feed, for its read-back). At a peak's start every order is new and due; midway
# most wait parked and a few hundred are due, some of them retries.
MIXES = {
    "start": (("NEW", 1.0, None),),
    "midway": (("NEW", 0.03, None), ("PLANNED", 0.015, None), ("PLANNED", 0.005, "passed"),
               ("LABELED", 0.35, "ahead"), ("CONFIRMING", 0.15, "ahead"), ("CONFIRMED", 0.25, "ahead"),
               ("VERIFIED", 0.20, None)),
}
RETRY_TIMES = {None: None, "passed": NOW - timedelta(seconds=1), "ahead": NOW + timedelta(minutes=5)}


def build(path: Path, orders: int, mix: tuple) -> object:
    ledger = open_ledger(f"sqlite:///{path}", key_file=path.with_suffix(".key"), create_key=True)
    rng = random.Random(7)
    for n in range(orders):
        ledger.upsert_order(Order(
            order_id=f"111-{n:07d}-0000001", account=f"seller{n % 3}", marketplace_id="ATVPDKIKX0DER",
            site="US", status=FulfillmentStatus.UNSHIPPED, last_updated=NOW,
            items=(OrderItem("item-1", "SKU-RED", 1, unit_price=Money(Decimal("9.99"), "USD")),),
            ship_by=NOW + timedelta(minutes=rng.randrange(60 * 48))))
    ids = [f"111-{n:07d}-0000001" for n in range(orders)]
    rng.shuffle(ids)
    conn, start = ledger._conn(), 0
    for state, share, retry in mix:
        chunk = ids[start:start + int(share * orders)]
        start += len(chunk)
        when = RETRY_TIMES[retry]
        with conn:
            conn.executemany("UPDATE orders SET state = ?, next_attempt_at = ? WHERE order_id = ?",
                             [(state, when and when.isoformat(), oid) for oid in chunk])
    return ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--mix", choices=sorted(MIXES), action="append")
    args = parser.parse_args()
    for mix in args.mix or ("start", "midway"):
        _measure(args.orders, args.reads, mix)


def _measure(orders: int, reads: int, mix: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mfn-bench-dispatch-") as directory:
        ledger = build(Path(directory) / "ledger.db", orders, MIXES[mix])
        try:
            due = [len(ledger.schedule(states, due_before=NOW, limit=LIMIT))
                   for states in (_NOT_CONFIRMING, _CONFIRMING)]
            started = time.thread_time()
            for _ in range(reads):
                ledger.schedule(_NOT_CONFIRMING, due_before=NOW, limit=LIMIT)
                ledger.schedule(_CONFIRMING, due_before=NOW, limit=LIMIT)
            per_read = (time.thread_time() - started) / reads
        finally:
            ledger.close()
    print(f"{orders:,} orders, {mix} of a peak; {reads} pairs of reads (limit {LIMIT}; {due[0]} and {due[1]} "
          f"returned); thread CPU per pair {per_read * 1000:.2f} ms")


if __name__ == "__main__":
    main()
