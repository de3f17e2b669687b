"""What the benchmarks share: the bench configuration, the in-process sandbox, measured children.

Every figure runs the real ``mfn-connector`` as a child process, so its CPU time and peak RSS
are its own: bench/spawn.py starts it from a small fresh interpreter and reads ``os.wait4`` for
that one process (``RUSAGE_CHILDREN`` would keep the largest RSS of every earlier child, and a
child forked straight from the bench would start from the bench's RSS). The emulators run in the
bench's own process.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLI = [sys.executable, "-m", "connector.cli"]
SPAWN = Path(__file__).resolve().parent / "spawn.py"
# "Quotas out of the way": figures about the daemon's own cost, not Amazon's pacing, lift every
# bucket on both sides (the emulator enforces what the configuration says).
LIFTED = {"rate": 1000, "burst": 1000}
LIFTED_OPERATIONS = ("searchOrders", "getOrder", "confirmShipment")


class Unavailable(Exception):
    """A figure that cannot be measured on this code yet (the reason names what is missing)."""


def bench_config(directory: Path, *, orders: int, accounts: Iterable[str] = ("demo-na",),
                 quotas: dict[str, dict[str, float]] | None = None, threads: int = 8,
                 verify_grace: float | None = None, ledger_url: str | None = None,
                 extra: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A configuration from config/sandbox.yaml for the bench: one seller per name in ``accounts``
    (region NA, the US marketplace only, so each seller's buckets are plain), ``orders`` seeded
    per seller, Amazon's published quotas unless ``quotas`` overrides some, production's verify
    grace unless ``verify_grace`` is given, every label bought from a direct carrier (so each one
    goes through confirmShipment), logging at WARNING. Returns the file's path."""
    data = yaml.safe_load((ROOT / "config" / "sandbox.yaml").read_text(encoding="utf-8"))
    data["state_dir"] = str(directory / "state")
    data["catalog"] = str(ROOT / "config" / "catalog.sandbox.csv")
    template = next(a for a in data["accounts"] if a["name"] == "demo-na")
    data["accounts"] = [dict(template, name=name, marketplaces=["US"], refresh_token=f"Atzr|bench-{name}")
                        for name in accounts]
    data["amazon"]["quotas"] = dict(quotas or {})
    data["amazon"]["read_timeout_seconds"] = 30
    data["engine"]["workers"] = threads
    for setting in ("poll_interval_seconds", "retry_delay_seconds", "retry_delay_max_seconds"):
        data["engine"].pop(setting, None)  # production defaults
    data["amazon"].pop("backoff_base_seconds", None)
    if verify_grace is None:
        data["engine"].pop("verify_grace_seconds", None)  # production default: the poll verifies
    else:
        data["engine"]["verify_grace_seconds"] = verify_grace
    data["routing"] = {"default": ["yunexpress:*"]}
    data["sandbox"]["orders"] = orders
    data["logging"] = {"level": "WARNING", "format": "text"}
    if ledger_url:
        data.setdefault("ledger", {})["url"] = ledger_url
    if extra is not None:
        extra(data)
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def lifted_quotas() -> dict[str, dict[str, float]]:
    return {op: dict(LIFTED) for op in LIFTED_OPERATIONS}


