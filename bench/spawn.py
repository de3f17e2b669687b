"""Run one command and write its own resource usage to a JSON file: ``spawn.py REPORT CMD...``.

A process's peak RSS (``ru_maxrss``) starts from its parent's at the fork and survives the exec,
so a command forked straight from the bench (hundreds of MB of emulators and seeded orders) would
report the bench's size. This launcher is a fresh, small interpreter: what it forks starts from
its few MB, and ``os.wait4`` gives that one child's CPU time and peak RSS. SIGTERM and SIGINT are
passed on to the command; the exit status is the command's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    started = time.monotonic()
    proc = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _, status, usage = os.wait4(proc.pid, 0)  # retried by Python when a signal interrupts it
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    with open(report, "w", encoding="utf-8") as fh:
        json.dump({"returncode": code, "wall": time.monotonic() - started,
                   "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}, fh)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
