"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

The one way the project writes a file it means to keep: into a hidden temp file in the target's
own folder, then ``os.replace`` onto the real name (atomic on POSIX and Windows). A reader sees
the old file or the whole new one, never a truncated mix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _temp_beside(path: Path) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp makes the file owner-only; give it what a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on a clean exit it replaces ``path``, else it is removed.

    For writers that want a file name (PIL ``save``, safetensors, mutagen, ``shutil.copy``).
    Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``open(path, "wb")`` that only lands under the real name when the block ends cleanly."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: str | os.PathLike, data: bytes | str) -> bool:
    """Replace ``path`` with ``data`` (str is written as UTF-8) atomically.

    Returns False, writing nothing, when the file already holds exactly these bytes, so reruns
    leave files (and their modification times) untouched.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    with atomic_open(path) as f:
        f.write(data)
    return True


class OutputDirError(ValueError):
    """An output folder that cannot be created or written; the message is one line for the user."""


def check_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Prove that ``path`` is, or can be created as, a folder a file can be written in.

    Call it before any model loads or any audio is tagged, so a bad ``--out`` fails in a second
    with one line instead of a traceback after minutes of work. ``what`` names the folder in the
    message (e.g. ``"--out"``). The file system is left as found: folders made for the probe are
    removed again (the writers create them when they write). Returns the path, resolved.

    Raises:
        OutputDirError: (a ValueError) naming the folder and the reason: it is a file, a parent
            is a file, no permission, read-only file system, disk full...
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{what} {str(path)!r} is a file, not a folder")
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputDirError(
                f"{what} {str(path)!r} cannot be created: {e.strerror or e}"
            ) from e
        try:
            # a real file, not os.access: ACLs, read-only mounts and full disks only show on write
            fd, tmp = tempfile.mkstemp(dir=path, prefix=".write-check.", suffix=".tmp")
            try:
                os.write(fd, b"x")
            finally:
                os.close(fd)
                os.unlink(tmp)
        except OSError as e:
            raise OutputDirError(f"{what} {str(path)!r} is not writable: {e.strerror or e}") from e
        return path.resolve()
    finally:
        for folder in missing:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
