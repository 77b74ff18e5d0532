"""The two wire dialects. The application model is one; a dialect decides how it is written."""

from __future__ import annotations

from enum import Enum


class Dialect(str, Enum):
    FIX44 = "fix44"  # BeginString FIX.4.4: what OMSs speak
    FIXT11 = "fixt11"  # BeginString FIXT.1.1 + FIX 5.0 SP2 (1137=9): Kalshi's live gateway

    @property
    def begin_string(self) -> str:
        return "FIX.4.4" if self is Dialect.FIX44 else "FIXT.1.1"

    @property
    def is_fixt(self) -> bool:
        return self is Dialect.FIXT11


# DefaultApplVerID (1137) for FIX 5.0 SP2, as Kalshi sends and expects it on Logon.
APPL_VER_ID_FIX50SP2 = "9"
