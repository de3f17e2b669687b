"""The repository stands on its own: nothing in it points at files its users do not have.

The project was researched from notes kept outside the repository. Every fact the code relies on
is written down in ``docs/`` with a link to its public source, so a comment, doc or test that
cites a document the repository does not hold sends a reader nowhere, and fails this test. The
check is general (no list of forbidden names): every Markdown file a line names must exist in the
repository, every section citation (``NAME §3``) must name one of its documents, and no relative
path may climb out of it.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_SUFFIXES = {".json", ".pdf", ".png", ".csv"}  # data: vendored models and captured answers

URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
MARKDOWN = re.compile(r"(?<![\w./-])((?:\.{1,2}/)*[\w./-]*?[\w-]+\.md)\b")
SECTION = re.compile(r"(?<![\w./-])([\w./-]+?)(?:\.md)?\s*§")
CLIMB = re.compile(r"(?<![\w.])(?:\.\./)+[\w-]+")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def problems(line: str, where: Path, documents: set[str]) -> list[str]:
    """What in ``line`` (of the file ``where``) points outside the repository."""
    line = URL.sub("", line)  # public sources are what the docs should cite
    found = []
    for name in MARKDOWN.findall(line):
        if Path(name).name not in documents:
            found.append(f"{name} is not in the repository")
    for name in SECTION.findall(line):
        if Path(name).name.removesuffix(".md") not in {Path(d).stem for d in documents}:
            found.append(f"'{name} §' cites a document the repository does not have")
    for path in CLIMB.findall(line):
        if not (where.parent / path).resolve().is_relative_to(ROOT):
            found.append(f"{path} leaves the repository")
    return found


def test_the_check_catches_citations_of_documents_it_does_not_hold():
    documents = {"README.md", "site-rules.md", "tracking.md"}
    here = ROOT / "docs" / "x.md"
    for cited in ("see NOTES §7", "notes.md §6", "(pack/carrier-notes.md section 3.1)", "../../outside/a.md",
                  "../../outside/data", "handbook §1.2"):
        assert problems(cited, here, documents), cited
    for fine in ("docs/site-rules.md#ioss", "[tracking](tracking.md)", "tracking.md §2", "../README.md",
                 "https://github.com/amzn/selling-partner-api-models/blob/main/README.md",
                 "https://example.com/notes.md", "a design", "a reference to a package"):
        assert not problems(fine, here, documents), fine


def test_no_file_cites_documents_outside_the_repository():
    files = tracked_files()
    documents = {p.name for p in files if p.suffix == ".md"}
    offenders = []
    for path in files:
        if path.suffix in SKIPPED_SUFFIXES or not path.is_file() or path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for problem in problems(line, path, documents):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {problem}")
    assert offenders == [], "points at documents the repository does not have:\n" + "\n".join(offenders)
