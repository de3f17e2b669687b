"""Benchmark: the CPU one HTTP call costs the daemon's client, by client library.

Not one of the issue's figures (``make bench`` does not run it): it measures where the HTTP share
of the daemon's CPU per order goes (docs/scaling.md). A small JSON server runs in another process
on loopback, keep-alive; this process sends ``--calls`` JSON POSTs with each client and reports its
own CPU time per call (``time.process_time``: the server's work is not counted).

    .venv/bin/python bench/http_client.py
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import requests
import urllib3

from connector.httpsession import Session

SERVER = r"""
import http.server, socketserver, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):  # one write: headers and body apart would wait on delayed ACKs (~40 ms)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"ok": true, "items": [1, 2, 3]}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode() + body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
HEADERS = {"Authorization": "Basic c2FuZGJveA==", "Content-Type": "application/json",
           "Accept-Language": "en-us"}
BODY = json.dumps({"reference": "PKG-1", "note": "x" * 200}).encode()


def cpu_per_call(call: Callable[[], object], calls: int) -> float:
    """Microseconds of this process's CPU per call, after a warm-up."""
    for _ in range(50):
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/v1/call"
        for _ in range(100):  # until the server listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        daemons = Session()  # requests, the proxy environment read once per host
        plain = requests.Session()
        bare = requests.Session()
        bare.trust_env = False  # no proxy environment, no .netrc look-up
        pool = urllib3.PoolManager()
        timeout = urllib3.Timeout(connect=5, read=30)
        clients = {
            "connector.httpsession.Session (the daemon's)": lambda: daemons.post(
                url, data=BODY, headers=HEADERS, timeout=(5, 30)).json(),
            "requests.Session": lambda: plain.post(url, data=BODY, headers=HEADERS, timeout=(5, 30)).json(),
            "requests.Session, trust_env=False": lambda: bare.post(url, data=BODY, headers=HEADERS,
                                                                   timeout=(5, 30)).json(),
            "urllib3.PoolManager": lambda: json.loads(pool.request("POST", url, body=BODY, headers=HEADERS,
                                                                   timeout=timeout).data),
        }
        for name, call in clients.items():
            print(f"{name}: {cpu_per_call(call, args.calls):.0f} µs of CPU per call")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
