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
