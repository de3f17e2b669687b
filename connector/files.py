"""Files the daemon writes that must never be seen half-written (labels, print batches, lists)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsynced, renamed,
    and the folder fsynced: the rename itself is only durable then, and the ledger may record the
    file (a label's path) the moment this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # (a system that cannot open a folder, Windows: its rename is durable as it is)
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot sync a folder: the file itself is synced
    finally:
        os.close(fd)


def unwritable(directory: Path, *, try_write: bool = False) -> str | None:
    """Why this process could not write a file in ``directory`` (None: it can). A directory not
    made yet is judged by the nearest one that exists, where it would be made. ``try_write``
    writes and removes a file there, or for a directory not made yet makes and removes one (the
    only sure test: a read-only mount, an ACL, /proc, where access() says yes to root)."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if try_write:
        made = "" if existing == directory else f" (to make {directory})"
        try:
            if existing == directory:
                fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-check.")
                os.close(fd)
                os.unlink(probe)
            else:
                os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-check."))
        except OSError as exc:
            return f"cannot write in {existing}{made}: {exc.strerror or exc}"
        return None
    if not os.access(existing, os.W_OK | os.X_OK):
        made = "" if existing == directory else f" (to make {directory})"
        return f"cannot write in {existing}{made}: permission denied or a read-only file system"
    return None
