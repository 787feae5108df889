"""The documentation: generated facts equal the code, every command shown is real, the site
builds, README stays a front page, and the project files (LICENSE, CITATION.cff) agree with
setup.cfg.

Commands: every ``xbmbench`` line of a shell block in README.md and docs/*.md names a command
that exists and only options that command has (checked against the click tree, nothing run).
A line ending in a comment with ``needs: data``, ``needs: cluster``, ``needs: gpu`` or
``needs: time`` stops there, and one with ``needs: intel`` (``verify``: the shipped reference was
made on an Intel CPU, and an AMD EPYC gave other numbers under portable mode) runs only on an
Intel CPU; every other line is also run, in a temporary folder with empty data and results
folders, and must exit 0.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import cli
from bench.pinning import cpu_info
from commands import docs

ROOT = Path(__file__).resolve().parent.parent
PAGES = docs.pages(ROOT)
NEEDS = re.compile(r"#.*\bneeds: (data|cluster|gpu|time|intel)\b")
# what this machine provides of what a line may need
HAVE = {"intel"} if cpu_info().get("vendor") == "GenuineIntel" else set()
FENCE = re.compile(r"^```(bash|console|sh|shell)\s*\n(.*?)^```", re.M | re.S)


def shell_blocks(text: str) -> list[list[str]]:
    """The command lines of each of a page's shell blocks, continuation lines joined."""
    out = []
    for block in FENCE.finditer(text):
        joined = re.sub(r"\s*\\\n\s*", " ", block.group(2))
        out.append([line.strip() for line in joined.splitlines() if line.strip()])
    return out


def shell_lines(text: str) -> list[str]:
    return [line for block in shell_blocks(text) for line in block]


def xbmbench_lines() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), line)
        for page in PAGES
        for line in shell_lines(page.read_text(encoding="utf-8"))
        if line.startswith("xbmbench ")
    ]


def _split(line: str) -> tuple[list[str], str | None]:
    """The words of ``line`` before its comment, and what the comment says it needs."""
    need = NEEDS.search(line)
    return shlex.split(line, comments=True), need.group(1) if need else None


def _resolve(words: list[str]):
    """The click command a command line names, and the words after its name."""
    cmd, rest = cli.main, words[1:]
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in cmd.commands, f"no command {name!r} under {cmd.name!r}"
        cmd = cmd.commands[name]
    return cmd, rest


def _options(cmd) -> set[str]:
    names = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    return names | {"-h", "--help", "--version"}


def test_shell_lines_join_continuations_and_keep_comments():
    text = "x\n```bash\nxbmbench a --b 1 \\\n    --c 2  # needs: data\n```\n"
    assert shell_lines(text) == ["xbmbench a --b 1 --c 2  # needs: data"]
    assert _split(shell_lines(text)[0]) == (["xbmbench", "a", "--b", "1", "--c", "2"], "data")
    assert shell_lines("```bash\nxbmbench grid studies\n```\n") == ["xbmbench grid studies"]


@pytest.mark.parametrize("page, line", xbmbench_lines(), ids=lambda v: v[:60])
def test_every_command_shown_exists_with_its_options(page, line):
    words, _ = _split(line)
    cmd, rest = _resolve(words)
    given = {w.split("=")[0] for w in rest if w.startswith("-") and not re.match(r"-\d", w)}
    unknown = given - _options(cmd)
    assert not unknown, f"{page}: {line!r}: {cmd.name} has no option {sorted(unknown)}"


def runnable_blocks() -> list[tuple[str, tuple[str, ...]]]:
    """(page, the block's xbmbench lines that need nothing) for every block that has any."""
    out = []
    for page in PAGES:
        for block in shell_blocks(page.read_text(encoding="utf-8")):
            lines = tuple(
                line
                for line in block
                if line.startswith("xbmbench ") and _split(line)[1] in {None, *HAVE}
            )
            if lines:
                out.append((str(page.relative_to(ROOT)), lines))
    return out


@pytest.mark.slow  # each line is a subprocess (python, click, and what the line runs)
@pytest.mark.parametrize("page, lines", runnable_blocks(), ids=lambda v: str(v)[:60])
def test_every_runnable_command_runs(page, lines, tmp_path):
    """A block is a recipe: its lines run in order in one empty folder (data and results
    folders start empty; the demo's datasets prepare themselves)."""
    env = dict(os.environ, XBMBENCH_DATA=str(tmp_path / "data"))
    exe = shutil.which("xbmbench") or str(Path(sys.executable).with_name("xbmbench"))
    for line in lines:
        words, _ = _split(line)
        proc = subprocess.run(
            [exe, *words[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        why = f"{page}: {line!r}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert proc.returncode == 0, why


def test_generated_blocks_equal_the_code():
    assert docs.stale(ROOT) == [], "run `python -m commands.docs` to regenerate them"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<!-- studies:begin -->", "never ends"),
        ("<!-- studies:end -->", "ends before it begins"),
        ("<!-- nothing:begin --><!-- nothing:end -->", "unknown generated block"),
        ("<!-- studies:begin -->a<!-- studies:end --><!-- studies:begin -->", "begins twice"),
    ],
)
def test_bad_markers_are_named(text, problem):
    from common import UserError

    with pytest.raises(UserError, match=problem):
        docs.blocks(text, "page.md")


def test_a_block_is_replaced_by_its_generator(monkeypatch):
    monkeypatch.setitem(docs.GENERATORS, "studies", lambda: "| new |\n")
    text = "a\n<!-- studies:begin -->\n| old |\n<!-- studies:end -->\nb\n"
    new = "a\n<!-- studies:begin -->\n| new |\n<!-- studies:end -->\nb\n"
    assert docs.render_blocks(text) == new


def test_the_studies_table_counts_the_cells_grid_lists(tmp_path):
    """The generated table against `xbmbench grid list`'s own count line, per study."""
    table = docs.studies_table()
    rows = {r.split("|")[1].strip(" `"): r.split("|")[2].strip() for r in table.splitlines()[2:]}
    exe = shutil.which("xbmbench") or str(Path(sys.executable).with_name("xbmbench"))
    for study in ("demo", "paper-table2"):
        out = subprocess.run(
            [exe, "grid", "list", "--study", study], capture_output=True, text=True, check=True
        ).stdout
        assert rows[study].split()[0] == out.strip().splitlines()[-1].split()[0]


def test_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8")) < 12_000


def test_every_page_is_in_the_navigation():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {v for item in nav for v in item.values()}
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


@pytest.mark.slow  # builds the whole site (a few seconds)
def test_the_site_builds_strictly(tmp_path):
    if shutil.which("mkdocs") is None and not Path(sys.executable).with_name("mkdocs").exists():
        pytest.skip("mkdocs is not installed (requirements.lock installs it)")
    exe = shutil.which("mkdocs") or str(Path(sys.executable).with_name("mkdocs"))
    proc = subprocess.run(
        [exe, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "run-record" / "index.html").exists()


def test_licence_and_citation_agree_with_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["license"] == "MIT" and cff["version"] == cli.__version__
    titles = {r["title"] for r in cff["references"]}
    assert titles == {
        "Cross-Batch Memory for Embedding Learning",
        "Adaptive Cross Batch Normalization for Metric Learning",
        "A study of Cross Batch Memory in Deep Metric Learning",
    }
