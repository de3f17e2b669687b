"""Files written atomically: never seen half-written, and durable once written."""
from __future__ import annotations

import os
import stat

from connector.files import write_atomically


def test_a_file_written_atomically_is_whole_and_its_folder_synced(tmp_path, monkeypatch):
    """The file is fsynced before its rename and the folder after it: without the folder's sync a
    power loss can undo the rename, while the ledger already records the label's path."""
    synced: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    path = write_atomically(tmp_path / "labels" / "111-1-1.pdf", b"%PDF-1.4 label")
    assert path.read_bytes() == b"%PDF-1.4 label"
    assert synced == ["file", "folder"]
    assert [p.name for p in path.parent.iterdir()] == ["111-1-1.pdf"]  # no temporary file left
