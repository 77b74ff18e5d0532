"""An append-only file of tab-separated lines, written in batches: the storage under the engine's
journal (``fixengine.orders.journal``) and the gateway's (``fixengine.gateway.journal``).

A line is a kind letter and a fixed number of fields, tab-separated. ``append`` adds a line to the
open batch; nothing is durable until ``commit`` returns. A commit is one ``write`` of the batch
ended by a commit line (``;``). At open, lines after the last commit line (a batch a kill cut
short) are cut off the file, so a batch is whole or absent. If a commit's write fails (a full
disk), the file is cut back to its last commit and the batch kept, so that nothing of it counts as
written and a later commit writes it whole.

Nothing is ever updated in place, so there is nothing to checkpoint (SQLite in WAL mode stalled the
loop for milliseconds at every checkpoint, and a commit cost a dozen system calls; here it is one).
What a reader needs to look up is kept in memory by its owner, rebuilt from ``committed()`` at open.

Durability: ``write`` survives a killed process (what the tests prove) but not a power cut;
``durable=True`` also ``fdatasync``s every commit (much slower). One process owns a file: it is
locked (``flock``) while open, and a second process is refused instead of interleaving its writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from fixengine.errors import FixEngineError, JournalCorruptError

log = logging.getLogger("fixengine.journal")

_COMMIT = ";\n"
_COMMIT_BYTES = _COMMIT.encode()
_UNSAFE = re.compile(r'[\t\n\r"\\]')  # what a field cannot hold bare in a line
_SQLITE_HEADER = b"SQLite format 3\x00"


def field(value: str) -> str:
    """``value`` as a line's field: bare, or a JSON string when it holds a tab, a newline, a quote,
    a backslash or anything unprintable."""
    return json.dumps(value) if _UNSAFE.search(value) or not value.isprintable() else value


def unfield(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


class LineLog:
    def __init__(self, path: Path, kinds: frozenset[str], fields: int, *, durable: bool = False,
                 what: str = "journal", owner: str = "one engine per data_dir", older: str = ""):
        """Open (or create) the file at ``path``, whose lines are one of ``kinds`` and ``fields``
        fields after it. ``what`` names the file in errors; ``owner`` says who may hold it;
        ``older`` says what becomes of a SQLite file of an older version found at ``path``."""
        self.path, self.what, self._older = path, what, older
        self.durable = durable
        self.closed = False
        self.on_commit: Callable[[float], None] | None = None  # told each commit's seconds (metrics)
        self.batch: list[str] = []  # the lines appended since the last commit, each ending in "\n"
        self._kinds, self._parts = kinds, fields + 1
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise FixEngineError(f"{what} {path} is in use by another process ({owner})") from None
        self._size = os.fstat(self._fd).st_size  # where the last commit ends (set again by ``open_lines``)

    def open_lines(self) -> Iterator[tuple[str, ...]]:
        """At open: the committed lines, split; a batch a kill cut short is cut off the file. The
        file is closed (and unlocked) if reading it fails."""
        try:
            yield from self._read(cut=True)
        except BaseException:
            os.close(self._fd)
            self.closed = True
            raise
        self._size = os.fstat(self._fd).st_size

    def committed(self) -> Iterator[tuple[str, ...]]:
        """The committed lines, split, read as a stream from the start of the file."""
        return self._read(cut=False)

    def pending(self) -> Iterator[tuple[str, ...]]:
        """The lines of the open batch, split."""
        return (tuple(line[:-1].split("\t", self._parts - 1)) for line in self.batch)

    def _read(self, *, cut: bool) -> Iterator[tuple[str, ...]]:
        committed = 0  # the end of the last commit line
        batch: list[tuple[str, ...]] = []
        with open(os.dup(self._fd), "rb") as f:
            f.seek(0)
            if f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER:
                raise FixEngineError(f"{self.what} {self.path} is a SQLite file of an older version: {self._older}")
            f.seek(0)
            offset = 0
            for n, raw in enumerate(f, 1):
                offset += len(raw)
                if raw == _COMMIT_BYTES:
                    yield from batch
                    batch.clear()
                    committed = offset
                    continue
                if not raw.endswith(b"\n"):
                    break  # a line a kill cut short: never committed
                try:
                    parts = tuple(raw[:-1].decode().split("\t", self._parts - 1))
                except UnicodeDecodeError:
                    parts = ()
                if len(parts) != self._parts or parts[0] not in self._kinds:
                    raise JournalCorruptError(f"{self.what} {self.path}, line {n}: not a {self.what} entry: "
                                             f"{raw[:80].decode(errors='replace').rstrip()!r}")
                batch.append(parts)
        if cut and committed < offset:
            log.warning("%s %s: %d bytes after the last commit (a batch a stop cut short) dropped",
                        self.what, self.path, offset - committed)
            os.ftruncate(self._fd, committed)

    def append(self, line: str) -> None:
        """Add ``line`` (tab-separated, ending in a newline) to the open batch."""
        self.batch.append(line)

    def commit(self) -> None:
        """Make the open batch durable: one write of it and its commit line."""
        if not self.batch:
            return
        started = time.perf_counter() if self.on_commit is not None else 0.0
        data = ("".join(self.batch) + _COMMIT).encode()
        try:
            view = memoryview(data)
            while view:  # one write for a regular file; the loop is for the rare short write
                view = view[os.write(self._fd, view):]
            if self.durable:
                os.fdatasync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):  # if this fails too, the next open drops the cut batch
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        self.batch.clear()
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started)

    def close(self) -> None:
        """Commit the open batch, and close (also when the commit fails, which it then raises)."""
        if self.closed:
            return
        try:
            self.commit()
        finally:
            os.close(self._fd)
            self.closed = True


def write_new(path: Path, lines: list[str]) -> None:
    """Create ``path`` holding ``lines`` as one committed batch, whole or not at all (written beside
    it, then renamed into place): for a migration, which must not leave half a file behind."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(lines) + _COMMIT)
    os.replace(partial, path)
