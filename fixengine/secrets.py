"""Files that hold secrets (private keys, OMS passwords, the admin token): read only when their
owner alone can read them, since whoever reads one can trade or administer as its owner."""

from __future__ import annotations

import stat
from pathlib import Path

from fixengine.errors import KeyLoadError


def read_private_file(path: str | Path, what: str) -> bytes:
    """The bytes of ``path``; ``KeyLoadError`` naming ``what`` and the reason if it is missing, not
    a regular file, or readable by group or others."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyLoadError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise KeyLoadError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise KeyLoadError(f"{what} {path} is not a regular file")
    if mode & 0o077:
        raise KeyLoadError(
            f"{what} {path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"{what} {path} cannot be read: {exc.strerror}") from None


def read_secret(path: str | Path, what: str) -> str:
    """A one-line secret (a password, a token) from a private file, without its line ending."""
    text = read_private_file(path, what).decode("utf-8", errors="replace").strip()
    if not text:
        raise KeyLoadError(f"{what} {path} is empty")
    return text
