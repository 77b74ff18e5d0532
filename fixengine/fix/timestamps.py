"""UTCTimestamp (SendingTime 52, TransactTime 60) as Kalshi writes and reads it: milliseconds out,
up to nanoseconds in. Shared by the engine, the simulator and the harness."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_timestamp(at: datetime) -> str:
    """UTCTimestamp with milliseconds, as Kalshi writes it (on every order's path: one f-string
    costs half of ``strftime``)."""
    return (f"{at.year:04d}{at.month:02d}{at.day:02d}-{at.hour:02d}:{at.minute:02d}:{at.second:02d}."
            f"{at.microsecond // 1000:03d}")


def parse_utc_timestamp(value: str) -> datetime | None:
    """UTCTimestamp ``YYYYMMDD-HH:MM:SS[.fff…]`` as an aware datetime, or None if malformed."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            # strptime's %f takes at most 6 digits; nanosecond stamps are cut to microseconds.
            head, dot, frac = value.partition(".")
            text = f"{head}.{frac[:6]}" if dot else head
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None
