"""The exchange: the pure, deterministic matching engine (``matching``), the venue that serialises
it for FIX and REST (``venue``), and the trade history REST reads (``history``)."""
