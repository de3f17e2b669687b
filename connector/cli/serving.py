"""The HTTP API served from a background thread (``serve``, the demo), on the configured port or,
for the demo when that one is taken, on a free one."""
from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any

import requests


class ApiServer:
    """uvicorn in a thread of its own, so it never takes the process's signals: the command that
    owns the main thread decides how a stop request ends the daemon and the server."""

    def __init__(self, rt: Any, *, host: str | None = None, port: int | None = None,
                 any_port: bool = False) -> None:
        import uvicorn

        from ..api.app import create_app

        settings = rt.config.api
        self.socket = _bind(host or settings.host, settings.port if port is None else port, any_port)
        host, port = self.socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        # log_config=None: uvicorn's warnings and errors go through the root logger in the format
        # --log-format chose, not through handlers of its own writing plain text beside it.
        self.server = uvicorn.Server(uvicorn.Config(create_app(rt), log_level="warning", access_log=False,
                                                    lifespan="off", log_config=None))
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

    def stop(self) -> None:
        """Finish the requests in flight, then stop (from any thread)."""
        self.server.should_exit = True

    def wait(self) -> None:
        """Until Ctrl-C. It sleeps rather than joins: a join that Ctrl-C interrupts leaves the thread
        marked stopped while uvicorn still runs, and the exit then closes the socket under it."""
        try:
            while self.thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


def _bind(host: str, port: int, any_port: bool) -> socket.socket:
    try:
        return _listening(host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not any_port:
            raise
        return _listening(host, 0)  # another demo holds the port: any free one will do


def _listening(host: str, port: int) -> socket.socket:
    """A socket bound and listening: with SO_REUSEADDR two processes may both bind a port nobody
    listens on yet, and the second would only fail later, in uvicorn's own listen()."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock
