"""The repository stands on its own: nothing in it points at files its users do not have.

The project was researched from internal notes (a design document and a reference pack) that
are not part of the repository. Every fact the code relies on is written down in ``docs/`` with
a link to its public source; a comment, doc or test that still cites one of those notes would
send a reader nowhere, so it fails this test.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Names of the internal notes, as they were cited ("DESIGN §7", "spapi.md §6",
# "reference/carriers.md section 3.1", "field-notes §1.7", "../shared/...").
OUTSIDE = re.compile(
    r"\bDESIGN\b|(?<![\w/-])(?:spapi|field-notes|field_notes|plugin-architecture)(?:\.md)?\s*§"
    r"|(?<![\w/-])(?:spapi|field-notes|plugin-architecture)\.md\b|(?<![\w/-])carriers\.md\b"
    r"|\breference/|\bcarrier-fixtures\b|\.\./shared\b|/work/shared\b")
SKIPPED_SUFFIXES = {".json", ".pdf", ".png", ".csv"}  # data: vendored models and captured answers


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_the_pattern_catches_the_citations_it_is_for():
    for cited in ("see DESIGN §7", "spapi.md §6", "(reference/carriers.md section 3.1)", "field-notes §1.7",
                  "carriers.md §1.2", "../shared/DESIGN.md", "plugin-architecture.md"):
        assert OUTSIDE.search(cited), cited
    for fine in ("docs/carriers.md", "docs/amazon-sp-api.md#quotas", "design", "a reference to a package"):
        assert not OUTSIDE.search(fine), fine


def test_no_file_cites_notes_outside_the_repository():
    offenders = []
    for path in tracked_files():
        if path.suffix in SKIPPED_SUFFIXES or not path.is_file() or path.name == Path(__file__).name:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert offenders == [], "cites notes that are not in the repository:\n" + "\n".join(offenders)
