"""`mfn-connector workers` on a PostgreSQL ledger: who is alive and who owns which account."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.config import load_config
from connector.configured import open_configured_ledger

LEASE = 30.0


@pytest.mark.parametrize("ledger_backend", ["postgresql"], indirect=True)
def test_json_names_no_owner_for_a_lease_given_back(write_config) -> None:
    """A clean stop ends the leases but keeps the last owner in the row (the next to take one counts
    a handover). The text listing shows such a lease "(free)"; the JSON must say so too, not name
    the stopped worker as the account's owner, or a script looking for unowned accounts finds none."""
    path = write_config()
    config = load_config(path)
    accounts = [a.name for a in config.accounts]
    ledger = open_configured_ledger(config)
    try:
        ledger.worker_heartbeat("gone", host="h", pid=1, accounts=accounts, jobs=("@leader",),
                                lease_seconds=LEASE)
        ledger.release_worker("gone", lease_seconds=LEASE)
        ledger.worker_heartbeat("alive", host="h", pid=2, accounts=accounts[:1], jobs=(),
                                lease_seconds=LEASE)
    finally:
        ledger.close()
    listed = CliRunner().invoke(cli, ["--config", str(path), "workers", "--json"])
    assert listed.exit_code == 0, listed.output
    leases = {ls["account"]: ls["worker_id"] for ls in json.loads(listed.output)["leases"]}
    assert leases == {"@leader": None, accounts[0]: "alive", **{a: None for a in accounts[1:]}}
    text = CliRunner().invoke(cli, ["--config", str(path), "workers"]).output
    assert "(free)" in text and "gone" not in text, text
