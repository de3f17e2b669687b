"""The HTTP API against the sandbox: a real runtime over loopback emulators, FastAPI's test
client in front of it, and one token per scope."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connector.api.app import create_app
from connector.engine.loop import Engine


@dataclass
class Api:
    world: Any
    rt: Any
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)  # scope -> secret

    def headers(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    def get(self, path: str, scope: str = "admin", **kw: Any):
        return self.client.get(path, headers=self.headers(scope), **kw)

    def post(self, path: str, scope: str = "admin", **kw: Any):
        return self.client.post(path, headers=self.headers(scope), **kw)

    def put(self, path: str, scope: str = "admin", **kw: Any):
        return self.client.put(path, headers=self.headers(scope), **kw)

    def run_daemon(self, passes: int = 6) -> None:
        """Passes of the real loop (poll, plan, buy, confirm, verify) in this process."""
        engine = Engine(self.rt)
        engine.run_until_quiet(max_passes=passes)


@pytest.fixture
def api(world) -> Callable[..., Api]:
    made: list[Api] = []

    def make(overrides: dict[str, Any] | None = None) -> Api:
        w = world({"sandbox": {"orders": 6}, **(overrides or {})})
        rt = w.runtime()
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        a = Api(w, rt, client)
        for scope in ("read", "operate", "pii", "admin"):
            a.tokens[scope] = rt.ledger.create_token(f"test-{scope}", [scope])[1]
        a.tokens["read+pii"] = rt.ledger.create_token("test-read-pii", ["read", "pii"])[1]
        a.tokens["operate+pii"] = rt.ledger.create_token("test-operate-pii", ["operate", "pii"])[1]
        made.append(a)
        return a

    yield make
    for a in made:
        a.client.close()
        a.rt.close()
