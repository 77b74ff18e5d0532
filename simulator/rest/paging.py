"""Kalshi's cursor pagination (rest-spec §3.3): ``limit`` items a page, and a ``cursor`` to ask for
the next one; the last page answers ``cursor: ""``.

The cursor is opaque to clients; here it names the last item served, so a page never repeats or
skips an item when new ones arrive between calls (lists are newest first: newer items land before
the cursor). A cursor that cannot be read starts from the beginning, as Kalshi silently accepts one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", int, str)
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def encode_cursor(key: int | str) -> str:
    text = f"n{key}" if isinstance(key, int) else f"s{key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | str | None:
    """The key a cursor names, or None for no cursor (or one that cannot be read)."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if text.startswith("n") and text[1:].isdigit():
        return int(text[1:])
    if text.startswith("s") and len(text) > 1:
        return text[1:]
    return None


def page(
    items: Sequence[T], key: Callable[[T], K], limit: int, cursor: str | None, *, descending: bool
) -> tuple[list[T], str]:
    """One page of ``items`` (in serving order: ``key`` ascending, or descending) after ``cursor``,
    and the cursor of the next page ("" when this is the last)."""
    after = decode_cursor(cursor)
    start = 0
    if after is not None:
        keys = [key(item) for item in items]
        start = len(keys)
        for i, k in enumerate(keys):
            if type(k) is not type(after):
                start = 0  # a cursor of another list: start over
                break
            if (k < after) if descending else (k > after):  # type: ignore[operator]
                start = i
                break
    chunk = list(items[start:start + limit])
    more = start + limit < len(items)
    return chunk, encode_cursor(key(chunk[-1])) if more and chunk else ""
