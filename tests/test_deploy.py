"""deploy/: the systemd unit and the install steps beside it agree with each other and with the
daemon."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNIT = (ROOT / "deploy" / "mfn-connector.service").read_text(encoding="utf-8")
README = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")


def directives(name: str) -> list[str]:
    return [value for line in re.findall(rf"^{name}=(.*)$", UNIT, re.M) for value in line.split()]


def install_steps() -> str:
    (steps,) = re.findall(r"^## Install on one host.*?^```sh\n(.*?)^```", README, re.M | re.S)
    return steps


def test_the_install_makes_each_folder_the_unit_lets_the_daemon_write():
    """ProtectSystem=strict leaves the daemon no way to make a folder outside its state directory:
    one the unit lists in ReadWritePaths (the example configuration's labels_dir) must exist, the
    daemon's user's, before the first start, or the start is refused."""
    writable = [path.lstrip("-") for path in directives("ReadWritePaths")]
    made = set(re.findall(r"^sudo install -d (?:-\S+ \S+ )*(/\S+)", install_steps(), re.M))
    assert writable
    assert set(writable) - made == set()


def test_the_install_provisions_the_pii_key_file_the_example_configuration_names():
    """The daemon refuses a key file others may read and cannot read one root owns: the file
    config/production.example.yaml names must be made the daemon's user's alone, mode 0600."""
    example = yaml.safe_load((ROOT / "config" / "production.example.yaml").read_text(encoding="utf-8"))
    key_file = example["ledger"]["pii_key_file"]
    assert re.search(rf"sudo install -m 0600 -o mfn -g mfn \S+ {re.escape(key_file)}$", install_steps(), re.M)
    # made once: run again (an upgrade), a new key would leave every stored address unreadable
    assert re.search(rf"^\[ -e {re.escape(key_file)} \] \|\| \\$", install_steps(), re.M)


def _unit_directives(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^([A-Za-z]+)=(.*)$", text, re.M)


def test_the_worker_template_is_the_service_but_for_its_command_and_names():
    """deploy/mfn-connector-worker@.service (one more `run` per instance on a host) must not drift
    from the service's user, environment, stop timeout and hardening."""
    worker = (ROOT / "deploy" / "mfn-connector-worker@.service").read_text(encoding="utf-8")
    own = {"Description", "ExecStart", "SyslogIdentifier"}
    assert [d for d in _unit_directives(worker) if d[0] not in own] == \
        [d for d in _unit_directives(UNIT) if d[0] not in own]
    (start,) = [v for k, v in _unit_directives(worker) if k == "ExecStart"]
    assert start.split()[-1] == "run" and start.split()[:-1] == directives("ExecStart")[:-1]
    assert "mfn-connector-worker@.service" in README and "%i" in dict(_unit_directives(worker))["Description"]
