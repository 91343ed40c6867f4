"""Files that hold secrets or health data: created readable by their owner only, and synced
to disk before anyone is told they are written."""

import contextlib
import os
from pathlib import Path


def open_private(path: Path) -> int:
    """A new file at `path` (never an existing one), mode 0600, open for writing: its fd."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def create_private(path: Path) -> None:
    """Create an empty file at `path`, mode 0600, unless one is there (a database to be)."""
    with contextlib.suppress(FileExistsError):
        os.close(open_private(path))


def fsync_path(path: Path) -> None:
    """Flush a written file to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a file created or renamed in it) to disk, where the platform
    lets a folder be opened."""
    with contextlib.suppress(OSError):
        fsync_path(folder)
