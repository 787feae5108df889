"""The contract of one option: a run config's field or a memory variant's own option.

``Option.coerce(name, value)`` is the one check every value goes through before anything runs:
text (what the command line passes) is parsed by the declared kind, Python values are checked
against it, and the result is normalised (an int given for a float option becomes a float, so the
same run has the same hash). Every failure is an ``OptionError`` (a ValueError) naming the option
and the value; the experiment engine turns it into its user-facing error.

Why here: the variants declare their options with this class, and ``variants`` may import only
torch, PML and the standard library (setup.cfg), so the one class for both lives in this package;
this module imports only the standard library, and the package imports its variants (and torch)
on first use of a name (``variants/__init__.py``), so the config layer and ``xbmbench --help``
read it without torch.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field
from typing import Any

TRUE, FALSE = ("true", "1"), ("false", "0")  # the only spellings a boolean accepts

# the distances of the ``miner_distance`` option and config field (variants/miners.py)
MINER_DISTANCES = ("euclidean", "euclidean_raw", "cosine")


class OptionError(ValueError):
    """A value outside its option's contract; the message names the option and the value."""


@dataclass(frozen=True)
class Option:
    """One option's contract. ``kind``: int, float, bool, str or tuple (items of kind ``item``,
    bounds and choices applying to each item); floats must always be finite. ``default``: the
    value when none is given (``MISSING``: the option must be given)."""

    kind: type
    default: Any = field(default_factory=lambda: MISSING)  # (MISSING itself means no default)
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False  # None is a valid value (e.g. "all", "the variant's choice")
    item: type | None = None  # tuples: the items' kind
    contains: tuple[Any, ...] = ()  # tuples: items that must be present
    sort: bool = False  # tuples: stored sorted (the order carries no meaning), duplicates refused
    why: str = ""  # the reason for a non-obvious range, shown with the error
    help: str = ""  # what the option is, in a few words (the command line's help)

    def describe(self) -> str:
        """The contract in words, e.g. 'a finite number in (0, 1]'."""
        kind = self.item if self.kind is tuple else self.kind
        words = {int: "an integer", float: "a finite number", bool: "true or false", str: "text"}
        text = words.get(kind, getattr(kind, "__name__", str(kind)))
        if self.kind is tuple:
            text = f"a comma-separated list of {'integers' if kind is int else 'values'}"
        if self.choices is not None:
            text = f"one of {', '.join(map(str, self.choices))}"
        low = ("(", self.gt) if self.gt is not None else ("[", self.ge)
        high = (")", self.lt) if self.lt is not None else ("]", self.le)
        if low[1] is not None and high[1] is not None:
            text += f" in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
        elif low[1] is not None:
            text += f" {'>' if low[0] == '(' else '>='} {low[1]:g}"
        elif high[1] is not None:
            text += f" {'<' if high[0] == ')' else '<='} {high[1]:g}"
        if self.kind is tuple and self.sort:
            text += ", each once"
        if self.contains:
            text += f", containing {' and '.join(map(str, self.contains))}"
        return text

    def _fail(self, name: str, value: Any, detail: str = "") -> OptionError:
        why = f": {self.why}" if self.why else ""
        return OptionError(f"{name} must be {detail or self.describe()}, got {value!r}{why}")

    def coerce(self, name: str, value: Any) -> Any:
        """``value`` (text or Python) checked against the contract and normalised."""
        if value is None:
            if self.nullable:
                return None
            raise self._fail(name, value)
        if self.kind is tuple:
            return self._tuple(name, value)
        return self._scalar(name, value, self.kind)

    def _scalar(self, name: str, value: Any, kind: type) -> Any:
        v = self._parse(name, value, kind) if isinstance(value, str) and kind is not str else value
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if type(v) is not kind:  # bool is an int subclass: True is not a valid epoch count
            raise self._fail(name, value)
        # parsed: name the value as parsed (0, not '0'), as a Python caller would see it
        if kind is float and not math.isfinite(v):
            raise self._fail(name, v)
        if self.choices is not None and v not in self.choices:
            raise self._fail(name, v)
        if kind in (int, float) and not self._in_range(v):
            raise self._fail(name, v)
        return v

    def _parse(self, name: str, text: str, kind: type) -> Any:
        t = text.strip()
        if kind is bool:
            if t.lower() in TRUE + FALSE:
                return t.lower() in TRUE
            raise self._fail(name, text, "true or false (or 1 or 0)")
        try:
            return kind(t)  # int("1.5") and float("abc") fail; float("nan") is caught later
        except ValueError:
            raise self._fail(name, text) from None

    def _in_range(self, v: float) -> bool:
        return not (
            (self.gt is not None and not v > self.gt)
            or (self.ge is not None and not v >= self.ge)
            or (self.lt is not None and not v < self.lt)
            or (self.le is not None and not v <= self.le)
        )

    def _tuple(self, name: str, value: Any) -> tuple[Any, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise self._fail(name, value)
        try:
            out = [self._scalar(name, v, self.item or str) for v in items]
        except OptionError:
            raise self._fail(name, value) from None  # name the whole value, not one item
        if self.sort:
            if len(set(out)) != len(out):
                raise self._fail(name, value)
            out.sort()
        if any(c not in out for c in self.contains):
            raise self._fail(name, value)
        return tuple(out)
