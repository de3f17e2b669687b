"""The daemon's production path imports no emulator code: only ``sandbox``, ``demo`` and tests do.

Checked in a fresh interpreter, as a user runs it: the CLI with every installed plugin
(``--help``, ``plugins``), then the configuration, the site rules and every configured carrier
built exactly as ``mfn-connector run`` builds them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import contextlib, io, json, sys
from connector.cli import main
from connector.configured import load_config_with_plugins
from connector.engine.runtime import build_runtime

def emulators():  # the emulator framework, the emulators, the test kit; not cli/sandbox.py
    return sorted(m for m in sys.modules if m.startswith("connector.sandbox")
                  or m in ("connector.kit.sandbox", "connector.kit.testing")
                  or (m.startswith("mfn_") and m.rsplit(".", 1)[-1].startswith("sandbox")))

found = {}
for argv in (["mfn-connector", "--help"], ["mfn-connector", "plugins"]):
    sys.argv = argv
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()
    found[" ".join(argv[1:])] = emulators()
from connector.cli import State
config, host = load_config_with_plugins(sys.argv_config, State.preloaded_host)
runtime = build_runtime(config, host)
found["runtime"] = emulators()
found["carriers"] = sorted(runtime.carriers)
runtime.close()
print(json.dumps(found))
"""


def test_cli_plugins_and_runtime_import_no_emulator(tmp_path):
    env = {**os.environ, "MFN_STATE_DIR": str(tmp_path / "state")}
    code = PROBE.replace("sys.argv_config", repr(str(ROOT / "config" / "sandbox.yaml")))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found["carriers"]) >= 5, found  # every built-in carrier was built
    assert found["--help"] == [] and found["plugins"] == [] and found["runtime"] == [], found
