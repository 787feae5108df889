"""Whitespace-separated list files (SOP's Ebay_*.txt, In-Shop's list_eval_partition.txt, CUB's
images.txt and its companions).

Every error names the file and the 1-based line number; a ``UserError`` replaces each traceback
a malformed, unreadable or non-UTF-8 file would otherwise give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from common import UserError


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; a ``UserError`` naming the line of the first bad byte."""
    if not path.is_file():
        why = "is not a file" if path.exists() else "is missing"
        raise UserError(f"expected file {path} {why}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(
            f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
            "the official lists are ASCII, re-download or repair the file"
        ) from None


def read_rows(path: Path, header: list[str], skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of the data lines after ``skip`` lines and the header.

    The header must be ``header`` (case-insensitive); every data line must have as many fields.
    Blank lines are ignored.
    """
    lines = read_lines(path)
    if len(lines) <= skip:
        raise UserError(f"{path}: empty file, expected a header line {' '.join(header)!r}")
    got = lines[skip].split()
    if [g.lower() for g in got] != [h.lower() for h in header]:
        raise UserError(
            f"{path}:{skip + 1}: malformed header {lines[skip]!r}, expected {' '.join(header)!r}"
        )
    for number, line in enumerate(lines[skip + 1 :], start=skip + 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(header):
            raise UserError(
                f"{path}:{number}: malformed line {line!r}: "
                f"expected {len(header)} fields ({' '.join(header)}), got {len(fields)}"
            )
        yield number, fields


def read_records(path: Path, fields: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a list without a header line (CUB's ``images.txt``):
    every non-blank line must have ``len(fields)`` whitespace-separated fields."""
    for number, line in enumerate(read_lines(path), start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != len(fields):
            raise UserError(
                f"{path}:{number}: malformed line {line!r}: "
                f"expected {len(fields)} fields ({' '.join(fields)}), got {len(cells)}"
            )
        yield number, cells


def to_int(value: str, path: Path, number: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(
            f"{path}:{number}: malformed line: {column} {value!r} is not an integer"
        ) from None


def image_path(value: str, path: Path, number: int, column: str) -> str:
    """``value`` if it is a relative path without ``..``; the lists name images relative to the
    dataset root, so an absolute path or a ``..`` could only point outside it."""
    if ".." not in value and value[:1] not in ("/", "\\") and value[1:2] != ":":
        return value  # the common case, decided without splitting the path
    parts = value.replace("\\", "/").split("/")
    if value[:1] in ("/", "\\") or value[1:2] == ":":
        why = "is absolute"
    elif ".." in parts:
        why = "contains '..'"
    else:
        return value  # a name like "a..b.jpg"
    raise UserError(
        f"{path}:{number}: {column} {value!r} {why}: image paths must be relative to the "
        "dataset root and stay inside it"
    )
