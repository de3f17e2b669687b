"""A ledger holding a large history of finished orders, built fast and cached under bench/.cache/.

The rows are copies of real ones: a small sandbox run (``mfn-connector run --once`` against the
emulators) ships a few dozen orders, and each history order clones one of them -- its order row,
package row and transitions -- under a new order id, moved into the past and carried to
DELIVERED, its ship-to address sealed again under the new id with the ledger's own key (so reading
it costs a real decryption). 97% are delivered 1 to 25 days ago (inside the 30-day PII retention,
so a purge has nothing due), 3% were cancelled (address already erased). The event outbox is left
empty. Everything is written in one transaction with plain SQL, through the ledger's connection.

The file is cached by size, schema version and generator version
(``bench/.cache/history-<n>-s<schema>-g<gen>.db``), with its PII key beside it.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from common import CLI, ROOT, Child, Sandbox, bench_config, failure, workdir

CACHE = ROOT / "bench" / ".cache"
GENERATOR = 1             # bump when the rows written here change
TEMPLATE_ORDERS = 60      # sandbox orders shipped for real to serve as templates
CANCELLED_EVERY = 33      # about 3% of the history was cancelled


def cached_history(size: int, *, log: Any = print) -> tuple[Path, Path]:
    """(ledger file, PII key file) of a ledger with ``size`` finished orders, built when missing."""
    from connector.ledger.migrations import latest_version

    CACHE.mkdir(parents=True, exist_ok=True)
    stem = CACHE / f"history-{size}-s{latest_version()}-g{GENERATOR}"
    db, key = stem.with_suffix(".db"), stem.with_suffix(".key")
    if db.exists() and key.exists():
        return db, key
    for stale in CACHE.glob(f"history-{size}-*"):  # another schema or generator version
        stale.unlink()
    started = time.monotonic()
    log(f"building a {size:,}-order ledger in {db.relative_to(ROOT)} (cached for later runs) ...")
    templates, key_text = _templates()
    partial = stem.with_suffix(".partial.db")
    # the ledger's side files: SQLite's WAL and shared memory, the order locks' file
    beside = [Path(f"{partial}{suffix}") for suffix in ("-wal", "-shm", ".keys.lock", ".daemon.lock")]
    for stale in (partial, *beside):
        stale.unlink(missing_ok=True)
    key.write_text(key_text, encoding="utf-8")
    key.chmod(0o600)
    _build(partial, key, templates, size)
    partial.rename(db)
    for leftover in beside:  # closed by now; none belongs to the renamed file
        leftover.unlink(missing_ok=True)
    log(f"built in {time.monotonic() - started:.0f} s")
    return db, key


def install(db: Path, key: Path, state_dir: Path) -> None:
    """Copy a cached ledger and its key into ``state_dir`` where the bench configuration looks."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(db, state_dir / "ledger.db")
    (state_dir / "ledger.db").chmod(0o600)
    shutil.copyfile(key, state_dir / "pii.key")
    (state_dir / "pii.key").chmod(0o600)


# -- templates: real rows from a small sandbox run ---------------------------------------------------

