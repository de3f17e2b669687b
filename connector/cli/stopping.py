"""SIGTERM, SIGINT and SIGHUP for the commands that run until stopped (``run``, ``serve``)."""
from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class StopRequests:
    """Installed before the start-up, which can take seconds (plugins, a ledger's migrations, a
    worker waiting for others to register): a stop request then exits 0 at once, as a service
    manager expects, since nothing is in flight yet -- not by the signal's default (SIGTERM: killed)
    or a KeyboardInterrupt. Once :meth:`started`, a stop request calls the command's own stop, which
    lets the steps (and requests) in flight finish and commit."""

    def __init__(self, in_flight: str) -> None:
        self.in_flight = in_flight  # what the message says is being finished
        self._stop: Callable[[], None] | None = None
        # SIGHUP too: by its default it killed the daemon mid-step (exit 129), which systemd counts
        # as a clean exit, so Restart=on-failure left it down. It is a stop like the others (the
        # configuration is read at the next start: there is no reload).
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def started(self, stop: Callable[[], None]) -> None:
        self._stop = stop

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Logged, not echoed: under --log-format json every line of the journal is a JSON object.
        # (A WARNING is shown even before the start-up configures the log, by logging's last resort.)
        name = signal.Signals(signum).name
        if self._stop is None:
            log.warning("received %s while starting: exiting", name)
            raise SystemExit(0)
        log.info("received %s: finishing %s", name, self.in_flight)
        self._stop()
