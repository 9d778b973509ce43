"""Local output files that appear atomically and with the mode any other file gets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ATTEMPTS = 100


def create_beside(path: Path) -> tuple[int, Path]:
    """Create a new, empty temporary file in `path`'s directory, to be renamed over `path`;
    returns (fd, its path). Created with mode 0o666 minus the umask, like the report written
    beside it: mkstemp's 0o600 left `x.predictions.csv` unreadable to whoever could read
    `x.report.json`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {ATTEMPTS} attempts")
