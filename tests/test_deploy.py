"""deploy/: the systemd unit and the install steps beside it agree with each other and with the
daemon."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = (ROOT / "deploy" / "mfn-connector.service").read_text(encoding="utf-8")
README = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")


def directives(name: str) -> list[str]:
    return [value for line in re.findall(rf"^{name}=(.*)$", UNIT, re.M) for value in line.split()]


def test_the_install_makes_each_folder_the_unit_lets_the_daemon_write():
    """ProtectSystem=strict leaves the daemon no way to make a folder outside its state directory:
    one the unit lists in ReadWritePaths (the example configuration's labels_dir) must exist, the
    daemon's user's, before the first start, or the start is refused."""
    writable = [path.lstrip("-") for path in directives("ReadWritePaths")]
    (install,) = re.findall(r"^## Install on one host.*?^```sh\n(.*?)^```", README, re.M | re.S)
    made = set(re.findall(r"^sudo install -d (?:-\S+ \S+ )*(/\S+)", install, re.M))
    assert writable
    assert set(writable) - made == set()