def _templates() -> tuple[list[dict[str, Any]], str]:
    directory = workdir("templates")
    config_path = bench_config(directory, orders=TEMPLATE_ORDERS,
                               quotas={"searchOrders": {"rate": 100, "burst": 100},
                                       "getOrder": {"rate": 100, "burst": 100},
                                       "confirmShipment": {"rate": 100, "burst": 100}},
                               verify_grace=0)
    with Sandbox(config_path) as sandbox:
        for _ in range(3):
            usage = Child([*CLI, "--config", str(config_path), "run", "--once"], env=sandbox.env).wait(600)
            if usage.returncode != 0:
                raise failure("the template run", usage)
    state = directory / "state"
    conn = sqlite3.connect(state / "ledger.db")
    conn.row_factory = sqlite3.Row
    try:
        orders = conn.execute("SELECT * FROM orders WHERE state = 'VERIFIED' AND pii IS NOT NULL"
                              " ORDER BY order_id").fetchall()
        templates = []
        for row in orders:
            packages = conn.execute("SELECT * FROM packages WHERE order_id = ? ORDER BY id",
                                    (row["order_id"],)).fetchall()
            if len(packages) != 1:
                continue
            transitions = conn.execute("SELECT * FROM transitions WHERE order_id = ? ORDER BY id",
                                       (row["order_id"],)).fetchall()
            templates.append({"order": dict(row), "package": dict(packages[0]),
                              "transitions": [dict(t) for t in transitions]})
    finally:
        conn.close()
    if len(templates) < 5:
        raise RuntimeError(f"the template run verified only {len(templates)} single-package orders")
    key_text = (state / "pii.key").read_text(encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    return templates, key_text


# -- the history ----------------------------------------------------------------------------------

def _build(path: Path, key: Path, templates: list[dict[str, Any]], size: int) -> None:
    from connector.ledger import open_ledger
    from connector.ledger.crypto import open_address, seal_address
    from connector.ledger.timestamps import to_text

    ledger = open_ledger(f"sqlite:///{path}", key_file=str(key))
    cipher = ledger._cipher  # the ledger's own key: the sealed addresses are the real thing
    for t in templates:  # each template's address, read once with the same key
        t["address"] = open_address(cipher, t["order"]["order_id"], t["order"]["pii"])
    order_cols = list(templates[0]["order"])
    package_cols = list(templates[0]["package"])
    transition_cols = [c for c in templates[0]["transitions"][0] if c != "id"]
    now = datetime.now(timezone.utc)
    orders, packages, transitions = [], [], []
    for i in range(size):
        t = templates[i % len(templates)]
        order_id = f"800-{i // 10_000_000:07d}-{i % 10_000_000:07d}"
        delivered = now - timedelta(days=1, seconds=(i * 7919) % (24 * 86400))
        created = delivered - timedelta(days=8)
        shift = created - _parse(t["order"]["created_at"])
        data = json.loads(t["order"]["data"])
        data["order_id"] = order_id
        cancelled = i % CANCELLED_EVERY == 0
        data["status"] = "CANCELLED" if cancelled else "SHIPPED"
        for field in ("created", "last_updated", "ship_by", "deliver_by"):
            if data.get(field):
                data[field] = (_parse(data[field]) + shift).isoformat().replace("+00:00", "Z")
        order = dict(t["order"], order_id=order_id, data=json.dumps(data, sort_keys=True, ensure_ascii=False),
                     created_at=to_text(created), updated_at=to_text(delivered),
                     ship_by=_moved(t["order"]["ship_by"], shift, to_text))
        if cancelled:
            order.update(state="CANCELLED", pii=None, pii_purged_at=to_text(created + timedelta(hours=2)),
                         updated_at=to_text(created + timedelta(hours=2)))
            orders.append(order)
            transitions.append(_transition(order_id, None, created, None, "NEW", "ingested", to_text))
            transitions.append(_transition(order_id, None, created + timedelta(hours=2), "NEW", "CANCELLED",
                                           "cancelled on Amazon", to_text))
            continue
        order.update(state="DELIVERED", pii=seal_address(cipher, order_id, t["address"]))
        orders.append(order)
        package_id = len(packages) + 1
        package = {c: _moved(v, shift, to_text) if c.endswith("_at") else v for c, v in t["package"].items()}
        package.update(id=package_id, order_id=order_id, idempotency_key=f"bench-{order_id}-1",
                       state="DELIVERED", tracking_number=f"YT{i:016d}", label_path="",
                       first_scan_at=to_text(created + timedelta(days=1)), last_scan_at=to_text(delivered),
                       delivered_at=to_text(delivered), scans=6, next_track_at=None,
                       printed_at=to_text(created + timedelta(hours=1)),
                       last_printed_at=to_text(created + timedelta(hours=1)),
                       handed_over_at=to_text(created + timedelta(hours=6)), updated_at=to_text(delivered))
        packages.append({c: package.get(c) for c in package_cols})
        for tr in t["transitions"]:
            transitions.append({**{c: tr[c] for c in transition_cols}, "order_id": order_id,
                                "package_id": package_id if tr["package_id"] is not None else None,
                                "at": _moved(tr["at"], shift, to_text)})
        scanned = created + timedelta(days=1)
        for pid in (package_id, None):  # the parcel followed to its delivery, the order with it
            transitions.append(_transition(order_id, pid, scanned, "VERIFIED", "IN_TRANSIT", "", to_text))
            transitions.append(_transition(order_id, pid, delivered, "IN_TRANSIT", "DELIVERED", "", to_text))
    with ledger._write() as conn:
        _insert(conn, "orders", order_cols, orders)
        _insert(conn, "packages", package_cols, packages)
        _insert(conn, "transitions", transition_cols, transitions)
    conn = ledger._conn()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ledger.close()


def _transition(order_id: str, package_id: int | None, at: datetime, from_state: str | None, to_state: str,
                note: str, to_text: Any) -> dict[str, Any]:
    return {"order_id": order_id, "package_id": package_id, "at": to_text(at), "from_state": from_state,
            "to_state": to_state, "note": note}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _moved(value: Any, shift: timedelta, to_text: Any) -> Any:
    return to_text(_parse(value) + shift) if isinstance(value, str) and value[:2] == "20" else value


def _insert(conn: Any, table: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    values = [tuple(r.get(c) for c in columns) for r in rows]
    many = getattr(conn, "executemany", None)
    if many is not None:
        many(sql, values)
    else:
        for v in values:
            conn.execute(sql, v)


if __name__ == "__main__":
    import sys

    print(cached_history(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
