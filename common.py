"""Atomic file writes and the user-facing error type shared by every layer that touches disk.

Everything the suite writes goes to a temporary name in the target folder and is renamed into
place, so an interrupted process never leaves a half-written file behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


class UserError(click.ClickException):
    """Bad input from the user (a file, a value, a name): the CLI prints it and exits with 2."""

    exit_code = 2


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# errors that mean "the disk (or the user's quota) is full": the user can act on them
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# errors that mean "this folder cannot be written" (a read-only mount, no permission)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def os_error(e: BaseException) -> OSError | None:
    """The OSError behind ``e``: itself, or one it was raised while handling (torch.save reports
    a full disk as ``RuntimeError: ... unexpected pos ...`` raised during the OSError)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def disk_error(e: BaseException, path: str | os.PathLike, doing: str) -> UserError | None:
    """A UserError naming ``path`` for a full disk or a folder that cannot be written, found in
    ``e`` or the errors behind it (``os_error``); None for any other error."""
    cause = os_error(e)
    if cause is None:
        return None
    folder = Path(path).parent
    if cause.errno in NO_SPACE:
        return UserError(
            f"no space left on {folder} while {doing} {path} ({os.strerror(cause.errno)}); "
            f"free some space and run again (any previous {Path(path).name} is unchanged)"
        )
    if cause.errno in NOT_WRITABLE:
        return UserError(
            f"cannot write in {folder} while {doing} {path} ({os.strerror(cause.errno)}): "
            f"give a results folder that can be written (--results), or make this one writable"
        )
    return None


# the temporary name of atomic_write: ``.<name>.<8 random characters of mkstemp>.tmp``; a
# process killed between mkstemp and rename leaves one behind (store.RunDir.clean_orphans)
TMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file to ``path`` once it succeeded.

    On any failure the temporary file is removed and ``path`` keeps its previous content. A full
    disk or quota (``NO_SPACE``, also behind another error: ``os_error``) or a folder that cannot
    be written (``NOT_WRITABLE``) becomes a ``UserError`` naming the path, since only the user
    can act on it; every other error propagates unchanged.
    """
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if not isinstance(e, UserError) and (user := disk_error(e, path, "writing")):
            raise user from e
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
