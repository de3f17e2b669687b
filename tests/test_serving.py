"""The API server's socket (connector/cli/serving.py): taken for good before uvicorn starts."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.cli.serving import _bind


def _listening(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_the_port_is_listened_on_at_once_so_a_second_demo_moves_aside() -> None:
    """Bound but not listening, a port can be bound again by another process (SO_REUSEADDR): two
    demos starting together both took it, and the second failed later inside uvicorn, with a
    traceback. Listening at once, the second sees the port taken and takes a free one."""
    first = _bind("127.0.0.1", 0, any_port=False)
    port = first.getsockname()[1]
    try:
        assert _listening(first)
        with pytest.raises(OSError) as taken:
            _bind("127.0.0.1", port, any_port=False)
        assert taken.value.errno == errno.EADDRINUSE
        second = _bind("127.0.0.1", port, any_port=True)
        try:
            assert _listening(second) and second.getsockname()[1] not in (0, port)
        finally:
            second.close()
    finally:
        first.close()


@pytest.fixture
def taken_port():
    """A loopback port another process holds."""
    holder = _bind("127.0.0.1", 0, any_port=False)
    yield holder.getsockname()[1]
    holder.close()


def test_serve_on_a_taken_port_names_it_without_a_traceback(write_config, taken_port) -> None:
    from click.testing import CliRunner

    from connector.cli import cli

    path = write_config()
    result = CliRunner().invoke(cli, ["--config", str(path), "serve", "--no-engine",
                                      "--port", str(taken_port)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"cannot listen on 127.0.0.1:{taken_port}" in result.output and "--port" in result.output


def test_sandbox_serve_on_a_taken_port_says_so_not_state_dir(write_config, taken_port) -> None:
    from click.testing import CliRunner

    from connector.cli import cli

    path = write_config()
    result = CliRunner().invoke(cli, ["--config", str(path), "sandbox", "serve",
                                      "--base-port", str(taken_port)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"port {taken_port}" in result.output and "--base-port" in result.output
    assert "state_dir" not in result.output


@pytest.mark.parametrize("args", [["serve", "--no-engine", "--port", "99999"],
                                  ["sandbox", "serve", "--base-port", "99999"]])
def test_a_port_out_of_range_is_refused_with_a_message_not_an_overflow(write_config, args) -> None:
    from click.testing import CliRunner

    from connector.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(write_config()), *args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "99999 is not in the range" in result.output


@pytest.mark.parametrize("args", [["sandbox", "serve", "--faults", "2"], ["demo", "--faults", "-0.5"]])
def test_a_fault_rate_out_of_range_is_refused_naming_the_option(write_config, args) -> None:
    """--faults took any number, which sandbox.faults refuses outside 0 to 1 (a rate)."""
    from click.testing import CliRunner

    from connector.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(write_config()), *args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "--faults" in result.output and "is not in the range 0<=x<=1" in result.output


def test_sandbox_serve_with_an_emulator_option_it_cannot_take_says_which(write_config) -> None:
    from click.testing import CliRunner

    from connector.cli import cli

    path = write_config({"sandbox": {"emulators": {"spapi": {"search_lag_seconds": "2m"}}}})
    result = CliRunner().invoke(cli, ["--config", str(path), "sandbox", "serve", "--base-port", "0"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "sandbox.emulators.spapi.search_lag_seconds: the spapi emulator cannot take '2m'" in result.output


def test_serve_with_json_logs_writes_only_json_lines(write_config, tmp_path: Path) -> None:
    """deploy/mfn-connector.service runs `--log-format json serve` into the journal, one JSON object
    a line: the API's address, the stop request and uvicorn's own warnings (a request that is not
    HTTP, from a port scanner say) were plain lines among them. Every endpoint points at a closed
    port here, so nothing is ordered or bought."""
    path = write_config()
    closed = dict.fromkeys(re.findall(r"\$\{(MFN_SANDBOX_\w+)", path.read_text(encoding="utf-8")),
                           "http://127.0.0.1:9")
    err = tmp_path / "serve.err"
    with err.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "--config", str(path),
                                 "--log-format", "json", "serve", "--port", "0"],
                                env={**os.environ, **closed}, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while "API on http" not in err.read_text(encoding="utf-8"):
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text(encoding="utf-8")
            time.sleep(0.1)
        port = int(re.findall(r"API on http://127\.0\.0\.1:(\d+)", err.read_text(encoding="utf-8"))[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"NOT HTTP\r\n\r\n")
            client.recv(1024)  # uvicorn answers 400 and closes, having logged a warning
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    entries = [json.loads(line) for line in err.read_text(encoding="utf-8").splitlines()]
    messages = [entry["message"] for entry in entries]
    assert any(m.startswith("API on http://127.0.0.1:") for m in messages), messages
    assert "received SIGTERM: finishing what is in flight" in messages
    assert "Invalid HTTP request received." in messages