def workdir(name: str) -> Path:
    """A fresh directory, removed when the bench exits (a ledger copy can be hundreds of MB)."""
    path = Path(tempfile.mkdtemp(prefix=f"mfn-bench-{name}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class Sandbox:
    """The emulators of ``config_path`` in this process, with a count of SP-API answers by
    (operation, status) -- the 429s the daemon met included."""

    def __init__(self, config_path: Path) -> None:
        from connector.config import load_config
        from connector.plugins import load_plugins
        from connector.sandbox.runner import start_sandbox

        self.config_path = config_path
        self._sandbox = start_sandbox(load_config(config_path), load_plugins(), base_port=0)
        self.env = dict(os.environ, **self._sandbox.env)
        self.statuses: Counter[tuple[str, int]] | None = self._count_statuses()

    def _count_statuses(self) -> Counter[tuple[str, int]] | None:
        server = self._sandbox.servers.get("spapi")
        emulator = getattr(server, "emulator", None)
        respond = getattr(emulator, "_respond", None)
        if respond is None:
            return None  # the emulator changed shape: the figure says "not counted"
        counts: Counter[tuple[str, int]] = Counter()

        def counting(operation: str, status: int, body: Any, *args: Any, **kwargs: Any) -> Any:
            counts[(operation, int(status))] += 1  # called under the emulator's lock
            return respond(operation, status, body, *args, **kwargs)

        emulator._respond = counting
        return counts

    def throttled(self) -> dict[str, int] | None:
        """429 answers per SP-API operation so far (None when they could not be counted)."""
        if self.statuses is None:
            return None
        return {op: n for (op, status), n in sorted(self.statuses.items()) if status == 429}

    def calls(self, operation: str, status: int | None = None) -> int:
        if self.statuses is None:
            return 0
        return sum(n for (op, st), n in self.statuses.items()
                   if op == operation and (status is None or st == status))

    def spapi_state(self) -> dict[str, Any]:
        return self._sandbox.servers["spapi"].emulator.state()

    def stop(self) -> None:
        self._sandbox.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Usage:
    """What one child process cost: wall seconds, CPU seconds (user + system), peak RSS."""

    returncode: int
    wall: float
    cpu: float
    maxrss_mb: float
    stderr: str = ""
    timed_out: bool = False


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Child:
    """A child process whose own resource usage is read when it ends (through bench/spawn.py)."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, stdout: Any = None,
                 cwd: Path | None = None) -> None:
        self._err = tempfile.TemporaryFile()
        fd, self._report = tempfile.mkstemp(prefix="mfn-bench-usage-", suffix=".json")
        os.close(fd)
        self.started = time.monotonic()
        # A session of its own: a SIGKILL reaches the command as well as the launcher.
        self.proc = subprocess.Popen([sys.executable, str(SPAWN), self._report, *args], env=env, cwd=cwd,
                                     stdout=stdout if stdout is not None else subprocess.DEVNULL,
                                     stderr=self._err, start_new_session=True)
        self.usage: Usage | None = None
        self._command_pid: int | None = None

    def command_pid(self) -> int | None:
        """The command's process id (the launcher's one child), from Linux's /proc; None where that
        cannot be read (another system, or the command not started yet)."""
        if self._command_pid is None:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                return None
            if children:
                self._command_pid = int(children[0])
        return self._command_pid

    def cpu_so_far(self) -> float | None:
        """The command's CPU time (user + system, seconds) while it runs, read from Linux's /proc;
        None where that cannot be read (another system, or the command not started or gone)."""
        pid = self.command_pid()
        if pid is None:
            return None
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": field 3 (state) on
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime

    def poll(self) -> Usage | None:
        if self.usage is None:
            pid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._finish(status, rusage)
        return self.usage

    def wait(self, timeout: float | None = None) -> Usage:
        """Wait for the end; past ``timeout`` seconds, SIGTERM (then SIGKILL after 30 s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                return self.stop(timed_out=True)
            time.sleep(0.05)
        assert self.usage is not None
        return self.usage

    def stop(self, *, grace: float = 30.0, timed_out: bool = False) -> Usage:
        """SIGTERM, and SIGKILL when it has not exited within ``grace`` seconds."""
        if self.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.usage is None:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this Child started
                _, status, rusage = os.wait4(self.proc.pid, 0)
                self._finish(status, rusage)
        assert self.usage is not None
        self.usage.timed_out = self.usage.timed_out or timed_out
        return self.usage

    def _finish(self, status: int, rusage: Any) -> None:
        wall = time.monotonic() - self.started
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._err.seek(0)
        stderr = self._err.read().decode("utf-8", "replace")
        self._err.close()
        try:
            with open(self._report, encoding="utf-8") as fh:
                own = json.load(fh)
        except (OSError, ValueError):  # killed before it could write: the launcher's own numbers
            own = {"returncode": self.proc.returncode, "wall": wall,
                   "cpu": rusage.ru_utime + rusage.ru_stime, "maxrss_kb": rusage.ru_maxrss}
        finally:
            os.unlink(self._report)
        self.usage = Usage(returncode=own["returncode"], wall=own["wall"], cpu=own["cpu"],
                           maxrss_mb=own["maxrss_kb"] / 1024,  # kilobytes on Linux
                           stderr=stderr)


def run_cli(config_path: Path, *args: str, env: dict[str, str] | None = None, stdout: Any = None,
            timeout: float | None = None) -> Usage:
    """``mfn-connector --config <config_path> <args>`` to its end (or ``timeout``)."""
    return Child([*CLI, "--config", str(config_path), *args], env=env, stdout=stdout).wait(timeout)


def failure(what: str, usage: Usage) -> RuntimeError:
    return RuntimeError(f"{what} exited {usage.returncode}:\n{usage.stderr[-3000:]}")


def merchant_backlog(sandbox: Sandbox) -> int:
    """The seeded orders the daemon has to ship: merchant-fulfilled, unshipped or partly shipped."""
    details = sandbox.spapi_state()["order_details"]
    return sum(1 for d in details.values() if d.get("fulfilledBy") == "MERCHANT"
               and d.get("fulfillmentStatus") in ("UNSHIPPED", "PARTIALLY_SHIPPED"))


def open_bench_ledger(config_path: Path) -> Any:
    """The bench's own handle on the ledger (made, with its key, before the daemon starts)."""
    from connector.config import load_config
    from connector.ledger import open_ledger

    config = load_config(config_path)
    return open_ledger(config.ledger_url, key_file=str(config.pii_key_file), create_key=True)


def active_count(counts: dict[str, int]) -> int:
    from connector.ledger import ACTIVE_ORDER_STATES

    active = {s.value for s in ACTIVE_ORDER_STATES}
    return sum(n for state, n in counts.items() if state in active)


def watch(children: list[Child], done: Callable[[], bool], *, cap: float, every: float = 1.0) -> float | None:
    """Seconds until ``done()`` holds (checked every ``every`` s), or None past ``cap`` seconds.
    Raises when a child exits first."""
    started = time.monotonic()
    while True:
        for child in children:
            usage = child.poll()
            if usage is not None:
                raise failure("the daemon", usage)
        if done():
            return time.monotonic() - started
        if time.monotonic() - started > cap:
            return None
        time.sleep(every)
