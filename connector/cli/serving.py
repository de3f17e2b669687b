"""The HTTP API served from a background thread (the demo; tests), on the configured port or, when
that one is taken, on a free one."""
from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any

import requests


class ApiServer:
    def __init__(self, rt: Any) -> None:
        import uvicorn

        from ..api.app import create_app

        settings = rt.config.api
        self.socket = _bind(settings.host, settings.port)
        host, port = self.socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(rt), log_level="warning", access_log=False,
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="api", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError(f"the API did not start on {self.url}")
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()

    def get(self, path: str, token: str) -> tuple[int, str]:
        r = requests.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return r.status_code, r.text

    def wait(self) -> None:
        """Until Ctrl-C."""
        try:
            while self.thread.is_alive():
                self.thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        sock.bind((host, 0))  # another demo holds the port: any free one will do
    return sock
