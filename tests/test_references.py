"""Every file the repository names exists in it: code, tests, docs, README and setup.cfg cite
paths such as ``bench/store.py`` or ``docs/protocol.md`` as the place to read more, and a cited
file that was renamed or never committed sends a reader nowhere. Generated outputs (a results
folder's runs and report) are not files of the repository and are not checked.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bench", "variants", "data_prep", "reports", "commands", "tests", "docs", ".ci")
EXTENSIONS = "py|md|cfg|json|toml|yml|yaml|txt|sh|cff|png|pdf"
# a path into a source folder, or a document at the root (README.md, DESIGN.md, ...)
PATH = re.compile(
    rf"(?<![\w./-])((?:{'|'.join(map(re.escape, SOURCES))})/[\w./-]+\.(?:{EXTENSIONS}))\b"
)
ROOT_DOC = re.compile(r"(?<![\w./-])([A-Z][A-Z_]+\.(?:md|cff|txt))\b")
# results/ holds generated runs and reports; only its README is a file of the repository
RESULTS = re.compile(r"(?<![\w./-])(results/README\.md)\b")


def _tracked() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    keep = (".py", ".md", ".cfg", ".toml", ".yml", ".yaml", ".cff", "Makefile", "run")
    return [ROOT / p for p in out if p.endswith(keep) and (ROOT / p).is_file()]


def references(text: str) -> set[str]:
    """The repository paths ``text`` names."""
    found = {m.group(1).rstrip(".") for m in PATH.finditer(text)}
    found |= {m.group(1) for m in ROOT_DOC.finditer(text)}
    found |= {m.group(1) for m in RESULTS.finditer(text)}
    return found


def test_the_finder_finds_paths_and_ignores_outputs():
    text = (
        "see bench/store.py and docs/protocol.md. DESIGN.md says; results/README.md has it;\n"
        "results/report/REPORT.md is written; a run's results/runs/<id>/metrics.csv; "
        "tests/bench/test_*.py; http://example.org/bench/x.py"
    )
    assert references(text) == {"bench/store.py", "docs/protocol.md", "DESIGN.md",
                                "results/README.md"}  # fmt: skip


SECTION = re.compile(r'([\w./-]+\.md)[,:]?\s+"([^"]{3,90})"')


def sections(text: str) -> set[tuple[str, str]]:
    """(file, section title) pairs such as ``docs/demo.md, "Design"``, comment markers and line
    breaks inside the quotes removed."""
    flat = " ".join(re.sub(r"\n\s*(#|//|\*)?\s*", " ", text).split())
    return {(m.group(1), m.group(2)) for m in SECTION.finditer(flat)}


def _headings(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.lstrip("#").strip().casefold() for line in lines if line.startswith("#")}


def test_the_section_finder_reads_wrapped_comments():
    text = '# see CHANGELOG.md, "Where a Fashion-MNIST demo cell\'s time\n    # went") and x'
    assert sections(text) == {("CHANGELOG.md", "Where a Fashion-MNIST demo cell's time went")}


def _missing(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    out = []
    for ref in sorted(references(text)):
        if ref == "REPORT.md":  # the report every results folder gets, not a repository file
            continue
        candidates = [ROOT / ref, path.parent / ref]
        if not any(c.exists() for c in candidates):
            out.append(ref)
    for ref, title in sorted(sections(text)):
        target = next((c for c in (ROOT / ref, path.parent / ref) if c.is_file()), None)
        heads = _headings(target) if target is not None else set()
        if target is not None and not any(h.startswith(title.casefold()) for h in heads):
            out.append(f'{ref}, "{title}"')
    return out


@pytest.mark.parametrize("path", _tracked(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_file_exists(path):
    if path == Path(__file__).resolve():
        pytest.skip("this file names missing paths on purpose")
    assert _missing(path) == []
