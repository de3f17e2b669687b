"""Shared fixtures: a sandbox on loopback and a configuration pointing at it.

The configuration is the real ``config/sandbox.yaml`` with test-sized overrides, so the file
users run is the file the tests run.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connector.config import load_config
from connector.configured import load_config_with_plugins
from connector.engine.runtime import build_runtime
from connector.plugins import load_plugins
from connector.sandbox.runner import start_sandbox

from .postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_YAML = ROOT / "config" / "sandbox.yaml"


def deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


# Suites that run against both ledger stores (a test in them that uses ``ledger_backend``, directly or
# through ``write_config``/``world``, runs once per store); elsewhere the store is SQLite.
BOTH_STORES = ("tests/ledger/", "tests/e2e/test_engine_e2e.py", "tests/e2e/test_crash.py",
               "tests/e2e/test_faults.py", "tests/e2e/test_acceptance.py", "tests/engine/test_purge_files.py",
               "tests/engine/test_purge_unshipped.py",
               "tests/engine/test_feed_faults.py", "tests/e2e/test_soak.py")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ledger_backend" not in metafunc.fixturenames:
        return
    where = Path(metafunc.definition.fspath).resolve().relative_to(ROOT).as_posix()
    # a test that opens the SQLite file itself (it asks for ``db_path``) is about that store alone
    both = where.startswith(BOTH_STORES) and "db_path" not in metafunc.fixturenames
    if both:
        metafunc.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, heaviest first (``slow(weight=N)``, 1 by default): ``make test``
    spreads the suite over pytest-xdist workers, and a two-minute test picked up last would end
    the run alone."""
    def weight(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.kwargs.get("weight", 1)) if marker else 0.0
    items.sort(key=weight, reverse=True)  # stable: the file order within one weight


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ledger_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: which ledger store this test runs against."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        request.getfixturevalue("postgres_server").require()
    return backend


@pytest.fixture
def ledger_url(ledger_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger of this test's store."""
    if ledger_backend == "postgresql":
        return request.getfixturevalue("postgres_server").fresh_url()
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def write_config(tmp_path: Path, request: pytest.FixtureRequest, ledger_backend: str
                 ) -> Callable[..., Path]:
    """Write config/sandbox.yaml with ``overrides`` merged in; state goes under tmp_path."""

    written: list[Path] = []
    ledgers: dict[str, str] = {}  # PostgreSQL: state directory -> its ledger URL

    def write(overrides: dict[str, Any] | None = None, name: str | None = None,
              fresh_state: bool = False) -> Path:
        """``fresh_state`` gives this configuration its own ledger, labels and emulator state;
        otherwise every configuration of the test shares one (e.g. to change plugins mid-test)."""
        n = len(written)
        name = name or ("config.yaml" if n == 0 else f"config-{n}.yaml")
        data = yaml.safe_load(SANDBOX_YAML.read_text(encoding="utf-8"))
        data["state_dir"] = str(tmp_path / ("state" if n == 0 or not fresh_state else f"state-{n}"))
        data["catalog"] = str(ROOT / "config" / "catalog.sandbox.csv")
        if ledger_backend == "postgresql":  # one schema per state directory
            if data["state_dir"] not in ledgers:
                ledgers[data["state_dir"]] = request.getfixturevalue("postgres_server").fresh_url()
            data.setdefault("ledger", {})["url"] = ledgers[data["state_dir"]]
        deep_update(data, overrides or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(path)
        return path

    return write


class SandboxWorld:
    """Emulators on free loopback ports plus the config that points at them."""

    def __init__(self, config_path: Path, faults: Any = None) -> None:
        self.config_path = config_path
        self.host = load_plugins()
        base = load_config(config_path)
        self.sandbox = start_sandbox(base, self.host, base_port=0,
                                     faults=faults)
        self._saved_env = {k: os.environ.get(k) for k in self.sandbox.env}
        self.sandbox.export_env()
        self.env = dict(os.environ)

    def config(self):
        config, _ = load_config_with_plugins(str(self.config_path), self.host)
        return config

    def runtime(self):
        return build_runtime(self.config(), self.host)

    def url(self, name: str) -> str:
        return self.sandbox.servers[name].url

    def state(self, name: str) -> dict[str, Any]:
        return requests.get(self.url(name) + "/_sandbox/state", timeout=10).json()

    def set_faults(self, rates: Any) -> None:
        for server in self.sandbox.servers.values():
            body = rates if isinstance(rates, dict) else _spread(rates)
            requests.post(server.url + "/_sandbox/faults", json=body, timeout=10)

    def close(self) -> None:
        self.sandbox.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _spread(rate: float) -> dict[str, float]:
    from connector.sandbox.framework import FAULT_KINDS

    return {k: rate / len(FAULT_KINDS) for k in FAULT_KINDS}


@pytest.fixture
def world(write_config) -> Callable[..., SandboxWorld]:
    worlds: list[SandboxWorld] = []

    def make(overrides: dict[str, Any] | None = None, faults: Any = None) -> SandboxWorld:
        w = SandboxWorld(write_config(overrides, fresh_state=True), faults=faults)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.close()


@pytest.fixture
def daemon_clock():
    """The daemon's clock (``connector.clock``) as real time before and after the test, which
    may move it on (``tests/e2e/helpers.advance``)."""
    from connector import clock

    clock.reset()
    yield clock
    clock.reset()
