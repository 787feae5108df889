"""Whitespace-separated list files (SOP's Ebay_*.txt, In-Shop's list_eval_partition.txt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from common import UserError


def read_rows(path: Path, header: list[str], skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of the data lines after ``skip`` lines and the header.

    The header must be ``header`` (case-insensitive); every data line must have as many fields.
    Blank lines are ignored. Errors name the file and the 1-based line number.
    """
    if not path.is_file():
        raise UserError(f"expected file {path} is missing")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
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


def to_int(value: str, path: Path, number: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{path}:{number}: malformed line: {column} {value!r} is not an integer")
