"""Quota state in the ledger: what each token bucket had left, so a restart neither storms nor stalls.

A bucket's state is small JSON per (account key, operation) -- tokens left, when they were counted,
a 429 penalty still running -- written as wall-clock times so another process (a restarted daemon,
or the worker that takes the account over) can carry on from it. Mixed into the SQL ledger stores;
uses their ``_conn``/``_write``/``_now``.
"""
from __future__ import annotations

import json
from typing import Any


class QuotaStore:
    def load_quota_state(self, account_key: str) -> dict[str, dict[str, Any]]:
        """operation -> the state last saved for ``account_key`` (empty when none)."""
        rows = self._conn().execute("SELECT operation, data FROM quota_state WHERE account_key = ?",
                                    (account_key,)).fetchall()
        return {r["operation"]: json.loads(r["data"]) for r in rows}

    def save_quota_state(self, account_key: str, states: dict[str, dict[str, Any]]) -> None:
        """Store the state of several operations of one account in one transaction."""
        if not states:
            return
        # Scoped to the account's own rows: a save every few seconds per account while its buckets
        # are in use must not stop every other writer, as an unscoped transaction would.
        with self._write(f"quota:{account_key}") as conn:
            now = self._now()
            for operation, state in states.items():
                conn.execute("INSERT INTO quota_state (account_key, operation, data, updated_at)"
                             " VALUES (?, ?, ?, ?) ON CONFLICT (account_key, operation) DO UPDATE"
                             " SET data = excluded.data, updated_at = excluded.updated_at",
                             (account_key, operation, json.dumps(state, sort_keys=True), now))
