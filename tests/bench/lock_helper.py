"""One contender for a cell's claim, for tests/bench/test_store_lock.py (not a test itself).

``python lock_helper.py RESULTS BARRIER NAME OTHER``: announce ``ready-NAME`` in BARRIER, wait
for ``ready-OTHER`` (both start claiming together), then try ``RunDir.claim()``:
- got it: write ``got-NAME`` (holding pid), keep the claim until ``done-OTHER`` exists (so the
  other's attempt certainly meets a held lock), release;
- busy: write ``busy-NAME`` with the CellBusy message.
Then ``done-NAME``. The waits poll files; the timeout only guards against a hung test.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.store import CellBusy, RunDir  # noqa: E402


def wait_for(path: Path, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            sys.exit(f"timed out waiting for {path}")
        time.sleep(0.01)


def main(results: str, barrier: str, name: str, other: str) -> None:
    bar = Path(barrier)
    (bar / f"ready-{name}").write_text(str(os.getpid()))
    wait_for(bar / f"ready-{other}")
    rd = RunDir(results, SimpleNamespace(run_id="0123456789abcdef"))
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with rd.claim():
                (bar / f"got-{name}").write_text(
                    "\n".join([str(os.getpid()), *(str(w.message) for w in seen)])
                )
                wait_for(bar / f"done-{other}")
    except CellBusy as e:
        (bar / f"busy-{name}").write_text(str(e))
    (bar / f"done-{name}").write_text("")


if __name__ == "__main__":
    main(*sys.argv[1:5])
