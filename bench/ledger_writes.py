"""Write transactions per second through the PostgreSQL ledger's whole write lock (docs/scaling.md).

A write transaction not scoped to one order takes the ledger's write lock exclusive, so this rate
is the ceiling for those, across all workers. Runs 1,000 small write transactions (a watermark
upsert) from 1 and from 4 threads against a fresh schema on the server at MFN_TEST_POSTGRES_URL's
host.

    .venv/bin/python bench/ledger_writes.py
"""
from __future__ import annotations

import os
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.ledger.crypto import PiiCipher  # noqa: E402
from connector.ledger.postgres import PostgresLedger  # noqa: E402

ADMIN_URL = os.environ.get("MFN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WRITES = 1000


def main() -> None:
    schema = f"bench_writes_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            url = ADMIN_URL.split("?")[0] + "?options=" + urllib.parse.quote(f"-csearch_path={schema}")
            ledger = PostgresLedger(url, PiiCipher([Fernet.generate_key()]))
            ledger.migrate()
            now = datetime.now(timezone.utc)
            for threads in (1, 4):
                started = time.perf_counter()
                workers = [threading.Thread(target=lambda k=k: [ledger.set_watermark(f"a{k}", now)
                                                                  for _ in range(WRITES)])
                           for k in range(threads)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                took = time.perf_counter() - started
                print(f"{threads} thread(s): {threads * WRITES / took:,.0f} write transactions/s "
                      f"({took / (threads * WRITES) * 1000:.2f} ms each)")
            ledger.close()
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
